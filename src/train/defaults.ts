// Default settings of linearize, in one place: the library applies them, the CLI shows them in --help. A
// module with no imports, so that the command line can read it without loading the training code.
export const LINEARIZE_DEFAULTS = {
  loss: 'ce', ceWeight: 1, distillWeight: 1, distillKind: 'kl', temperature: 2, prior: 'l1',
  lambda: 1e-3, lambdaWarmup: 0, freezeEps: 0.01, optimizer: 'adam', lr: 1e-4, slopeLr: 1e-2, momentum: 0.9,
  schedule: 'cosine', stepEvery: 1, gamma: 0.5, batchSize: 64, epochs: 3, finetuneEpochs: 0, seed: 0, granularity: 'channel',
} as const;
