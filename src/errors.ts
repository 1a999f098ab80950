/** An error meant for the user: one line naming the file, node or option at fault. */
export class LinfoldError extends Error {
  constructor(message: string, readonly exitCode = 2, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LinfoldError';
  }
}

export function fail(message: string, exitCode = 2): never {
  throw new LinfoldError(message, exitCode);
}

/** A message on one line, whole: its lines trimmed and joined with ' | ' (onnxruntime's errors span several). */
export function oneLine(message: string): string {
  return message.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).join(' | ');
}
