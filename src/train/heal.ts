// heal(): fine-tune a folded model back towards its teacher (Layer Folding's "merge, then fine-tune"): the
// linearize loop with no slopes and no prior — every weight trains, the activations stay as they are —
// distilling from the teacher run by onnxruntime-node (and from labels too when the data has them).
// Accuracy and agreement with the teacher are measured by onnxruntime on the model as written.
import { LinfoldError, option } from '../errors.js';
import type { Model } from '../import/ir.js';
import { linearize, type LinearizeOptions, type LinearizeResult, type EpochLog } from './linearize.js';
import { ortAccuracy, ortAgreement } from './evaluate.js';
import { HEAL_DEFAULTS, withDefaults } from './defaults.js';

export interface HealOptions extends Omit<LinearizeOptions, 'heal' | 'teacher' | 'prior' | 'lambda' | 'lambdaWarmup' | 'freezeEps' | 'slopeLr' | 'finetuneEpochs' | 'finetuneSlopes' | 'finetuneLr' | 'slopesOnly' | 'fromScratch' | 'asPrelu' | 'granularity' | 'only' | 'skip' | 'includeGates' | 'mergeReady'> {
  /** The model to heal towards (usually the one before folding). */
  teacher: Model;
}

export interface HealMeasure {
  /** validation accuracy (onnxruntime), when the data has labels */
  accuracy: number | null;
  /** top-1 agreement with the teacher on the validation split (onnxruntime) */
  agreement: number;
}

export interface HealResult {
  model: Model;
  backend: LinearizeResult['backend'];
  history: EpochLog[];
  before: HealMeasure;
  after: HealMeasure;
  teacher: HealMeasure;
}

export async function heal(model: Model, opts: HealOptions): Promise<HealResult> {
  const { teacher, ...rest } = opts;
  if (!teacher) throw new LinfoldError(`heal: give the teacher model (${option('teacher')}, e.g. the model before folding)`);
  const loss = opts.loss ?? (opts.data.hasLabels ? 'both' : 'distill');
  const accuracy = async (m: Model) => (opts.data.hasLabels ? ortAccuracy(m, opts.data) : null);
  const measure = async (m: Model): Promise<HealMeasure> => ({ accuracy: await accuracy(m), agreement: await ortAgreement(m, teacher, opts.data) });
  const before = await measure(model);
  const r = await linearize(model, { ...withDefaults(HEAL_DEFAULTS, rest), loss, heal: true, teacher, lambda: 0 });
  return { model: r.model, backend: r.backend, history: r.history, before, after: await measure(r.model), teacher: { accuracy: await accuracy(teacher), agreement: 1 } };
}
