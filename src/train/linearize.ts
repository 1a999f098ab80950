// linearize(): fine-tune a model whose activations were made linearizable, with the sparsity prior pushing
// slopes to 1 (DESIGN.md §1). Task loss: labels (CE), distillation from the original model run by
// onnxruntime-node, or both. Channels within freezeEps of 1 are set to exactly 1 and frozen.
import { product } from '../import/shape-math.js';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { LinfoldError, option } from '../errors.js';
import type { Model } from '../import/ir.js';
import { Tensor, argmaxRows } from '../import/tensor.js';
import { recordOriginal, recordedOriginal } from '../import/onnx-io.js';
import { ortSession, runOrt, type OrtSession } from '../import/ort.js';
import { trainableBatch, perSampleExecutable, perSampleSession } from './per-sample.js';
import { compile, type Executable } from '../import/tfjs/executor.js';
import { audit } from '../analyze/audit.js';
import { Progress } from '../progress.js';
import { listBackends, tf, useBackend, type BackendName } from '../import/tfjs/backends.js';
import type { Batch, Dataset } from './data.js';
import { seededRandom } from './data.js';
import { gaussian } from '../import/random.js';
import { LINEARIZE_DEFAULTS, withDefaults } from './defaults.js';
import { makeLinearizable, type Granularity, type Slope } from './linearizable.js';
import { augmentBatch, NO_AUGMENTATION, type Augmentation } from './augment.js';
import { crossEntropy, distillKL, distillMSE, lambdaAt, priorTerm, type PriorKind } from './objective.js';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint, type NamedArray } from './checkpoint.js';
import { padFront, type PadFrontRewrite } from '../export/pad-front.js';
import { cloneModel } from '../import/ir-edit.js';
import { inferShapes } from '../import/shape-inference.js';
import { compareValues } from '../import/tensor.js';
import { autoNativeBackend, isNativeBackend, nativeBackend, type NativeBackendName, type StepBackend, type StepParams } from './native/backend.js';
import { batchTensors } from './feeds.js';
import { isLanguageModel, nextTokenNll, outputRows, tokenWidth } from './sequence.js';

export type TaskLoss = 'ce' | 'distill' | 'both';

export interface LinearizeOptions {
  data: Dataset;
  loss?: TaskLoss;
  /** Weights of the two task losses when loss = both. */
  ceWeight?: number;
  distillWeight?: number;
  distillKind?: 'kl' | 'mse';
  temperature?: number;
  prior?: PriorKind;
  lambda?: number;
  /** Steps over which λ ramps up linearly from 0. */
  lambdaWarmup?: number;
  freezeEps?: number;
  optimizer?: 'adam' | 'sgd';
  lr?: number;
  /** Learning rate of the slopes (they travel 0 → 1; default 1e-2). */
  slopeLr?: number;
  momentum?: number;
  schedule?: 'constant' | 'cosine' | 'step';
  /** step schedule: multiply by gamma every stepEvery epochs */
  stepEvery?: number;
  gamma?: number;
  batchSize?: number;
  epochs?: number;
  /** Epochs after the prior phase with the slopes fixed and no prior: the weights adapt to the linearized
   *  activations and recover accuracy (default 0). */
  finetuneEpochs?: number;
  /** Also train the slopes of channels not yet linear while fine-tuning (no prior; linear ones stay at 1). */
  finetuneSlopes?: boolean;
  /** Learning rate of the weights in the fine-tuning phase (default: lr); its schedule restarts there. */
  finetuneLr?: number;
  /**
   * When the fine-tuning phase starts, every slope not yet linear goes back to its starting value (the original
   * activation) and stays there: each activation ends either the identity (folded away) or exactly the one the
   * model came with (which onnxruntime fuses into its conv), never a slower PRelu or blend in between.
   */
  snap?: boolean;
  /** Stop after this many steps in total (for quick runs). */
  maxSteps?: number;
  clipNorm?: number;
  /** Random translations / flips of training images (default none). */
  augment?: Augmentation;
  seed?: number;
  /** A TensorFlow.js backend, or the native one (src/train/native/: the step as one ONNX graph run by onnxruntime). */
  backend?: BackendName | 'auto' | NativeBackendName;
  /** Train only the slopes, keep the weights fixed. */
  slopesOnly?: boolean;
  /** Start from random weights instead of the pretrained ones (the prior applied from scratch). */
  fromScratch?: boolean;
  asPrelu?: boolean;
  /** One slope per channel (default) or per layer. */
  granularity?: Granularity;
  only?: RegExp;
  skip?: RegExp;
  includeGates?: boolean;
  checkpointDir?: string;
  resume?: boolean;
  /** JSONL, one line per epoch. */
  logFile?: string;
  quiet?: boolean;
  /** Progress messages (default: to stderr, unless quiet). */
  log?: (msg: string) => void;
  /** Called after every epoch with its log line. */
  onEpoch?: (log: EpochLog) => void;
  /** Merge-ready padding: when an activation between two convs A → act → B becomes linear and B zero-pads,
   *  move B's padding onto A (src/export/pad-front.ts) and train on in that form, so fold merges B∘A exactly.
   *  Each rewrite's function change is measured on a validation batch and logged (MergeReadyEvent). */
  mergeReady?: boolean;
  /** The distillation teacher (default: the source model). */
  teacher?: Model;
  /** Heal mode (linfold heal): no slopes and no prior; every weight trains, activations stay as they are
   *  (PRelu/LeakyRelu slopes fixed). */
  heal?: boolean;
}

