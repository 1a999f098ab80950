// Subcommands: each parses its options and calls the library API (src/index.ts).
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('backends')
    .description('list the TensorFlow.js backends available here and the one that would be chosen')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { listBackends } = await import('./train/backends.js');
      const list = listBackends();
      const chosen = list.find((b) => b.available)?.name;
      if (opts.json) {
        console.log(JSON.stringify({ chosen, backends: list.map((b) => ({ ...b, chosen: b.name === chosen })) }, null, 2));
        return;
      }
      for (const b of list) console.log(`${b.name === chosen ? '*' : ' '} ${b.name.padEnd(15)} ${b.available ? 'available' : `unavailable: ${b.reason}`}`);
    });
}
