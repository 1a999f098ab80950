// Subcommands: each parses its options and calls the library API; no logic of its own beyond formatting.
import { dirname, basename, join } from 'node:path';
import { type Command, Option, InvalidArgumentError } from 'commander';
import { LinfoldError } from './errors.js';
import type { Model, LinearizeOptions, HealOptions, FoldOptions, SweepOptions, CheckOptions } from './index.js';
// the defaults --help shows are the library's own, read from their import-free modules (also exported by
// src/index.ts) so that --help does not load the library
import { HEAL_DEFAULTS, LINEARIZE_DEFAULTS, SWEEP_DEFAULTS } from './train/defaults.js';
import { FOLD_DEFAULTS } from './export/defaults.js';

type Shapes = Record<string, number[]>;

/** The library, loaded when a command runs (so that --help stays fast). */
const lib = () => import('./index.js');
const writeText = async (file: string, text: string) => (await lib()).writeFileAtomic(file, text);

async function loadWithShapes(path: string, shapes?: Shapes) {
  return (await lib()).loadModelWithShapes(path, shapes);
}

const num = (name: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isFinite(x)) throw new InvalidArgumentError(`${name} must be a number, got '${v}'`);
  return x;
};
const int = (name: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) throw new InvalidArgumentError(`${name} must be a whole number, got '${v}'`);
  return x;
};
const regex = (name: string) => (v: string) => {
  try {
    return new RegExp(v);
  } catch {
    throw new InvalidArgumentError(`${name}: '${v}' is not a regular expression`);
  }
};
/** `--input-shape name:1x3x224x224` (repeatable; the name may be omitted for single-input models). */
export function parseInputShape(value: string, previous: Record<string, number[]> = {}): Record<string, number[]> {
  const m = /^(?:(.+):)?(\d+(?:x\d+)*)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`'${value}' is not name:DxDxD (e.g. input:1x3x224x224)`);
  return { ...previous, [m[1] ?? '*']: m[2].split('x').map(Number) };
}

const TFJS_BACKENDS = ['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'] as const;
const TRAINING_BACKENDS = [...TFJS_BACKENDS, 'onnxruntime', 'onnxruntime-cuda'] as const;
/** --backend: TensorFlow.js only (check, heal, sweep), or any training backend (linearize, demo). */
const backendOption = (training: boolean) => training
  ? new Option('--backend <name>', 'training backend: TensorFlow.js, or onnxruntime (the whole step as one ONNX graph; onnxruntime-cuda where installed); auto trains on onnxruntime where it can').choices(TRAINING_BACKENDS).default('auto')
  : new Option('--backend <name>', 'TensorFlow.js backend').choices(TFJS_BACKENDS).default('auto');

/** linearize's flags as commander hands them over (choices already checked against the library's types). */
/** fold's flags: the library's options where commander hands them over as they are. */
type FoldFlags = Required<Pick<FoldOptions, 'objective' | 'cost' | 'tolerance' | 'eps' | 'borders'>> & {
  output?: string; original?: string; data?: string; evalData?: string; labels?: string; inputShape?: Shapes; report?: string; json?: boolean; quiet?: boolean;
};

/** sweep's flags. */
type SweepFlags = Required<Pick<SweepOptions, 'lambdas' | 'priors' | 'seeds' | 'epochs' | 'lr' | 'slopeLr' | 'fold'>> & Pick<SweepOptions, 'fromScratch' | 'index' | 'count' | 'point' | 'backend'> & {
  data: string; labels?: string; steps?: number; out: string; output: string; quiet?: boolean; json?: boolean;
};

type LinearizeFlags = Omit<LinearizeOptions, 'data' | 'maxSteps' | 'augment' | 'checkpointDir' | 'logFile' | 'quiet'> & TrainingFlags & { checkpoint?: string };

const inputShapeOption = () => new Option('--input-shape <name:DxD...>', 'concrete input shape, e.g. input:1x3x224x224 (repeatable; name optional for one input)').argParser(parseInputShape);

export function register(program: Command): void {
  for (const command of [
    registerAudit, registerCheck, registerBackends, registerLinearize, registerHeal, registerFold, registerDemo, registerReport, registerSweep, registerCollect,
  ]) command(program);
}