/** One merge-ready rewrite during training: what moved, and how much the function changed at that moment. */
export interface MergeReadyEvent {
  event: 'merge-ready';
  epoch: number;
  step: number;
  rewrites: PadFrontRewrite[];
  /** on the first validation batch (≤ 256 samples), before → after the rewrite */
  samples: number;
  maxRelChange: number;
  /** argmax agreement of the model before and after */
  agreement: number;
  accuracyBefore: number | null;
  accuracyAfter: number | null;
}

export interface EpochLog {
  epoch: number;
  step: number;
  loss: number;
  taskLoss: number;
  priorLoss: number;
  lambda: number;
  lr: number;
  /** With labels: validation accuracy; otherwise agreement with the teacher's argmax (per token for logits
   *  [batch, T, V]). */
  valAccuracy: number | null;
  teacherAgreement: number | null;
  /** A language model (its own token ids in, logits [batch, T, V] out): next-token perplexity on validation. */
  valPerplexity?: number | null;
  apl: number;
  napl: number;
  frozenChannels: number;
  linearChannels: number;
  channels: number;
  seconds: number;
}

export interface LinearizeResult {
  model: Model;
  slopes: Slope[];
  backend: BackendName | NativeBackendName;
  history: EpochLog[];
  before: { valAccuracy: number | null; teacherAgreement: number | null; valPerplexity?: number | null; apl: number; napl: number };
  after: EpochLog;
  /** merge-ready rewrites taken (mergeReady) */
  mergeReady: MergeReadyEvent[];
}

interface LoopState {
  epoch: number;
  step: number;
  history: EpochLog[];
  config: Record<string, unknown>;
}

const defaults = {
  ...LINEARIZE_DEFAULTS,
  loss: LINEARIZE_DEFAULTS.loss as TaskLoss, prior: LINEARIZE_DEFAULTS.prior as PriorKind,
  augment: NO_AUGMENTATION,
};

/** Everything one run trains with, set up once by prepareRun. */
interface Run {
  o: Resolved;
  say?: (m: string) => void;
  source: Model;
  /** the linearizable model the trainer writes back into */
  lmodel: Model;
  slopes: Slope[];
  /** channels each slope value stands for (prior and frozen counts are per channel at either granularity) */
  slopeWeights: number[];
  perToken?: number;
  lm: boolean;
  inputName: string;
  teacher?: OrtSession;
  /** The teacher's argmax rows per validation batch: the teacher does not change, so they are computed once. */
  teacherVotes: number[][];
  trainer: StepBackend;
  backend: BackendName | NativeBackendName;
}

type Evaluation = Pick<EpochLog, 'valAccuracy' | 'teacherAgreement' | 'valPerplexity' | 'apl' | 'napl' | 'linearChannels' | 'channels'>;

