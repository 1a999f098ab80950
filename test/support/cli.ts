// Runs the CLI from source in a child process, as a user would run `linfold`.
import { spawnSync } from 'node:child_process';

export function linfold(args: string[], opts: { timeout?: number; cwd?: string; env?: Record<string, string> } = {}): { code: number | null; stdout: string; stderr: string } {
  const env = opts.env ? { ...process.env, ...opts.env } : undefined;
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { encoding: 'utf8', timeout: opts.timeout ?? 120_000, cwd: opts.cwd, env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