function registerAudit(program: Command): void {
  program
    .command('audit')
    .summary('path-length report of any ONNX model (APL/NAPL, effective depth and width, cost)')
    .description('path-length report of any ONNX model: activation census, APL/NAPL, effective depth and width, params and MACs')
    .argument('<model.onnx>', 'the model to audit')
    .addOption(inputShapeOption())
    .option('--eps <x>', 'a PRelu/LeakyRelu/blend channel is linear when its slope is within eps of 1', num('--eps'), 0.01)
    .option('--count-other', 'count Softmax, LayerNorm, MaxPool and gating Mul in APL/NAPL too')
    .option('--json', 'print the report as JSON (schema: src/analyze/report-schema.md)')
    .option('--markdown', 'print the report as Markdown')
    .option('-o, --output <file>', 'write the report to a file instead of stdout')
    .action(async (file: string, opts: { inputShape?: Shapes; eps: number; countOther?: boolean; json?: boolean; markdown?: boolean; output?: string }) => {
      const { model, shapes } = await loadWithShapes(file, opts.inputShape);
      const { audit, renderTable, renderMarkdown } = await lib();
      const report = audit(model, { inputShapes: shapes, eps: opts.eps, countOtherNonlinear: opts.countOther });
      const text = opts.json ? JSON.stringify(report, null, 2) : opts.markdown ? renderMarkdown(report) : renderTable(report);
      if (opts.output) await writeText(opts.output, text + '\n');
      else process.stdout.write(text + '\n');
    });
}

function registerCheck(program: Command): void {
  program
    .command('check')
    .summary('can this model be trained? op support and tfjs-vs-onnxruntime error')
    .description('can linfold train this model? Lists its ops (supported or not), runs the TensorFlow.js import and onnxruntime on the same random inputs and prints the max relative error per output. Exit code 1 when an op is unsupported or an error exceeds --tolerance.')
    .argument('<model.onnx>')
    .addOption(inputShapeOption())
    .option('--tolerance <x>', 'largest accepted relative error', num('--tolerance'), 1e-4)
    .addOption(backendOption(false))
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { inputShape?: Shapes; tolerance: number; backend: CheckOptions['backend']; json?: boolean }) => {
      const { model, shapes } = await loadWithShapes(file, opts.inputShape);
      const { checkModel } = await lib();
      const { threadCount } = await lib();
      const r = await checkModel(model, { inputShapes: shapes, tolerance: opts.tolerance, backend: opts.backend });
      if (opts.json) console.log(JSON.stringify({ model: file, tolerance: opts.tolerance, ...r }, null, 2));
      else {
        const bad = r.ops.filter((o) => !o.supported);
        console.log(`${file}: ${r.ops.length} op types, ${bad.length ? `${bad.length} unsupported: ${bad.map((o) => o.op).join(', ')}` : 'all supported'}`);
        console.log(`backend: ${r.backend}${r.threads ? ` (${threadCount(r.threads)})` : ''}`);
        if (r.batch) console.log(`  ${r.batch}`);
        for (const o of r.outputs) console.log(`  output ${o.name}: max relative error ${o.maxRelError.toExponential(2)} ${o.maxRelError <= opts.tolerance ? 'ok' : `> ${opts.tolerance}`}`);
        if (r.error) console.log(`  ${r.error}`);
        console.log(r.ok ? 'ok: ready to linearize' : 'not ok');
      }
      if (!r.ok) process.exitCode = 1;
    });
}

function registerBackends(program: Command): void {
  program
    .command('backends')
    .summary('TensorFlow.js backends available here')
    .description('list the TensorFlow.js backends available here and the one that would be chosen')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { listBackends, threadCount } = await lib();
      const list = listBackends();
      const chosen = list.find((b) => b.available)?.name;
      const { nativeBackendInfo } = await lib();
      const native = nativeBackendInfo();
      if (opts.json) {
        console.log(JSON.stringify({ chosen, backends: list.map((b) => ({ ...b, chosen: b.name === chosen })), native }, null, 2));
        return;
      }
      for (const b of list) {
        const threads = b.threads ? ` (${threadCount(b.threads)}; --threads or LINFOLD_THREADS to change)` : '';
        console.log(`${b.name === chosen ? '*' : ' '} ${b.name.padEnd(15)} ${b.available ? `available${threads}` : `unavailable: ${b.reason}`}`);
      }
      // linearize --backend onnxruntime[-cuda]: the training step as one ONNX graph (src/train/native/)
      for (const b of native) console.log(`  ${b.name.padEnd(16)} ${b.available ? 'available (linearize --backend ' + b.name + ')' : `unavailable: ${b.reason}`}`);
      console.log(`\n* = the TensorFlow.js backend --backend auto takes; linearize's auto trains on onnxruntime (onnxruntime-cuda where installed) unless the step needs TensorFlow.js (heal, --merge-ready, a batch fixed at 1, an op without a gradient rule).`);
      console.log('GPU: onnxruntime-cuda (CUDA 12: ONNXRUNTIME_NODE_INSTALL=cuda12 npm i onnxruntime-node), or npm i @tensorflow/tfjs-node-gpu (4.22.0 bundles libtensorflow 2.9.1: CUDA 11.2 + cuDNN 8.1, Linux x64).');
    });
}