export async function linearize(fixed: Model, options: LinearizeOptions): Promise<LinearizeResult> {
  const o: Resolved = { ...defaults, ...withDefaults({}, options) };
  const run = await prepareRun(fixed, o);
  const { trainer, slopes, slopeWeights, lmodel, say } = run;
  const startSlopes = slopes.map((_, k) => trainer.slope(k));
  const stepsPerEpoch = Math.ceil(o.data.train.size / o.batchSize);
  const allEpochs = o.epochs + o.finetuneEpochs;
  const totalSteps = Math.min(o.maxSteps ?? Infinity, stepsPerEpoch * allEpochs);
  const config = runConfig(o);
  let state = await resumeState(run, config);

  const e0 = await evaluate(run);
  const before = { valAccuracy: e0.valAccuracy, teacherAgreement: e0.teacherAgreement, ...(run.lm ? { valPerplexity: e0.valPerplexity } : {}), apl: e0.apl, napl: e0.napl };
  const progress = new Progress({ total: totalSteps, label: 'linearize', quiet: o.quiet });
  progress.tick(state.step, {});
  const priorSteps = Math.min(totalSteps, stepsPerEpoch * o.epochs);
  const lrAt = (step: number, base: number) => scheduledLr(step, base, { ...o, priorSteps, totalSteps, stepsPerEpoch });
  const weightLrAt = (step: number) => lrAt(step, step < priorSteps ? o.lr : o.finetuneLr ?? o.lr);

  // per slope value: 1 once the channel is linear (exactly 1); it stays 1 whatever the optimizer does
  const linear = slopes.map((_, k) => Uint8Array.from(trainer.slope(k), (a) => Number(a === 1)));
  const mergeEvents: MergeReadyEvent[] = [];
  const mergeReadyNow = mergeReadyProbe(run, mergeEvents, () => state.step);
  await mergeReadyNow(state.epoch);
  for (let epoch = state.epoch; epoch < allEpochs && state.step < totalSteps; epoch++) {
    const t0 = Date.now();
    // fine-tuning phase: no prior; the slopes are fixed, or with finetuneSlopes the channels not yet linear train
    const priorPhase = epoch < o.epochs;
    const slopesTrain = priorPhase || (o.finetuneSlopes && !o.snap);
    if (o.snap && epoch === o.epochs && o.finetuneEpochs > 0) {
      const snapped = snapSlopes(trainer, startSlopes, linear, slopeWeights);
      say?.(`fine-tuning: ${snapped} channel(s) not linear went back to the original activation`);
    }
    if (o.slopesOnly && !slopesTrain) break;
    let sumLoss = 0, sumTask = 0, sumPrior = 0, count = 0;
    for (const plain of o.data.train.batches(o.batchSize, { shuffle: true, seed: o.seed, epoch })) {
      if (state.step >= totalSteps) break;
      const b = augmentBatch(plain, o.augment, o.seed * 1_000_003 + state.step);
      const lambda = priorPhase ? lambdaAt(state.step, o.lambda, o.lambdaWarmup) : 0;
      const tLogits = run.teacher && o.loss !== 'ce' ? await teacherLogits(run.teacher, run.inputName, b, o.data) : undefined;
      const [loss, task, prior] = await trainer.step(b, { teacher: tLogits, lambda, lrW: weightLrAt(state.step), lrS: lrAt(state.step, o.slopeLr), trainSlopes: Boolean(slopesTrain) });
      if (!Number.isFinite(loss)) {
        progress.finish();
        throw new LinfoldError(`loss became ${loss} at step ${state.step + 1} (epoch ${epoch + 1}); lower ${option('lr')} or ${option('lambda')}${o.checkpointDir ? `; the last good checkpoint is ${o.checkpointDir}` : ''}`, 3);
      }
      const wasFrozen = frozenCount(linear, slopeWeights);
      const frozen = slopesTrain ? freezeSlopes(trainer, o.freezeEps, slopeWeights, linear) : wasFrozen;
      if (frozen > wasFrozen) await mergeReadyNow(epoch);
      state.step++;
      sumLoss += loss * b.size; sumTask += task * b.size; sumPrior += prior * b.size; count += b.size;
      progress.tick(1, { loss, prior, frozen });
    }
    const log: EpochLog = {
      epoch: epoch + 1, step: state.step, loss: sumLoss / count, taskLoss: sumTask / count, priorLoss: sumPrior / count,
      lambda: lambdaAt(state.step, o.lambda, o.lambdaWarmup), lr: weightLrAt(state.step - 1), ...(await evaluate(run)),
      frozenChannels: frozenCount(linear, slopeWeights), seconds: (Date.now() - t0) / 1000,
    };
    state = { epoch: epoch + 1, step: state.step, history: [...state.history, log], config };
    await recordEpoch(run, state, log, progress);
  }
  trainer.syncToModel(lmodel);
  const history = state.history;
  const result: LinearizeResult = { model: lmodel, slopes, backend: run.backend, history, before, mergeReady: mergeEvents, after: history[history.length - 1] ?? { ...before, epoch: 0, step: 0, loss: NaN, taskLoss: NaN, priorLoss: NaN, lambda: 0, lr: 0, frozenChannels: 0, linearChannels: e0.linearChannels, channels: e0.channels, seconds: 0 } };
  await trainer.dispose();
  await run.teacher?.release();
  return result;
}

