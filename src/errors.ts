/** An error meant for the user: one line naming the file, node or option at fault. */
export class LinfoldError extends Error {
  constructor(message: string, readonly exitCode = 2, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LinfoldError';
  }
}

/**
 * How a library message names an option: `option batchSize` (the API's spelling). The command line prints
 * the same message with its flags (asFlags: `--batch-size`), so one message serves both.
 */
export const option = (name: string): string => `option ${name}`;

/** Library option names whose command-line flag is spelled differently. */
const FLAG_NAMES: Record<string, string> = { inputShapes: 'input-shape', maxSteps: 'steps', checkpointDir: 'checkpoint', logFile: 'log', outDir: 'out' };

/** A library message with its `option name`s spelled as command-line flags. */
export function asFlags(message: string): string {
  return message.replace(/\boption ([a-z][A-Za-z]*)\b/g, (_, n: string) => `--${FLAG_NAMES[n] ?? n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
}

export function fail(message: string, exitCode = 2): never {
  throw new LinfoldError(message, exitCode);
}

/** A message on one line, whole: its lines trimmed and joined with ' | ' (onnxruntime's errors span several). */
export function oneLine(message: string): string {
  return message.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).join(' | ');
}