/** Flags linearize and heal share: data, loss, optimizer, schedule, run length, logs. */
interface TrainingFlags {
  output?: string; data: string; labels?: string; imageSize?: string; steps?: number; augment: string; log?: string; json?: boolean; quiet?: boolean;
}

/** Declares the flags of TrainingFlags and the training options both commands take, with `d`'s defaults. */
function addTrainingOptions(cmd: Command, d: { temperature: number; distillKind: string; optimizer: string; lr: number; schedule: string; batchSize: number; epochs: number; seed: number }): Command {
  return cmd
    .option('--data <source>', "training data: 'mnist' (bundled digits), a .npy/.npz file (.npz: one array per input name), or an image folder", 'mnist')
    .option('--labels <file.npy>', 'labels for a .npy input file')
    .option('--image-size <CxHxW>', 'image folders: model input size, e.g. 3x224x224')
    .option('--temperature <T>', 'distillation temperature', num('--temperature'), d.temperature)
    .addOption(new Option('--distill-kind <kind>', 'distillation loss on outputs').choices(['kl', 'mse']).default(d.distillKind))
    .addOption(new Option('--optimizer <name>').choices(['adam', 'sgd']).default(d.optimizer))
    .option('--lr <x>', 'learning rate of the weights', num('--lr'), d.lr)
    .addOption(new Option('--schedule <kind>').choices(['cosine', 'step', 'constant']).default(d.schedule))
    .option('--batch-size <n>', 'batch size', int('--batch-size'), d.batchSize)
    .option('--epochs <n>', 'epochs (linearize: with the prior)', int('--epochs'), d.epochs)
    .option('--steps <n>', 'stop after this many steps', int('--steps'))
    .option('--clip-norm <x>', 'clip gradients to this global norm', num('--clip-norm'))
    .option('--augment <list>', "random augmentation of training images: 'shift:<pixels>', 'flip', comma-separated", 'none')
    .option('--seed <n>', 'seed of shuffling and initialisation', int('--seed'), d.seed)
    .option('--log <file.jsonl>', 'one JSON line per epoch (default: <output>.log.jsonl)')
    .option('--quiet', 'no progress output')
    .option('--json', 'print the result summary as JSON');
}

/** The library options of TrainingFlags: data opened, augmentation parsed, files next to the output. */
async function trainingInputs(flags: TrainingFlags, model: Model, out: string) {
  const { openDataset, parseAugmentation } = await lib();
  return {
    data: await openDataset(flags.data, model, { labels: flags.labels, imageSize: flags.imageSize }),
    maxSteps: flags.steps, augment: parseAugmentation(flags.augment), logFile: flags.log ?? `${out}.log.jsonl`, quiet: Boolean(flags.quiet || flags.json),
  };
}

/** `<model>.<suffix>.onnx` next to the model. */
const besides = (file: string, suffix: string) => join(dirname(file), basename(file).replace(/\.onnx$/, '') + `.${suffix}.onnx`);

