// The command line: a thin layer over the library API in src/index.ts.
import { Command, Option, InvalidArgumentError } from 'commander';
import { LinfoldError, asFlags, oneLine } from './errors.js';

let verbose = false;

export function buildProgram(): Command {
  const program = new Command('linfold')
    .description('Audit, linearize and fold neural networks through ONNX. Every activation becomes a channel-wise blend between itself and the identity; a sparsity prior pushes channels to the identity; linear layers then fold together. The average path length (APL) measures how deep the network still is.')
    .version('0.1.0')
    .option('--verbose', 'print stack traces on errors')
    .option('--threads <n>', 'threads of the wasm backend (default: $LINFOLD_THREADS, else the number of cores; 1 = single-threaded build)', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`--threads must be a whole number ≥ 1, got '${v}'`);
      return n;
    })
    .hook('preAction', (cmd) => {
      verbose = Boolean(cmd.opts().verbose);
      // read by the wasm backend when it starts (src/import/tfjs/backends.ts)
      if (cmd.opts().threads) process.env.LINFOLD_THREADS = String(cmd.opts().threads);
    })
    // a usage error is one line, like every other error: `linfold: error: … (run with --help for usage)`
    .configureOutput({ outputError: (str, write) => write(`linfold: ${oneLine(str.trim())} (run with --help for usage)\n`) });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  const commands = await import('./commands.js');
  commands.register(program);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    exitWithError(e);
  }
}

export function exitWithError(e: unknown): never {
  if (e instanceof LinfoldError) {
    process.stderr.write(`linfold: ${asFlags(oneLine(e.message))}\n`);
    if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exit(e.exitCode);
  }
  const err = e as Error;
  process.stderr.write(`linfold: internal error: ${err?.message !== undefined ? oneLine(err.message) : String(e)}${verbose ? '' : ' (run with --verbose for details)'}\n`);
  if (verbose && err?.stack) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
}

export { Option };
