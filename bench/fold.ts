// bench/fold: onnxruntime-node latency before and after `fold` on linearized ResNet-style models, as a ratio.
//   node --import tsx bench/fold.ts [--runs 50] [--size 56] [--linearized file.onnx ...] [--recipe channel|layer|demo|mbv2] [--original model.onnx] [--only-real]
//        [--objective depth|macs|latency (for --linearized/--recipe; default latency)] [--borders exact|approximate]
// Real models (the issue's measure): each `--linearized` file, or with `--recipe` the mnist_cnn fixture linearized
// here by `linearize` with the recipe below (cached in bench/out/), is folded (objective latency) and timed next to
// its unfolded self and the original ReLU fixture, with onnxruntime's validation accuracy on the MNIST split.
// Models (random weights, every activation a PRelu; slope 1 = linearized):
//  - inverted-residual (MobileNetV2-style) net, fully linear: stem 3×3, 6 blocks x + project(dw3×3(expand(x))),
//    C = 32, expansion 4 → each block folds to one dense 3×3 conv with the residual absorbed;
//  - the same with the middle block still nonlinear ("mostly linear");
//  - bottleneck ResNet (1×1 64→16, 3×3 16→16, 1×1 16→64, + x), fully linear: merging into one dense 3×3
//    64→64 lowers depth but multiplies MACs by ~8, so the `macs` objective keeps it and `depth` folds it.
//  - the same inverted-residual net with a classifier head (1×1 conv 32→128 → act → pool → Flatten → Gemm
//    128→10), fully linear, and "trained": per block the expand act all-0 (ReLU), the dw act partial
//    (slopes in [0, 1]), identity elsewhere; the head act partial;
//  - fixtures/mnist_cnn.onnx (trained) with its 5 ReLUs as PReLUs the way training leaves them: stem all 0,
//    block 1 conv1 partial, block 1 out identity, block 2 conv1 one slope 0.25, block 2 out identity.
// Latencies are medians of alternating runs of the original, the PRelu-free model, the model folded by the
// passes before simplify-activation and fold-through-pool existed, and the model folded by all passes
// (batch 1, onnxruntime-node defaults but intra-op spinning off, see TIMING_OPTIONS), so the merges' own
// gain shows next to the gain of dropping the identity PRelus (onnxruntime's PRelu with a [C,1,1] slope is
// slow), and the new passes' gain next to the old ones'.
// Measured on the 2-core dev machine (busy; identical models differ by up to ±5% run to run), two runs of
// `--runs 100`, speed-up over the original with the old passes → with all passes:
//  - inverted-residual fully linear: 7.5–8.4× → 7.6–8.2× (depth), 7.1–7.4× → 7.4–7.6× (macs): no PRelu
//    left and no classifier, so the new passes change nothing (the folded models are the same);
//  - block 3 nonlinear (slopes 0.25): 3.7–3.9× → 7.0–7.1×: its two PRelus become LeakyRelus, fused into
//    their convs (new passes 1.85–1.90×);
//  - bottleneck ResNet: unchanged (0.8× under depth: 8× the MACs; 7.6–8.0× under macs);
//  - inverted-residual + head, fully linear: depth 5.2–5.5× → 8.5–11.3× (the head 1×1 32→128 goes behind
//    the pool instead of merging into the last block's 3×3 conv: 1.6–2.1×); macs 6.8–7.3× → 7.5–7.9×;
//  - inverted-residual + head, trained: depth 1.05× → 3.9–4.2× (6 Relus fused into their convs, 7 partial
//    PRelus as Max(x, Mul(x, a)): 3.7–4.0×); latency 1.0× → 2.2–3.1× (the per-candidate timings, 10 runs,
//    rejected 1–4 of the 7 respellings as noise);
//  - mnist_cnn fixture, trained slopes: 1.09–1.13× → 1.50–1.59× (new passes 1.34–1.45×).
// `--only-real --recipe mbv2 --runs 300` (issue 12's must-show: fixtures/mnist_mbv2.onnx, 8 inverted residual
// blocks, linearized with bench/mbv2-recipe.ts, folded with the default objective; load average 0.4–1.6):
// val. accuracy 99.05 → 98.40 % (−0.65 point), 2048/2512 channels linear, conv depth 27 → 12 (−56 %),
// latency original 0.171 ms, linearized 0.278 ms, folded 0.100 ms: 1.71× faster than the original; max rel.
// error 4.3e-7; ops Conv×26 Clip×18 → Conv×11 Clip×4 (stem, block 6's two, head). The whole run took 7.8 min,
// 7.6 of them linearizing (9 epochs, 38–55 s each).
import { Graph, type Model, type Attr } from '../src/import/ir.js';
import { Tensor } from '../src/import/tensor.js';
import { fold, PASSES, type Objective } from '../src/export/pipeline.js';
import { randomFeeds, median, TIMING_OPTIONS } from '../src/export/verify.js';
import { seededRandom, gaussian } from '../src/import/random.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { encodeModel, loadModel, recordedOriginal, saveModel } from '../src/import/onnx-io.js';
import { ortAccuracy } from '../src/train/evaluate.js';
import { audit } from '../src/analyze/audit.js';
import { mnist } from '../src/train/data.js';
import { linearize, type LinearizeOptions } from '../src/train/linearize.js';
import { DEMO_MODEL, DEMO_SETTINGS } from '../src/demo.js';
import { MBV2_SETTINGS } from './mbv2-recipe.js';
import { basename } from 'node:path';
import { parseAugmentation } from '../src/train/augment.js';
import { existsSync, mkdirSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = (k: string, d: number) => (args.includes(k) ? Number(args[args.indexOf(k) + 1]) : d);
const RUNS = opt('--runs', 50);
const SIZE = opt('--size', 56);

class Net {
  g = new Graph();
  private k = 0;
  private rand = seededRandom(42);
  constructor(inC: number) {
    this.g.inputs.push({ name: 'x', dtype: 'float32', shape: ['batch', inC, SIZE, SIZE] });
  }
  private w(dims: number[], scale: number): string {
    const name = `w${this.k++}`;
    const n = dims.reduce((a, b) => a * b, 1);
    this.g.initializers.set(name, Tensor.f32(name, dims, Array.from({ length: n }, () => scale * gaussian(this.rand))));
    return name;
  }
  private node(op: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    const out = `v${this.k++}`;
    this.g.nodes.push({ name: `${op}${this.k}`, opType: op, domain: '', inputs, outputs: [out], attrs });
    return out;
  }
  conv(x: string, cin: number, cout: number, k: number, group = 1, stride = 1): string {
    const p = (k - 1) / 2;
    return this.node('Conv', [x, this.w([cout, cin / group, k, k], 1 / Math.sqrt((cin / group) * k * k)), this.w([cout], 0.1)], {
      kernel_shape: { type: 'ints', value: [k, k] }, pads: { type: 'ints', value: [p, p, p, p] },
      strides: { type: 'ints', value: [stride, stride] }, group: { type: 'int', value: group },
    });
  }
  prelu(x: string, c: number, slope: number | 'partial'): string {
    const name = `s${this.k++}`;
    this.g.initializers.set(name, Tensor.f32(name, [c, 1, 1], slope === 'partial' ? Array.from({ length: c }, () => this.rand()) : new Array(c).fill(slope)));
    return this.node('PRelu', [x, name]);
  }
  gemm(x: string, k: number, n: number): string {
    return this.node('Gemm', [x, this.w([n, k], 1 / Math.sqrt(k)), this.w([n], 0.1)], { transB: { type: 'int', value: 1 } });
  }
  classifier(x: string, c: number, hidden: number, slope: number | 'partial'): Model {
    const h = this.prelu(this.conv(x, c, hidden, 1), hidden, slope);
    const y = this.gemm(this.node('Flatten', [this.node('GlobalAveragePool', [h])], { axis: { type: 'int', value: 1 } }), hidden, 10);
    this.g.outputs = [{ name: y, dtype: 'float32' }];
    return { irVersion: 8, opsets: [{ domain: '', version: 13 }], producerName: 'linfold-bench', producerVersion: '', domain: '', modelVersion: 0, docString: '', graph: this.g, passthrough: {} };
  }
  add(a: string, b: string): string {
    return this.node('Add', [a, b]);
  }
  model(out: string): Model {
    const y = this.node('GlobalAveragePool', [out]);
    this.g.outputs = [{ name: y, dtype: 'float32' }];
    return { irVersion: 8, opsets: [{ domain: '', version: 13 }], producerName: 'linfold-bench', producerVersion: '', domain: '', modelVersion: 0, docString: '', graph: this.g, passthrough: {} };
  }
}

function invertedResidual(nonlinearBlock?: number, head?: 'linear' | 'trained'): Model {
  const C = 32, E = 4 * C;
  const n = new Net(3);
  let x = n.prelu(n.conv('x', 3, C, 3), C, 1);
  for (let b = 0; b < 6; b++) {
    const s = b === nonlinearBlock ? 0.25 : 1;
    let h = n.prelu(n.conv(x, C, E, 1), E, head === 'trained' ? 0 : s);
    h = n.prelu(n.conv(h, E, E, 3, E), E, head === 'trained' ? 'partial' : s);
    x = n.add(x, n.conv(h, E, C, 1));
  }
  return head ? n.classifier(x, C, 4 * C, head === 'trained' ? 'partial' : 1) : n.model(x);
}

/** fixtures/mnist_cnn.onnx with its ReLUs as PReLUs: all 0, partial, identity, one slope, identity. */
function mnistTrained(): Model {
  const m = loadModel('fixtures/mnist_cnn.onnx');
  const rand = seededRandom(9);
  const spec: (number | 'partial')[] = [0, 'partial', 1, 0.25, 1];
  let k = 0;
  for (const n of m.graph.nodes) {
    if (n.opType !== 'Relu') continue;
    const c = n.name.includes('layers.1') ? 48 : 24;
    const s = spec[k++];
    const name = m.graph.uniqueName(`${n.name}_slope`);
    m.graph.initializers.set(name, Tensor.f32(name, [c, 1, 1], s === 'partial' ? Array.from({ length: c }, () => rand()) : new Array(c).fill(s)));
    Object.assign(n, { opType: 'PRelu', inputs: [n.inputs[0], name] });
  }
  return m;
}

function bottleneck(): Model {
  const C = 64, M = 16;
  const n = new Net(3);
  let x = n.prelu(n.conv('x', 3, C, 3), C, 1);
  for (let b = 0; b < 4; b++) {
    let h = n.prelu(n.conv(x, C, M, 1), M, 1);
    h = n.prelu(n.conv(h, M, M, 3), M, 1);
    x = n.prelu(n.add(x, n.conv(h, M, C, 1)), C, 1);
  }
  return n.model(x);
}

const fmt = (v: number | null) => (v === null ? 'n/a' : v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : String(v));

/** Medians of alternating runs of several models on the same input. */
async function latencies(models: Model[], runs: number): Promise<number[]> {
  const sessions = await Promise.all(models.map((m) => ortSession(encodeModel(m), 'model', TIMING_OPTIONS)));
  const feeds = randomFeeds(models[0].graph, { batch: 1, seed: 5 });
  for (const s of sessions) for (let i = 0; i < 3; i++) await runOrt(s, feeds);
  const times = sessions.map(() => [] as number[]);
  for (let i = 0; i < runs; i++)
    for (let k = 0; k < sessions.length; k++) {
      const j = (k + i) % sessions.length;
      const t0 = performance.now();
      await runOrt(sessions[j], feeds);
      times[j].push(performance.now() - t0);
    }
  for (const s of sessions) await s.release();
  return times.map(median);
}

/** The passes that existed before simplify-activation and fold-through-pool. */
const OLD_PASSES = PASSES.map((p) => p.name).filter((p) => p !== 'simplify-activation' && p !== 'fold-through-pool');

async function run(name: string, make: () => Model, objectives: Objective[]): Promise<void> {
  const original = make();
  // identity removal alone, to separate what dropping the PRelu nodes gains from what merging gains
  const idOnly = (await fold(original, { passes: ['remove-identity', 'dead-code'], latencyRuns: 0 })).model;
  for (const objective of objectives) {
    const old = (await fold(original, { objective, latencyRuns: 0, passes: OLD_PASSES })).model;
    const t0 = performance.now();
    const { model, report: r } = await fold(original, { objective, latencyRuns: 0 });
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    const [t, tId, tOld, tF] = await latencies([original, idOnly, old, model], RUNS);
    const ops = Object.entries(r.after.opCounts).filter(([k]) => k !== 'Conv').map(([k, v]) => `${k}×${v}`).join(' ');
    console.log(
      `${name.padEnd(40)} ${objective.padEnd(7)} convs ${r.before.opCounts.Conv}→${r.after.opCounts.Conv ?? 0}  depth ${r.before.depth}→${r.after.depth}  ` +
      `MACs ${fmt(r.before.macs)}→${fmt(r.after.macs)}  latency ${t.toFixed(2)} / ${tId.toFixed(2)} / ${tOld.toFixed(2)} / ${tF.toFixed(2)} ms  ` +
      `speed-up ${(t / tOld).toFixed(2)}× → ${(t / tF).toFixed(2)}× (new passes ${(tOld / tF).toFixed(2)}×, merges alone ${(tId / tF).toFixed(2)}×)  ` +
      `err ${r.verification.maxRelError.toExponential(1)}  fold ${s} s  [${ops}]`,
    );
  }
}

/** The linearize recipes of the README for mnist_cnn (labels + distillation, shifts of 2 px, λ warm-up, then
 *  fine-tuning with a restarted learning rate). */
const CNN = { data: mnist(), loss: 'both', lr: 3e-4, finetuneLr: 1e-3, augment: parseAugmentation('shift:2') } as const;
const RECIPES: Record<string, { model: string; settings: Partial<LinearizeOptions> }> = {
  channel: { model: 'fixtures/mnist_cnn.onnx', settings: { ...CNN, granularity: 'channel', lambda: 0.05, lambdaWarmup: 500, epochs: 12, finetuneEpochs: 6, slopeLr: 5e-3 } },
  layer: { model: 'fixtures/mnist_cnn.onnx', settings: { ...CNN, granularity: 'layer', lambda: 0.05, lambdaWarmup: 250, epochs: 8, finetuneEpochs: 6, slopeLr: 1e-2, finetuneSlopes: true } },
  // the demo's recipe on the MobileNetV2-style fixture (src/demo.ts)
  demo: { model: DEMO_MODEL, settings: { data: mnist(), ...DEMO_SETTINGS } },
  // the longer recipe for the issue's must-show on the same fixture: one slope per inverted residual block
  // (its two ReLU6 end linear together, the only way a block folds into fewer MACs), on the native backend
  mbv2: { model: DEMO_MODEL, settings: { data: mnist(), ...MBV2_SETTINGS } },
};

async function linearizedFixture(recipe: string): Promise<string> {
  const { model, settings } = RECIPES[recipe];
  const file = `bench/out/${basename(model, '.onnx')}.${recipe}.onnx`;
  if (existsSync(file)) return file;
  mkdirSync('bench/out', { recursive: true });
  console.log(`linearizing ${model} with the ${recipe} recipe → ${file}`);
  const r = await linearize(loadModel(model), { data: mnist(), backend: 'wasm', ...settings });
  saveModel(r.model, file);
  return file;
}

/** A model from `linearize`: latency unfolded vs folded (and the original ReLU fixture), accuracy of all three. */
async function real(file: string): Promise<void> {
  const linear = loadModel(file);
  // the original linearize recorded in the file, unless --original names one
  const original = loadModel(ORIGINAL ?? recordedOriginal(linear).path ?? 'fixtures/mnist_cnn.onnx');
  const { model: folded, report: r } = await fold(linear, { objective: OBJECTIVE, borders: BORDERS, latencyRuns: 20 });
  const data = mnist();
  const [accO, accL, accF] = [await ortAccuracy(original, data), await ortAccuracy(linear, data), await ortAccuracy(folded, data)];
  const [tO, tL, tF] = await latencies([original, linear, folded], RUNS);
  const pct = (a: number) => `${(100 * a).toFixed(2)} %`;
  const ops = (counts: Record<string, number>) => Object.entries(counts).map(([k, v]) => `${k}×${v}`).join(' ');
  const { summary } = audit(linear);
  console.log(`${file}: linear channels ${summary.linearChannels} of ${summary.channels}, NAPL ${summary.napl.toFixed(3)}`);
  console.log(`  val. accuracy (onnxruntime)  original ${pct(accO)}   linearized ${pct(accL)}   folded ${pct(accF)}   (loss ${(100 * (accO - accF)).toFixed(2)} points)`);
  console.log(`  latency, batch 1            original ${tO.toFixed(3)} ms   linearized ${tL.toFixed(3)} ms   folded ${tF.toFixed(3)} ms`);
  console.log(`  fold speed-up ${(tL / tF).toFixed(2)}× (linearized → folded); folded vs original ReLU model ${(tO / tF).toFixed(2)}×; max rel. error ${r.verification.maxRelError.toExponential(1)}`);
  console.log(`  ops: ${ops(r.before.opCounts)}  →  ${ops(r.after.opCounts)}`);
  console.log(`  conv/matmul depth ${r.before.depth} → ${r.after.depth} (objective ${OBJECTIVE}${r.approximation ? `; ${r.approximation.merges} border-approximate merge(s)` : ''})`);
}

const OBJECTIVE = (args.includes('--objective') ? args[args.indexOf('--objective') + 1] : 'latency') as 'depth' | 'macs' | 'latency';
const BORDERS = (args.includes('--borders') ? args[args.indexOf('--borders') + 1] : 'exact') as 'exact' | 'approximate';
const ORIGINAL = args.includes('--original') ? args[args.indexOf('--original') + 1] : undefined;
const files = args.flatMap((a, k) => (args[k - 1] === '--linearized' ? [a] : []));
const recipe = args.includes('--recipe') ? args[args.indexOf('--recipe') + 1] : undefined;
if (recipe && !(recipe in RECIPES)) throw new Error(`--recipe ${recipe}: choose ${Object.keys(RECIPES).join(' or ')}`);
if (recipe) files.push(await linearizedFixture(recipe));
for (const f of files) await real(f);
if (args.includes('--only-real')) process.exit(0);

console.log(`onnxruntime-node, batch 1, input ${SIZE}×${SIZE} (mnist 28×28), medians of ${RUNS} alternating runs; ` +
  'latency = original / PRelus removed / folded by the old passes / folded by all passes');
await run('inverted-residual, fully linear', () => invertedResidual(), ['depth', 'macs']);
await run('inverted-residual, block 3 nonlinear', () => invertedResidual(3), ['depth']);
await run('bottleneck ResNet, fully linear', bottleneck, ['depth', 'macs']);
await run('inverted-residual + head, fully linear', () => invertedResidual(undefined, 'linear'), ['depth', 'macs']);
await run('inverted-residual + head, trained', () => invertedResidual(undefined, 'trained'), ['depth', 'latency']);
await run('mnist_cnn fixture, trained slopes', mnistTrained, ['depth', 'latency']);