function registerLinearize(program: Command): void {
  const cmd = program
    .command('linearize')
    .summary('fine-tune with learnable slopes and a prior pushing channels to the identity')
    .description('fine-tune with learnable PReLUs/blends and a sparsity prior pushing channels to the identity, then write the linearized model as standard ONNX')
    .argument('<model.onnx>')
    .option('-o, --output <file>', 'linearized model (default: <model>.linear.onnx)')
    .addOption(new Option('--loss <kind>', 'task loss: labels (ce), distillation from the original model (distill), or both').choices(['ce', 'distill', 'both']).default(LINEARIZE_DEFAULTS.loss))
    .addOption(new Option('--prior <kind>', 'sparsity prior Σ|1−a|^p').choices(['l1', 'l0.5']).default(LINEARIZE_DEFAULTS.prior))
    .option('--lambda <x>', 'prior strength λ', num('--lambda'), LINEARIZE_DEFAULTS.lambda)
    .option('--lambda-warmup <steps>', 'ramp λ up linearly over this many steps', int('--lambda-warmup'), LINEARIZE_DEFAULTS.lambdaWarmup)
    .option('--freeze-eps <x>', 'a slope within eps of 1 is set to exactly 1 and frozen', num('--freeze-eps'), LINEARIZE_DEFAULTS.freezeEps)
    .option('--slope-lr <x>', 'learning rate of the slopes', num('--slope-lr'), LINEARIZE_DEFAULTS.slopeLr)
    .option('--finetune-epochs <n>', 'then epochs with the slopes fixed and no prior (weights recover accuracy)', int('--finetune-epochs'), LINEARIZE_DEFAULTS.finetuneEpochs)
    .option('--finetune-lr <x>', 'learning rate of the weights in the fine-tuning epochs (default: --lr); the schedule restarts there', num('--finetune-lr'))
    .option('--finetune-slopes', 'while fine-tuning, also train the slopes of channels that are not yet linear (linear ones stay at 1)')
    .option('--snap', 'when fine-tuning starts, slopes not yet linear go back to the original activation and stay: every activation ends folded away or as the original (fused by onnxruntime), not as a slower PRelu/blend')
    .addOption(new Option('--granularity <kind>', 'one learnable slope per channel, or one per layer (a layer ends linear or as a LeakyRelu that onnxruntime fuses into its conv), or one per block (layers joined by a single conv share it: an inverted residual block\'s two activations end linear together)').choices(['channel', 'layer', 'block']).default(LINEARIZE_DEFAULTS.granularity))
    .option('--as-prelu', 'replace smooth activations by a plain PReLU (changes the function) instead of the blend')
    .option('--only <regex>', 'only layers whose name matches', regex('--only'))
    .option('--skip <regex>', 'skip layers whose name matches', regex('--skip'))
    .option('--slopes-only', 'train the slopes only, keep the weights')
    .option('--from-scratch', 'start from random weights (the prior applied from scratch)')
    .option('--merge-ready', 'when an activation between two convs becomes linear and the second conv zero-pads, move its padding onto the first (pad-front form) and train on: fold then merges the pair exactly')
    .addOption(backendOption(true))
    .option('--checkpoint <dir>', 'checkpoint folder, written after every epoch (default: <output>.ckpt)')
    .option('--resume', 'continue from the checkpoint');
  addTrainingOptions(cmd, LINEARIZE_DEFAULTS).action(async (file: string, flags: LinearizeFlags) => {
    const { model } = await loadWithShapes(file);
    const { linearize, saveModel } = await lib();
    // commander's camel-cased flags are the library's option names; these few are spelled differently or parsed
    const { output, data, labels, imageSize, steps, augment, checkpoint, log, json, quiet, ...same } = flags;
    const out = output ?? besides(file, 'linear');
    const r = await linearize(model, { ...same, ...(await trainingInputs(flags, model, out)), checkpointDir: checkpoint ?? `${out}.ckpt` });
    saveModel(r.model, out);
    if (json) return console.log(JSON.stringify({ output: out, backend: r.backend, before: r.before, after: r.after, slopes: r.slopes.length }, null, 2));
    const acc = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(2)}%`);
    console.log(`wrote ${out} (trained on ${r.backend})`);
    console.log(`validation ${r.before.valAccuracy !== null ? 'accuracy' : 'agreement with the original'}: ${acc(r.before.valAccuracy ?? r.before.teacherAgreement)} → ${acc(r.after.valAccuracy ?? r.after.teacherAgreement)}`);
    if (r.before.valAccuracy !== null && r.after.teacherAgreement !== null) console.log(`validation agreement with the original: ${acc(r.before.teacherAgreement)} → ${acc(r.after.teacherAgreement)}`);
    if (r.after.valPerplexity) console.log(`validation perplexity (next token): ${r.before.valPerplexity!.toFixed(3)} → ${r.after.valPerplexity.toFixed(3)}`);
    console.log(`NAPL (effective depth): ${r.before.napl.toFixed(3)} → ${r.after.napl.toFixed(3)}; APL ${r.before.apl.toFixed(3)} → ${r.after.apl.toFixed(3)}`);
    console.log(`linear channels: ${r.after.linearChannels}/${r.after.channels}`);
    if (flags.mergeReady) console.log(`merge-ready: ${r.mergeReady.reduce((n, e) => n + e.rewrites.length, 0)} conv pair(s) rewritten to the pad-front form`);
  });
}

/** heal's flags: the training flags plus the teacher, with the library's option names otherwise. */
type HealFlags = Omit<HealOptions, 'teacher' | 'data' | 'maxSteps' | 'augment' | 'logFile' | 'quiet'> & TrainingFlags & { teacher: string };

function registerHeal(program: Command): void {
  const cmd = program
    .command('heal')
    .summary('fine-tune a folded model back towards its teacher (all weights, distillation)')
    .description('fine-tune every weight of a (folded) model, activations unchanged, distilling from the teacher run by onnxruntime (plus labels when the data has them); accuracy and agreement are measured by onnxruntime on the written file')
    .argument('<model.onnx>')
    .requiredOption('--teacher <model.onnx>', 'the model to heal towards (e.g. the one before folding)')
    .option('-o, --output <file>', 'healed model (default: <model>.healed.onnx)')
    .addOption(new Option('--loss <kind>', 'task loss (default: both when the data has labels, else distill)').choices(['ce', 'distill', 'both']))
    .addOption(backendOption(false));
  addTrainingOptions(cmd, { ...LINEARIZE_DEFAULTS, ...HEAL_DEFAULTS }).action(async (file: string, flags: HealFlags) => {
    const { model } = await loadWithShapes(file);
    const { model: teacher } = await loadWithShapes(flags.teacher);
    const { heal, saveModel } = await lib();
    const { output, data, labels, imageSize, steps, augment, log, json, quiet, teacher: _, ...same } = flags;
    const out = output ?? besides(file, 'healed');
    const r = await heal(model, { ...same, ...(await trainingInputs(flags, model, out)), teacher });
    saveModel(r.model, out);
    const summary = { output: out, backend: r.backend, teacher: r.teacher, before: r.before, after: r.after, steps: r.history[r.history.length - 1]?.step ?? 0 };
    if (json) return console.log(JSON.stringify(summary, null, 2));
    const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(2)}%`);
    console.log(`wrote ${out} (trained on ${r.backend})`);
    console.log(`validation accuracy (onnxruntime): ${pct(r.before.accuracy)} → ${pct(r.after.accuracy)} (teacher ${pct(r.teacher.accuracy)})`);
    console.log(`agreement with the teacher: ${pct(r.before.agreement)} → ${pct(r.after.agreement)}`);
  });
}