/** The model made trainable (batch freed, activations linearizable), its teacher, and the step backend. */
async function prepareRun(fixed: Model, o: Resolved): Promise<Run> {
  const say = o.quiet ? undefined : o.log ?? ((m: string) => void process.stderr.write(`${m}\n`));
  // a batch fixed at 1 by the exporter becomes symbolic (the written model keeps it so), else runs per example
  const { model: source, perSample } = await trainableBatch(fixed, say);
  const perToken = tokenWidth(source);
  if (perToken && o.loss !== 'distill') throw new LinfoldError(`${option('loss')} '${o.loss}': ${source.path ?? 'the model'} has logits per token [batch, T, ${perToken}]; train it with ${option('loss')} 'distill' (KL per token)`);
  if (o.loss !== 'distill' && !o.data.hasLabels) throw new LinfoldError(`${option('loss')} '${o.loss}' needs labels, and ${o.data.name} has none (use ${option('loss')} 'distill')`);
  const tfjsOnly = o.heal ? 'heal' : o.mergeReady ? option('mergeReady') : perSample ? 'a model whose batch cannot be freed' : o.data.inputs ? 'a model with several inputs' : perToken ? 'per-token logits [batch, T, V]' : undefined;
  const auto = (o.backend ?? 'auto') === 'auto';
  const native = isNativeBackend(o.backend) ? o.backend : auto ? autoNativeBackend(listBackends().some((b) => b.name === 'tensorflow-gpu' && b.available), tfjsOnly, say) : undefined;
  if (native && tfjsOnly) throw new LinfoldError(`backend '${native}': ${tfjsOnly} runs on the TensorFlow.js backends only (choose ${option('backend')} 'wasm')`);
  const lm = isLanguageModel(source, o.data, perToken);
  let backend = native ?? (await useBackend((o.backend ?? 'auto') as BackendName | 'auto'));
  const { model: lmodel, slopes } = o.heal ? { model: cloneModel(source), slopes: [] as Slope[] } : makeLinearizable(source, { asPrelu: o.asPrelu, only: o.only, skip: o.skip, includeGates: o.includeGates, granularity: o.granularity });
  if (o.heal) inferShapes(lmodel);
  // the file the user brought, for fold's comparison (a model linearized again keeps the first one's)
  if (!o.heal && source.path && existsSync(source.path) && !recordedOriginal(source).path) recordOriginal(lmodel, source.path);
  const slopeWeights = slopes.map((s) => s.channels / s.size);
  if (!slopes.length && !o.heal) throw new LinfoldError(`${source.path ?? 'model'}: no activation to linearize${o.only || o.skip ? ` (check ${option('only')}/${option('skip')})` : ''}`);
  checkInput(source, o.data);
  if (o.fromScratch) reinitialize(lmodel, slopes, o.seed);
  const teaching = o.loss !== 'ce' || !o.data.hasLabels;
  // the teacher (heal's, or the model itself) may have its batch fixed at 1 too
  const t = teaching && o.teacher ? await trainableBatch(o.teacher) : { model: source, perSample };
  const teacher = teaching ? perSampleSession(await ortSession(t.model, t.model.path), t.perSample) : undefined;
  // heal: the activations' own slopes (PRelu) stay fixed
  const fixedNames = new Set(o.heal ? lmodel.graph.nodes.filter((n) => n.opType === 'PRelu').map((n) => n.inputs[1]) : []);
  let trainer: StepBackend | undefined;
  if (native) {
    try {
      trainer = await nativeBackend(lmodel, native, { ...o, slopes: slopes.map((s, k) => ({ name: s.name, weight: slopeWeights[k] })), classes: outputWidth(lmodel) });
    } catch (e) {
      // auto: a model the native step cannot train (an op without a gradient rule, ...) trains on TensorFlow.js
      if (!auto || !(e instanceof LinfoldError)) throw e;
      say?.(`backend auto: TensorFlow.js, not onnxruntime (${e.message.replace(/^native backend: /, '')})`);
      backend = await useBackend('auto');
    }
  }
  trainer ??= tfjsBackend(lmodel, slopes, slopeWeights, o, o.slopeLr, { perSample, fixedNames });
  return { o, say, source, lmodel, slopes, slopeWeights, perToken, lm, inputName: lmodel.graph.feeds[0].name, teacher, teacherVotes: [], trainer, backend };
}

/** The settings a checkpoint must share with the run that resumes it. */
function runConfig(o: Resolved): Record<string, unknown> {
  return { loss: o.loss, prior: o.prior, lambda: o.lambda, lr: o.lr, slopeLr: o.slopeLr, batchSize: o.batchSize, epochs: o.epochs, finetuneEpochs: o.finetuneEpochs, finetuneLr: o.finetuneLr ?? o.lr, finetuneSlopes: Boolean(o.finetuneSlopes), ...(o.snap ? { snap: true } : {}), seed: o.seed, optimizer: o.optimizer, augment: o.augment, granularity: o.granularity ?? 'channel', ...(o.mergeReady ? { mergeReady: true } : {}), ...(o.heal ? { heal: true } : {}) };
}

