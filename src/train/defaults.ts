// Default settings of linearize, in one place: the library applies them, the CLI shows them in --help. A
// module with no imports, so that the command line can read it without loading the training code.
export const LINEARIZE_DEFAULTS = {
  loss: 'ce', ceWeight: 1, distillWeight: 1, distillKind: 'kl', temperature: 2, prior: 'l1',
  lambda: 1e-3, lambdaWarmup: 0, freezeEps: 0.01, optimizer: 'adam', lr: 1e-4, slopeLr: 1e-2, momentum: 0.9,
  schedule: 'cosine', stepEvery: 1, gamma: 0.5, batchSize: 64, epochs: 3, finetuneEpochs: 0, seed: 0, granularity: 'channel',
} as const;

/** heal: the linearize loop with no prior, all weights training, distillation from the teacher. */
export const HEAL_DEFAULTS = { lr: 3e-4, epochs: 2 } as const;

/** sweep: shorter runs per grid point than a single linearize, with faster learning rates; every point folded. */
export const SWEEP_DEFAULTS = { epochs: 2, lr: 1e-3, slopeLr: 2e-2, priors: ['l1'], seeds: [0], fold: true } as const;

/** `options` over `defaults`: an option given as undefined takes its default. */
export function withDefaults<D extends object, O extends object>(defaults: D, options: O): Omit<D, keyof O> & O {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<O>;
  return { ...defaults, ...given } as unknown as Omit<D, keyof O> & O;
}
