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