/** A fresh loop state, or the checkpoint's (loaded into the trainer) with resume. */
async function resumeState({ o, trainer }: Run, config: Record<string, unknown>): Promise<LoopState> {
  if (!(o.resume && o.checkpointDir && hasCheckpoint(o.checkpointDir))) return { epoch: 0, step: 0, history: [], config };
  const ck = loadCheckpoint<LoopState>(o.checkpointDir);
  const changed = Object.keys(config).filter((k) => JSON.stringify(ck.state.config[k]) !== JSON.stringify(config[k]));
  if (changed.length)
    throw new LinfoldError(`${o.checkpointDir}: the checkpoint was made with other settings (${changed.map((k) => `${k}: ${JSON.stringify(ck.state.config[k])} then, ${JSON.stringify(config[k])} now`).join('; ')}); resume with the same options or start over without ${option('resume')}`);
  trainer.load(ck.model, o.checkpointDir);
  await trainer.setOptimizerState(ck.optimizer, o.checkpointDir);
  return ck.state;
}

/** Validation accuracy / teacher agreement / perplexity, and the audit of the current slopes. */
async function evaluate({ o, trainer, teacher, teacherVotes, lmodel, perToken, lm, inputName }: Run): Promise<Evaluation> {
  let correct = 0, agree = 0, n = 0, rowsSeen = 0, nll = 0, nllCount = 0, k = 0;
  for (const b of o.data.validation.batches(256)) {
    const out = await trainer.predict(b);
    const rows = outputRows(out, b, perToken);
    const p = argmaxRows(out, rows);
    if (b.y && !perToken) for (let i = 0; i < b.size; i++) correct += Number(p[i] === b.y[i]);
    if (teacher) {
      const tp = (teacherVotes[k] ??= argmaxRows(await teacherLogits(teacher, inputName, b, o.data), rows));
      for (let i = 0; i < rows; i++) agree += Number(p[i] === tp[i]);
    }
    k++;
    if (lm) {
      const r = nextTokenNll(out, b.x, b.size, b.shape[1], perToken!);
      nll += r.sum;
      nllCount += r.count;
    }
    n += b.size;
    rowsSeen += rows;
  }
  trainer.syncToModel(lmodel);
  const r = audit(lmodel, { eps: o.freezeEps });
  return {
    valAccuracy: o.data.hasLabels && !perToken ? correct / n : null, teacherAgreement: teacher ? agree / rowsSeen : null,
    ...(lm ? { valPerplexity: Math.exp(nll / nllCount) } : {}),
    apl: r.summary.apl, napl: r.summary.napl, linearChannels: r.summary.linearChannels, channels: r.summary.channels,
  };
}

/** Merge-ready padding (mergeReady): at each call, rewrite the graph at the activations that became linear
 *  between convs and measure the function change on a validation batch; no-op otherwise. */
