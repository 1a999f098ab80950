// bench/fold: onnxruntime-node latency before and after `fold` on linearized ResNet-style models, as a ratio.
//   node --import tsx bench/fold.ts [--runs 50] [--size 56]
// Models (random weights, every activation a PRelu; slope 1 = linearized):
//  - inverted-residual (MobileNetV2-style) net, fully linear: stem 3×3, 6 blocks x + project(dw3×3(expand(x))),
//    C = 32, expansion 4 → each block folds to one dense 3×3 conv with the residual absorbed;
//  - the same with the middle block still nonlinear ("mostly linear");
//  - bottleneck ResNet (1×1 64→16, 3×3 16→16, 1×1 16→64, + x), fully linear: merging into one dense 3×3
//    64→64 lowers depth but multiplies MACs by ~8, so the `macs` objective keeps it and `depth` folds it.
// Latencies are medians of alternating runs of the original, the PRelu-free and the folded model (batch 1,
// onnxruntime-node defaults but intra-op spinning off, see TIMING_OPTIONS), so the merges' own gain shows
// next to the gain of dropping the identity PRelus (onnxruntime's PRelu with a [C,1,1] slope is slow).
// Measured on the 2-core dev machine (busy): inverted-residual 44.6 / 6.0 / 5.6 ms (depth) — 8.0× overall,
// merges alone 1.06×; bottleneck: `depth` 10.2 / 1.9 / 11.1 ms (merges 0.17×: 8× the MACs), `macs` 5.2×.
import { Graph, type Model, type Attr } from '../src/import/ir.js';
import { Tensor } from '../src/import/tensor.js';
import { fold, type Objective } from '../src/export/pipeline.js';
import { rng, randn, randomFeeds, median, TIMING_OPTIONS } from '../src/export/verify.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { encodeModel } from '../src/import/onnx-io.js';

const args = process.argv.slice(2);
const opt = (k: string, d: number) => (args.includes(k) ? Number(args[args.indexOf(k) + 1]) : d);
const RUNS = opt('--runs', 50);
const SIZE = opt('--size', 56);

class Net {
  g = new Graph();
  private k = 0;
  private rand = rng(42);
  constructor(inC: number) {
    this.g.inputs.push({ name: 'x', dtype: 'float32', shape: ['batch', inC, SIZE, SIZE] });
  }
  private w(dims: number[], scale: number): string {
    const name = `w${this.k++}`;
    const n = dims.reduce((a, b) => a * b, 1);
    this.g.initializers.set(name, Tensor.f32(name, dims, Array.from({ length: n }, () => scale * randn(this.rand))));
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
  prelu(x: string, c: number, slope: number): string {
    const name = `s${this.k++}`;
    this.g.initializers.set(name, Tensor.f32(name, [c, 1, 1], new Array(c).fill(slope)));
    return this.node('PRelu', [x, name]);
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

function invertedResidual(nonlinearBlock?: number): Model {
  const C = 32, E = 4 * C;
  const n = new Net(3);
  let x = n.prelu(n.conv('x', 3, C, 3), C, 1);
  for (let b = 0; b < 6; b++) {
    const s = b === nonlinearBlock ? 0.25 : 1;
    let h = n.prelu(n.conv(x, C, E, 1), E, s);
    h = n.prelu(n.conv(h, E, E, 3, E), E, s);
    x = n.add(x, n.conv(h, E, C, 1));
  }
  return n.model(x);
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

async function run(name: string, make: () => Model, objectives: Objective[]): Promise<void> {
  const original = make();
  // identity removal alone, to separate what dropping the PRelu nodes gains from what merging gains
  const idOnly = (await fold(original, { passes: ['remove-identity', 'dead-code'], latencyRuns: 0 })).model;
  for (const objective of objectives) {
    const t0 = performance.now();
    const { model, report: r } = await fold(original, { objective, latencyRuns: 0 });
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    const [t, tId, tF] = await latencies([original, idOnly, model], RUNS);
    console.log(
      `${name.padEnd(36)} ${objective.padEnd(6)} convs ${r.before.opCounts.Conv}→${r.after.opCounts.Conv ?? 0}  depth ${r.before.depth}→${r.after.depth}  ` +
      `MACs ${fmt(r.before.macs)}→${fmt(r.after.macs)}  latency ${t.toFixed(2)} / ${tId.toFixed(2)} / ${tF.toFixed(2)} ms  ` +
      `speed-up ${(t / tF).toFixed(2)}× (merges alone ${(tId / tF).toFixed(2)}×)  err ${r.verification.maxRelError.toExponential(1)}  fold ${s} s`,
    );
  }
}

console.log(`onnxruntime-node, batch 1, input ${SIZE}×${SIZE}, medians of ${RUNS} alternating runs; latency = original / PRelus removed / folded`);
await run('inverted-residual, fully linear', () => invertedResidual(), ['depth', 'macs']);
await run('inverted-residual, block 3 nonlinear', () => invertedResidual(3), ['depth']);
await run('bottleneck ResNet, fully linear', bottleneck, ['depth', 'macs']);
