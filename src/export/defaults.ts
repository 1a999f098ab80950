// Default settings of fold, in one place: the library applies them, the CLI shows them in --help. A module
// with no imports, so that the command line can read it without loading the passes.
export const FOLD_DEFAULTS = {
  objective: 'latency', cost: 'measured', tolerance: 1e-4, eps: 0, seed: 1234, batch: 2, latencyRuns: 20, verify: 'each', borders: 'exact',
} as const;