function registerFold(program: Command): void {
  program
    .command('fold')
    .summary('fold linear layers together and write a shallower, verified ONNX')
    .description('fold linear paths into adjacent layers and write a shallower ONNX, verified with onnxruntime')
    .argument('<model.onnx>')
    .option('-o, --output <file>', 'folded model (default: <model>.folded.onnx)')
    .addOption(new Option('--objective <kind>', 'what merges must lower: onnxruntime latency of the merged layers (measured, the default), MACs, or depth at any cost').choices(['latency', 'depth', 'macs']).default(FOLD_DEFAULTS.objective))
    .addOption(new Option('--cost <how>', 'latency objective: time candidate layers with onnxruntime, or use the MACs-plus-overhead model').choices(['measured', 'model']).default(FOLD_DEFAULTS.cost))
    .option('--original <model.onnx>', 'the model before linearize, to compare against (default: the one linearize recorded in the input, when that file still exists)')
    .option('--tolerance <x>', 'max relative output error vs the input model', num('--tolerance'), FOLD_DEFAULTS.tolerance)
    .option('--eps <x>', 'treat slopes within eps of 1 as exactly 1', num('--eps'), FOLD_DEFAULTS.eps)
    .option('--data <file>', '.npy/.npz inputs to verify on, besides random ones')
    .option('--eval-data <source>', "labelled data to measure validation accuracy of original, input and folded model with onnxruntime: 'mnist' or .npy/.npz (with --labels)")
    .option('--labels <file.npy>', '--eval-data: labels for a .npy of inputs')
    .addOption(new Option('--borders <kind>', "zero-padded conv pairs: merge only where exact, or also 'approximate' (differs on the outer ring; the error is measured and reported, then `linfold heal`)").choices(['exact', 'approximate']).default(FOLD_DEFAULTS.borders))
    .addOption(inputShapeOption())
    .option('--report <file>', 'write the fold report (JSON; Markdown next to it with .md)')
    .option('--json', 'print the report as JSON')
    .option('--quiet', 'no progress output')
    .action(async (file: string, opts: FoldFlags) => {
      const { model, shapes } = await loadWithShapes(file, opts.inputShape);
      const { fold, writeFolded, renderFoldMarkdown } = await lib();
      const out = opts.output ?? besides(file, 'folded');
      const data = opts.data ? (await lib()).verificationFeeds(opts.data, model) : undefined;
      const log = opts.quiet || opts.json ? undefined : (m: string) => process.stderr.write(`${m}\n`);
      const originalPath = opts.original ?? (await originalOf(model, log));
      const original = originalPath ? (await loadWithShapes(originalPath, opts.inputShape)).model : undefined;
      const labelled = opts.evalData ? await (await lib()).openDataset(opts.evalData, model, { labels: opts.labels, imageSize: undefined }) : undefined;
      if (labelled && !labelled.hasLabels) throw new LinfoldError(`--eval-data ${opts.evalData}: the data has no labels`);
      const { ortAccuracy } = await lib();
      const r = await fold(model, {
        objective: opts.objective, cost: opts.cost, tolerance: opts.tolerance, eps: opts.eps, inputShapes: shapes, data, original, log,
        borders: opts.borders, accuracy: labelled ? (m) => ortAccuracy(m, labelled) : undefined,
      });
      if (labelled) {
        r.report.accuracy = {
          data: `${opts.evalData} validation split`,
          ...(original ? { original: await ortAccuracy(original, labelled) } : {}),
          input: await ortAccuracy(model, labelled),
          folded: await ortAccuracy(r.model, labelled),
        };
      }
      await writeFolded(r.model, out, file);
      if (opts.report) {
        await writeText(opts.report, JSON.stringify(r.report, null, 2) + '\n');
        await writeText(opts.report.replace(/\.json$/, '') + '.md', renderFoldMarkdown(r.report));
      }
      if (opts.json) console.log(JSON.stringify({ output: out, ...r.report }, null, 2));
      else {
        const b = r.report.before, a = r.report.after;
        console.log(`wrote ${out}`);
        console.log(`nodes ${b.nodes} → ${a.nodes}, depth ${b.depth} → ${a.depth}, MACs ${b.macs ?? '?'} → ${a.macs ?? '?'}, NAPL ${b.napl?.toFixed(3) ?? '?'} → ${a.napl?.toFixed(3) ?? '?'}`);
        if (b.latencyMs && a.latencyMs) console.log(`onnxruntime latency ${b.latencyMs.toFixed(3)} ms → ${a.latencyMs.toFixed(3)} ms (${(b.latencyMs / a.latencyMs).toFixed(2)}×)`);
        console.log(`folds taken: ${r.report.taken.length}, rejected: ${r.report.rejected.length}; verified max relative error ${r.report.verification.maxRelError.toExponential(2)}`);
        const acc = r.report.accuracy;
        if (acc) console.log(`validation accuracy: ${acc.original !== undefined ? `original ${(acc.original * 100).toFixed(2)}%, ` : ''}input ${(acc.input! * 100).toFixed(2)}%, folded ${(acc.folded * 100).toFixed(2)}%`);
        for (const v of r.report.verdict) console.log(v);
        const ap = r.report.approximation;
        if (ap) console.log(`approximate at the borders: ${ap.merges} merge(s); against the input: max relative error ${ap.maxRelError.toExponential(2)}, top-1 agreement ${(100 * ap.agreement).toFixed(2)}%${ap.accuracy ? `, accuracy ${(100 * ap.accuracy.before).toFixed(2)}% → ${(100 * ap.accuracy.after).toFixed(2)}%` : ''} (heal it: linfold heal ${out} --teacher ${file})`);
      }
    });
}