function mergeReadyProbe(run: Run, events: MergeReadyEvent[], stepNow: () => number): (epoch: number) => Promise<void> {
  const { o, trainer, lmodel, say } = run;
  const probe = o.mergeReady ? o.data.validation.batches(256).next().value as Batch | undefined : undefined;
  return async (epoch) => {
    if (!probe) return;
    trainer.syncToModel(lmodel);
    const before = await trainer.predict(probe);
    const rewrites = padFront(lmodel);
    if (!rewrites.length) return;
    trainer.recompile!();
    const after = await trainer.predict(probe);
    const [pb, pa] = [argmaxRows(before, probe.size), argmaxRows(after, probe.size)];
    const acc = (p: number[]) => (probe.y ? p.filter((c, i) => c === probe.y![i]).length / probe.size : null);
    const ev: MergeReadyEvent = {
      event: 'merge-ready', epoch: epoch + 1, step: stepNow(), rewrites, samples: probe.size,
      maxRelChange: compareValues(after, before).maxRelError, agreement: pa.filter((c, i) => c === pb[i]).length / probe.size,
      accuracyBefore: acc(pb), accuracyAfter: acc(pa),
    };
    events.push(ev);
    appendLog(o.logFile, ev);
    if (!o.quiet) {
      const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(2)}%`);
      say?.(`\nmerge-ready (step ${ev.step}): ${rewrites.map((r) => `${r.second}'s padding onto ${r.first} (pads ${r.padsBefore.join(',')} → ${r.padsAfter.join(',')})`).join('; ')}: max relative output change ${ev.maxRelChange.toExponential(2)}, agreement ${pct(ev.agreement)}, accuracy ${pct(ev.accuracyBefore)} → ${pct(ev.accuracyAfter)} on ${ev.samples} validation samples`);
    }
  };
}

/** End of an epoch: the log file, the checkpoint, the console line, the caller's callback. */
async function recordEpoch({ o, trainer, lmodel, say }: Run, state: LoopState, log: EpochLog, progress: Progress): Promise<void> {
  appendLog(o.logFile, log);
  // lmodel holds the trainer's tensors: evaluate() synced it after the epoch's last step
  if (o.checkpointDir) {
    saveCheckpoint(o.checkpointDir, { model: lmodel, optimizer: await trainer.optimizerState(), state });
  }
  if (!o.quiet) {
    progress.finish();
    say?.(`epoch ${log.epoch}: loss ${log.loss.toFixed(4)} ${[log.valAccuracy !== null ? `val acc ${(100 * log.valAccuracy).toFixed(2)}%` : '', log.teacherAgreement !== null ? `teacher agreement ${(100 * log.teacherAgreement).toFixed(2)}%` : ''].filter(Boolean).join(' ')}${log.valPerplexity ? ` perplexity ${log.valPerplexity.toFixed(3)}` : ''} NAPL ${log.napl.toFixed(3)} linear ${log.linearChannels}/${log.channels} (${log.seconds.toFixed(1)} s)`);
  }
  o.onEpoch?.(log);
}

function appendLog(file: string | undefined, entry: object): void {
  if (!file) return;
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, JSON.stringify(entry) + '\n');
}

/** The TensorFlow.js executor as the loop's backend: tf.variableGrads of the loss, tfjs optimizers. */
type Resolved = LinearizeOptions & Required<Pick<LinearizeOptions, keyof typeof defaults>>;

function tfjsBackend(lmodel: Model, slopes: Slope[], slopeWeights: number[], o: Resolved, slopeLr: number, extra: { perSample?: string[]; fixedNames?: Set<string> } = {}): StepBackend {
  const input = lmodel.graph.feeds[0];
  let exe!: Executable, outName!: string, slopeVars: tf.Variable[] = [], weightVars: tf.Variable[] = [];
  // (re)compiles the training graph from lmodel; the variables keep their order, so the optimizers' state
  // (kept per position in the variable list) carries over a recompile (merge-ready rewrites)
  const build = () => {
    exe = perSampleExecutable(compile(lmodel, { alsoTrainable: slopes.map((s) => s.name) }), extra.perSample);
    outName = exe.outputs[0].name;
    slopeVars = slopes.map((s) => exe.variables.get(s.name)!);
    const notWeights = new Set([...slopeVars, ...[...(extra.fixedNames ?? [])].map((n) => exe.variables.get(n))]);
    weightVars = o.slopesOnly ? [] : exe.trainableVariables.filter((v) => !notWeights.has(v));
  };
  build();
  const makeOpt = (lr: number) => (o.optimizer === 'sgd' ? tf.train.momentum(lr, o.momentum) : tf.train.adam(lr));
  const optW = makeOpt(o.lr);
  const optS = makeOpt(slopeLr);
  return {
    async step(b: Batch, p: StepParams) {
      const trained = p.trainSlopes ? [...weightVars, ...slopeVars] : weightVars;
      setLr(optW, p.lrW);
      setLr(optS, p.lrS);
      const tLogits = p.teacher;
      return tf.tidy(() => {
        const x = toFeeds(b, o.data, input.name);
        const y = b.y ? tf.tensor1d(b.y, 'int32') : undefined;
        // rows of the losses: one per example, or one per token (softmax over V at every position)
        const width = tokenWidth(lmodel);
        const teach = tLogits ? tf.tensor(tLogits, width ? [tLogits.length / width, width] : [b.size, tLogits.length / b.size]) : undefined;
        let taskVal!: tf.Scalar, priorVal!: tf.Scalar;
        const f = () => {
          const out = tf.reshape(exe.run(x)[outName], width ? [-1, width] : [b.size, -1]);
          const parts: tf.Scalar[] = [];
          if (o.loss !== 'distill') parts.push(tf.mul(o.ceWeight, crossEntropy(out, y!)) as tf.Scalar);
          if (teach) parts.push(tf.mul(o.loss === 'both' ? o.distillWeight : 1, o.distillKind === 'mse' ? distillMSE(out, teach) : distillKL(out, teach, o.temperature)) as tf.Scalar);
          // kept past variableGrads' own tidy so the parts can be logged; disposed below
          taskVal = tf.keep(tf.addN(parts) as tf.Scalar);
          priorVal = tf.keep(priorTerm(slopeVars, o.prior, p.lambda, slopeWeights));
          return tf.add(taskVal, priorVal) as tf.Scalar;
        };
        const { value, grads } = tf.variableGrads(f, trained);
        const clipped = o.clipNorm ? clipByGlobalNorm(grads, o.clipNorm) : grads;
        const named = (vs: tf.Variable[]) => vs.map((v) => ({ name: v.name, tensor: clipped[v.name] }));
        if (weightVars.length) optW.applyGradients(named(weightVars));
        if (p.trainSlopes && slopeVars.length) optS.applyGradients(named(slopeVars));
        const values = [value, taskVal, priorVal].map((t) => t.dataSync()[0]);
        taskVal.dispose();
        priorVal.dispose();
        return values as [number, number, number];
      });
    },
    async predict(b: Batch) {
      const out = tf.tidy(() => exe.run(toFeeds(b, o.data, input.name))[outName]);
      const v = Float32Array.from((await out.data()) as Float32Array);
      out.dispose();
      return v;
    },
    slope: (k: number) => Float32Array.from(slopeVars[k].dataSync() as Float32Array),
    setSlope: (k: number, values: Float32Array) => slopeVars[k].assign(tf.tensor(values, slopeVars[k].shape)),
    load(m: Model, where: string) {
      for (const [name, v] of exe.variables) {
        const t = m.graph.initializers.get(name);
        if (!t) throw new LinfoldError(`${where}: checkpoint has no value for '${name}' (was it made from another model?)`);
        v.assign(tf.tensor(t.float32(), v.shape));
      }
    },
    syncToModel: (m: Model) => exe.syncToModel(m),
    optimizerState: async () => [...(await optimizerState(optW, 'w/')), ...(await optimizerState(optS, 's/'))],
    async setOptimizerState(all: NamedArray[], where: string) {
      if (all.length && !all.some((a) => a.name.startsWith('w/') || a.name.startsWith('s/')))
        throw new LinfoldError(`${where}: the checkpoint's optimizer state comes from the onnxruntime backend; resume with ${option('backend')} 'onnxruntime'`);
      await setOptimizerState(optW, 'w/', all);
      await setOptimizerState(optS, 's/', all);
    },
    recompile() {
      exe.dispose();
      build();
    },
    async dispose() {
      exe.dispose();
      optW.dispose();
      optS.dispose();
    },
  };
}

