// Runs the CLI from source in a child process, as a user would run `linfold`, and checks its errors.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
/** The command that runs `linfold` from source. */
export const LINFOLD = [process.execPath, '--import', 'tsx', resolve(ROOT, 'src/main.ts')];

export interface Run { code: number | null; stdout: string; stderr: string }

export function linfold(args: string[], opts: { timeout?: number; cwd?: string; env?: Record<string, string> } = {}): Run {
  const env = opts.env ? { ...process.env, ...opts.env } : undefined;
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { encoding: 'utf8', timeout: opts.timeout ?? 120_000, cwd: opts.cwd, env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Starts `cmd` in the background in its own process group (a kill of -pid takes it and what it started), with
 * LINFOLD_THREADS=1 and no scheduler job index inherited; `done` resolves when it exits.
 */
export function start(cmd: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Run> } {
  const base: NodeJS.ProcessEnv = { ...process.env, LINFOLD_THREADS: '1' };
  for (const v of ['JOB_COMPLETION_INDEX', 'SLURM_ARRAY_TASK_ID', 'AWS_BATCH_JOB_ARRAY_INDEX']) delete base[v]; // in case the tests run in such a job
  const child = spawn(cmd[0], cmd.slice(1), { cwd: ROOT, env: { ...base, ...env }, detached: true });
  let stdout = '', stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Run>((res) => child.on('close', (code) => res({ code, stdout, stderr })));
  return { child, done };
}

/**
 * A user error as the CLI must report it: exit code `code` (2 by default), one line `linfold: …` on stderr
 * matching `names` (the file or option at fault), no stack trace.
 */
export function assertCliError(r: Run, names: RegExp, code = 2): void {
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}\n${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected:\n${r.stderr}`);
  assert.match(lines[0], /^linfold: /);
  assert.match(lines[0], names);
  assert.ok(!/\bat .*\.[jt]s:\d+/.test(r.stderr), `no stack trace:\n${r.stderr}`);
}

/**
 * An option value or argument commander rejects: exit 1, `error: …` naming the option (`names`), then at most
 * the pointer to --help; no stack trace.
 */
export function assertUsageError(r: Run, names: RegExp): void {
  assert.equal(r.code, 1, `exit ${r.code}, expected 1\n${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line:\n${r.stderr}`);
  assert.match(lines[0], /^linfold: error: .*\(run with --help for usage\)$/);
  assert.match(lines[0], names);
  assert.ok(!/\bat .*\.[jt]s:\d+/.test(r.stderr), `no stack trace:\n${r.stderr}`);
}