function registerDemo(program: Command): void {
  program
    .command('demo')
    .summary('the whole pipeline on the bundled MNIST network (audit → linearize → fold → report)')
    .description('the whole pipeline on the embedded default (a bundled MobileNetV2-style MNIST network + the mnist package digits): audit → linearize → fold → verify → report, with depth, MACs, latency and accuracy against the original. Takes a few minutes on 2 CPU cores.')
    .option('-o, --out <dir>', 'where the models and the report go', 'linfold-demo')
    .option('--epochs <n>', 'training epochs with the prior (0: train nothing, not even the fine-tuning epoch)', int('--epochs'))
    .option('--lambda <x>', 'prior strength', num('--lambda'))
    .addOption(backendOption(true))
    .option('--quiet', 'no progress output')
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { out: string; epochs?: number; lambda?: number; backend: LinearizeOptions['backend']; quiet?: boolean; json?: boolean }) => {
      const { demo, renderDemoSummary } = await lib();
      const quiet = Boolean(opts.quiet || opts.json);
      // --epochs 0 trains nothing at all (no fine-tuning either): the pipeline's plumbing alone
      const settings = { backend: opts.backend, ...(opts.epochs !== undefined ? { epochs: opts.epochs, ...(opts.epochs === 0 ? { finetuneEpochs: 0 } : {}) } : {}), ...(opts.lambda !== undefined ? { lambda: opts.lambda } : {}) };
      const s = await demo({ outDir: opts.out, quiet, settings, log: quiet ? undefined : (m) => process.stderr.write(`${m}\n`) });
      if (opts.json) {
        console.log(JSON.stringify(s, null, 2));
        return;
      }
      console.log(`\nwrote ${s.files.linear}\n      ${s.files.folded}\n      ${s.files.report}  (open in a browser)\n      ${s.files.foldReport}\n`);
      console.log(renderDemoSummary(s));
      console.log(`\n(${s.seconds.toFixed(0)} s)`);
    });
}