/** Values per row of the model's first output (the class count for classifiers). */
function outputWidth(model: Model): number | undefined {
  const shape = model.graph.outputs[0]?.shape;
  const rest = shape?.slice(1);
  return rest && rest.every((d) => typeof d === 'number') ? product(rest as number[]) : undefined;
}

/** Data sample shape and dtype must match the model's first input. */
function checkInput(model: Model, data: Dataset): void {
  const input = model.graph.feeds[0];
  const want = input.shape?.slice(1);
  const wantInt = input.dtype === 'int64' || input.dtype === 'int32';
  const shapeOk = !want || (want.length === data.sampleShape.length && want.every((d, i) => typeof d !== 'number' || d === data.sampleShape[i]));
  if (!shapeOk || wantInt !== (data.dtype === 'int32'))
    throw new LinfoldError(`${data.name}: samples are ${data.dtype} [${data.sampleShape.join(', ')}], but input '${input.name}' of ${model.path ?? 'the model'} expects ${input.dtype} [${(input.shape ?? []).join(', ')}]`);
}

/** The batch as executor feeds: every named input of multi-input data, or `inputName` ← batch.x. */
function toFeeds(b: Batch, data: Dataset, inputName: string): Record<string, tf.Tensor> {
  const one = (x: Float32Array | Int32Array, shape: number[], dtype: 'float32' | 'int32') => tf.tensor(x, shape, dtype);
  if (!b.feeds || !data.inputs) return { [inputName]: one(b.x, b.shape, data.dtype) };
  return Object.fromEntries(data.inputs.map((i) => [i.name, one(b.feeds![i.name].x, b.feeds![i.name].shape, i.dtype)]));
}

async function teacherLogits(session: OrtSession, inputName: string, b: Batch, data: Dataset): Promise<Float32Array> {
  const out = await runOrt(session, batchTensors(b, data, inputName));
  return Object.values(out)[0].float32();
}

/** Learning rate at a step: the schedule runs once over the prior phase and again over the fine-tuning
 *  phase (a warm restart: the weights adapt to the fixed slopes from a fresh learning rate). */
export function scheduledLr(step: number, base: number, p: { schedule: 'constant' | 'cosine' | 'step'; gamma: number; stepEvery: number; priorSteps: number; totalSteps: number; stepsPerEpoch: number }): number {
  const [local, length] = step < p.priorSteps ? [step, p.priorSteps] : [step - p.priorSteps, p.totalSteps - p.priorSteps];
  return p.schedule === 'cosine' ? base * 0.5 * (1 + Math.cos((Math.PI * local) / Math.max(1, length)))
    : p.schedule === 'step' ? base * p.gamma ** Math.floor(local / (p.stepsPerEpoch * p.stepEvery)) : base;
}

function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): tf.NamedTensorMap {
  const norm = Math.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))).dataSync()[0]);
  if (norm <= maxNorm) return grads;
  const s = maxNorm / norm;
  return Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.mul(g, s)]));
}

/** Channels within eps of 1 join `linear`; every channel in `linear` is set back to exactly 1 (the optimizer's
 *  step may have moved it). Returns the frozen channel count. */
function freezeSlopes(trainer: StepBackend, eps: number, weights: number[], linear: Uint8Array[]): number {
  for (const [k, mask] of linear.entries()) {
    const v = trainer.slope(k); // a copy: edited in place
    let changed = false;
    for (let i = 0; i < v.length; i++) {
      if (!mask[i] && Math.abs(1 - v[i]) >= eps) continue;
      mask[i] = 1;
      if (v[i] !== 1) [v[i], changed] = [1, true];
    }
    if (changed) trainer.setSlope(k, v);
  }
  return frozenCount(linear, weights);
}

/** Slopes not in `linear` are set back to their starting values; returns how many channels that moved. */
function snapSlopes(trainer: StepBackend, start: Float32Array[], linear: Uint8Array[], weights: number[]): number {
  let moved = 0;
  for (const k of linear.keys()) {
    const now = trainer.slope(k);
    const next = Float32Array.from(now, (x, i) => (linear[k][i] ? x : start[k][i]));
    for (let i = 0; i < now.length; i++) if (next[i] !== now[i]) moved += weights[k];
    trainer.setSlope(k, next);
  }
  return moved;
}

function frozenCount(linear: Uint8Array[], weights: number[]): number {
  return linear.reduce((s, mask, k) => s + weights[k] * mask.reduce((n, b) => n + b, 0), 0);
}

function setLr(opt: tf.Optimizer, lr: number): void {
  (opt as unknown as { learningRate: number }).learningRate = lr;
}

async function optimizerState(opt: tf.Optimizer, prefix: string): Promise<NamedArray[]> {
  const ws = await opt.getWeights();
  return Promise.all(ws.map(async (w) => ({ name: prefix + w.name, dims: w.tensor.shape, values: Float32Array.from(await w.tensor.data()) })));
}

async function setOptimizerState(opt: tf.Optimizer, prefix: string, all: NamedArray[]): Promise<void> {
  const mine = all.filter((a) => a.name.startsWith(prefix));
  if (!mine.length) return;
  await opt.setWeights(mine.map((a) => ({ name: a.name.slice(prefix.length), tensor: tf.tensor(a.values, a.dims) })));
}

/** He-normal weights, zero biases: the "from scratch" baseline of the nonlinear-advantage experiment. */
function reinitialize(model: Model, slopes: Slope[], seed: number): void {
  const rnd = seededRandom(seed + 1);
  const gauss = () => gaussian(rnd);
  const skip = new Set(slopes.map((s) => s.name));
  const g = model.graph;
  for (const n of g.nodes) {
    if (!['Conv', 'Gemm', 'MatMul', 'ConvTranspose'].includes(n.opType)) continue;
    n.inputs.forEach((name, k) => {
      const t = g.initializers.get(name);
      if (!t || skip.has(name) || t.dtype !== 'float32') return;
      if (k === 1 && t.dims.length >= 2) {
        const fanIn = n.opType === 'Conv' ? t.size / t.dims[0] : n.opType === 'Gemm' && (n.attrs.transB?.type === 'int' && n.attrs.transB.value) ? t.dims[1] : t.dims[0];
        const std = Math.sqrt(2 / fanIn);
        g.initializers.set(name, Tensor.fromArray(name, 'float32', t.dims, Float32Array.from({ length: t.size }, () => gauss() * std)));
      } else if (k === 2) {
        g.initializers.set(name, Tensor.fromArray(name, 'float32', t.dims, new Float32Array(t.size)));
      }
    });
  }
}