function registerReport(program: Command): void {
  program
    .command('report')
    .summary('self-contained HTML report (channels, path lengths, core network, cost, sweep curve)')
    .description('one self-contained HTML page: nonlinear vs linear channels per layer, path-length distribution, core-network map, params/MACs, before/after columns with --compare, the accuracy-vs-NAPL curve with --sweep')
    .argument('[model.onnx]', 'the model to report on')
    .option('--compare <other.onnx>', 'a second version of the model (linearized, folded) for before/after columns')
    .option('--fold-report <file.json>', 'a fold report (linfold fold --report) to include')
    .option('--sweep <sweep.json>', 'a sweep result (linfold sweep) to draw')
    .option('--merge <point.json...>', 'merge sweep point files (<out>/points/<i>.json of linfold sweep --index; `linfold collect <out>` does it for a whole folder) into --sweep-out and draw them')
    .option('--sweep-out <file>', 'where --merge writes the merged sweep', 'sweep.json')
    .addOption(inputShapeOption())
    .option('-o, --output <file>', 'the HTML file', 'report.html')
    .action(async (file: string | undefined, opts: { compare?: string; foldReport?: string; sweep?: string; merge?: string[]; sweepOut: string; inputShape?: Shapes; output: string }) => {
      const { audit } = await lib();
      const { renderHtmlReport } = await lib();
      const { mergeSweep } = await lib();
      const { readFileSync } = await import('node:fs');
      let sweepData = opts.sweep ? mergeSweep([opts.sweep]) : undefined;
      if (opts.merge) {
        sweepData = mergeSweep(opts.merge);
        await writeText(opts.sweepOut, JSON.stringify(sweepData, null, 2) + '\n');
      }
      const modelPath = file ?? sweepData?.model ?? undefined;
      if (!modelPath) throw new LinfoldError('report: name a model (or a sweep whose model file exists)');
      const { model, shapes } = await loadWithShapes(modelPath, opts.inputShape);
      const report = audit(model, { inputShapes: shapes });
      const compare = opts.compare ? audit((await loadWithShapes(opts.compare, opts.inputShape)).model, { inputShapes: shapes }) : undefined;
      let fold: unknown;
      if (opts.foldReport) {
        try {
          fold = JSON.parse(readFileSync(opts.foldReport, 'utf8'));
        } catch (e) {
          throw new LinfoldError(`--fold-report ${opts.foldReport}: ${(e as Error).message.split('\n')[0]}`);
        }
      }
      await writeText(opts.output, await renderHtmlReport({ report, compare, fold, sweep: sweepData?.points }));
      console.log(`wrote ${opts.output}`);
    });
}

function registerSweep(program: Command): void {
  program
    .command('sweep')
    .summary('linearize (+ fold) per grid point: the accuracy-vs-effective-depth curve; one job per point on a cluster')
    .description('linearize (+ fold) once per point of the grid λ × prior × seed (× from scratch) and collect validation accuracy, NAPL, MACs and latency per point: the accuracy-vs-depth curve. Each point writes <out>/points/<i>.json (atomically; a point already done is skipped). On a cluster each job runs `--index i --count n` (points i, i+n, …), or takes its index from $JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs), $SLURM_ARRAY_TASK_ID or $AWS_BATCH_JOB_ARRAY_INDEX; `linfold collect <out>` merges them.')
    .argument('<model.onnx>')
    .requiredOption('--lambdas <list>', 'comma-separated λ values, e.g. 0.001,0.003,0.01,0.03,0.1,0.3', (v: string) => v.split(',').map((x) => num('--lambdas')(x)))
    .addOption(new Option('--priors <list>', 'comma-separated sparsity priors: l1, l0.5').default([...SWEEP_DEFAULTS.priors], SWEEP_DEFAULTS.priors.join(',')).argParser((v: string) => v.split(',').map((x) => {
      if (x !== 'l1' && x !== 'l0.5') throw new InvalidArgumentError(`--priors: '${x}' is not l1 or l0.5`);
      return x;
    })))
    .addOption(new Option('--seeds <list>', 'comma-separated seeds of shuffling and initialisation').default([...SWEEP_DEFAULTS.seeds], SWEEP_DEFAULTS.seeds.join(',')).argParser((v: string) => v.split(',').map((x) => int('--seeds')(x))))
    .option('--data <source>', "'mnist', .npy/.npz or an image folder", 'mnist')
    .option('--labels <file.npy>', 'labels for a .npy input file')
    .option('--from-scratch', 'also apply each prior from random init (the nonlinear-advantage comparison)')
    .option('--index <i>', 'run only job i of --count: the points i, i+count, … (default: $JOB_COMPLETION_INDEX, $SLURM_ARRAY_TASK_ID or $AWS_BATCH_JOB_ARRAY_INDEX, the first set; none set: every point)', int('--index'))
    .option('--count <n>', 'the number of jobs the sweep is spread over (default: one job per point)', int('--count'))
    .option('--point <i>', 'another name for --index i', int('--point'))
    .option('--epochs <n>', 'epochs per point', int('--epochs'), SWEEP_DEFAULTS.epochs)
    .option('--steps <n>', 'stop each point after this many steps', int('--steps'))
    .option('--lr <x>', 'learning rate of the weights', num('--lr'), SWEEP_DEFAULTS.lr)
    .option('--slope-lr <x>', 'learning rate of the slopes', num('--slope-lr'), SWEEP_DEFAULTS.slopeLr)
    .option('--no-fold', 'skip folding and latency')
    .option('--out <dir>', 'models, logs, point files (points/<i>.json) and sweep.json', 'sweep-out')
    .option('-o, --output <file>', 'HTML report with the curve (whole sweeps; `linfold collect` for jobs)', 'sweep-report.html')
    .addOption(backendOption(false))
    .option('--quiet', 'no progress output')
    .option('--json', 'print the points as JSON')
    .action(async (file: string, opts: SweepFlags) => {
      const { sweep, resolveIndex, inputFingerprints, renderSweepTable, writeSweepReport } = await lib();
      const job = resolveIndex(opts);
      // said even with --quiet: a scheduler's log should show which index a job took
      process.stderr.write(job ? `linfold sweep: job index ${job.index} from ${job.source}${opts.count !== undefined ? ` of --count ${opts.count}` : ''}\n` : 'linfold sweep: no job index (--index, $JOB_COMPLETION_INDEX, $SLURM_ARRAY_TASK_ID, $AWS_BATCH_JOB_ARRAY_INDEX): every point\n');
      const { model } = await loadWithShapes(file);
      const data = await (await lib()).openDataset(opts.data, model, { labels: opts.labels, imageSize: undefined });
      const quiet = Boolean(opts.quiet || opts.json);
      const r = await sweep(model, {
        data, lambdas: opts.lambdas, priors: opts.priors, seeds: opts.seeds, fromScratch: opts.fromScratch, index: job?.index, count: opts.count, indexSource: job?.source,
        epochs: opts.epochs, maxSteps: opts.steps, lr: opts.lr, slopeLr: opts.slopeLr, fold: opts.fold, outDir: opts.out, backend: opts.backend, quiet,
        command: ['linfold', ...process.argv.slice(2)], inputs: inputFingerprints(file, opts.data, opts.labels), log: quiet ? undefined : (m) => process.stderr.write(`${m}\n`),
      });
      if (!job) await writeSweepReport(r, opts.output, { model, title: `linfold sweep — ${file}` });
      if (opts.json) console.log(JSON.stringify(r, null, 2));
      else {
        console.log(renderSweepTable(r));
        if (!job) console.log(`wrote ${opts.output} and ${join(opts.out, 'sweep.json')}`);
        else console.log(`wrote ${join(opts.out, 'points')}/; merge with: linfold collect ${opts.out}`);
      }
    });
}

function registerCollect(program: Command): void {
  program
    .command('collect')
    .summary("merge a sweep's point files into the table, sweep.json and the HTML report; name missing and failed points")
    .description('merge whatever point files <out>/points/<i>.json exist (from `linfold sweep` jobs) into the sweep table, <out>/sweep.json and the HTML report with the accuracy-vs-NAPL curve; list the points missing (not run, running, or killed) and failed (with their error). Exit code 1 with --require-all when any is.')
    .argument('<out>', 'the sweep folder (linfold sweep --out)')
    .option('-o, --output <file>', 'the HTML report (default: <out>/sweep-report.html)')
    .option('--model <model.onnx>', 'the model to audit for the report (default: the swept one, as its path was given)')
    .option('--require-all', 'exit 1 unless every point is done')
    .option('--json', 'print the merged sweep as JSON')
    .action(async (out: string, opts: { output?: string; model?: string; requireAll?: boolean; json?: boolean }) => {
      const { collect, renderSweepTable, writeSweepReport } = await lib();
      const c = collect(out);
      const output = opts.output ?? join(out, 'sweep-report.html');
      await writeText(join(out, 'sweep.json'), JSON.stringify(c, null, 2) + '\n');
      if (opts.json) console.log(JSON.stringify(c, null, 2));
      else console.log(`${renderSweepTable(c)}\n${c.points.length} of ${c.size} points done; wrote ${join(out, 'sweep.json')}`);
      await writeSweepReport(c, output, opts.model ? { model: (await loadWithShapes(opts.model)).model } : {});
      if (!opts.json) console.log(`wrote ${output}`);
      if (c.missing.length) process.stderr.write(`missing: ${c.missing.join(', ')} (not run yet, still running, or killed: rerun those jobs)\n`);
      for (const f of c.failed) process.stderr.write(`failed: ${f.index}: ${f.error} (${join(out, 'points', `${f.index}.failed.json`)})\n`);
      const notDone = c.missing.length + c.failed.length;
      if (opts.requireAll && notDone) throw new LinfoldError(`--require-all: ${notDone} of ${c.size} points not done (missing: ${c.missing.join(', ') || 'none'}; failed: ${c.failed.map((f) => f.index).join(', ') || 'none'})`, 1);
    });
}

/** The original model `linearize` recorded in a model's metadata, when that file still exists unchanged. */
async function originalOf(model: Model, log?: (m: string) => void): Promise<string | undefined> {
  const r = (await lib()).recordedOriginal(model);
  if (r.problem) log?.(`${r.problem}: comparing with the input only (give --original)`);
  return r.path;
}
