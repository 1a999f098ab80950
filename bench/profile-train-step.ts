// Per-kernel time of one SGD step of the mnist_cnn fixture on wasm, grouped by phase: the forward pass, each
// gradient function (by the forward kernel and input it differentiates), backprop's own bookkeeping (summing
// fan-out gradients) and the optimizer update. Kernels are timed by wrapping the backend's kernel functions
// (wasm kernels are synchronous, so wall time is kernel time). With --backend onnxruntime, the native backend's
// training graph (src/train/native/) under onnxruntime's own profiler: kernel time per op type and the dearest
// nodes, against the wall time of the step.
//
//   node --import tsx bench/profile-train-step.ts [--batch 64] [--runs 5] [--backend wasm]
//   node --import tsx bench/profile-train-step.ts --backend onnxruntime [--threads 1] [--adam] [--runs 20]
import { tf, useBackend } from '../src/import/tfjs/backends.js';
import { compile } from '../src/import/tfjs/executor.js';
import { loadModel } from '../src/import/onnx-io.js';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NativeTrainer } from '../src/train/native/session.js';
import { makeLinearizable } from '../src/train/linearizable.js';
import { seededDraws } from '../src/import/graph-builder.js';
import { median } from '../src/export/verify.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const BATCH = Number(opt('batch', '64')), RUNS = Number(opt('runs', '5')), BACKEND = opt('backend', 'wasm');
const fixture = fileURLToPath(new URL(opt('model', '../fixtures/mnist_cnn.onnx'), import.meta.url));

let label = 'forward';
const table = new Map<string, { ms: number; n: number }>();
let counting = false;

function instrument(backend: string): void {
  for (const k of tf.getKernelsForBackend(backend)) {
    const f = k.kernelFunc;
    k.kernelFunc = ((a: Parameters<typeof f>[0]) => {
      if (!counting) return f(a);
      const t0 = performance.now();
      const out = f(a);
      const key = `${label}\u0000${k.kernelName}`;
      const e = table.get(key) ?? { ms: 0, n: 0 };
      e.ms += performance.now() - t0;
      e.n++;
      table.set(key, e);
      return out;
    }) as typeof f;
  }
  // every gradient closure runs under its own label "∂Kernel/input"
  const names = new Set(tf.getKernelsForBackend(backend).map((k) => k.kernelName));
  for (const name of ['Conv2D', 'DepthwiseConv2dNative', 'FusedConv2D', 'FusedDepthwiseConv2D', 'MaxPool', ...names]) {
    const g = tf.getGradient(name);
    if (!g) continue;
    const gf = g.gradFunc;
    (g as { gradFunc: typeof gf }).gradFunc = (dy, saved, attrs) => {
      const grads = gf(dy, saved, attrs);
      const out: Record<string, () => tf.Tensor> = {};
      for (const [input, fn] of Object.entries(grads))
        out[input] = () => {
          const prev = label;
          label = `∂${name}/${input}`;
          try {
            return fn();
          } finally {
            label = prev;
          }
        };
      return out;
    };
  }
}

/** The native step under onnxruntime's profiler: kernel time per op type, dearest nodes. */
async function profileNative(): Promise<void> {
  const threads = Number(opt('threads', '1'));
  const adam = args.includes('--adam');
  const src = loadModel(fixture);
  const { model, slopes } = adam ? makeLinearizable(src) : { model: src, slopes: [] };
  const dir = mkdtempSync(join(tmpdir(), 'linfold-prof-'));
  try {
    const t = await NativeTrainer.create(model, {
      slopes: slopes.map((s) => ({ name: s.name, weight: 1 })), threads, optimizer: adam ? 'adam' : 'sgd', momentum: 0,
      sessionOptions: { enableProfiling: true, profileFilePrefix: join(dir, 'p'), extra: { session: { intra_op: { allow_spinning: '0' } } } },
    });
    const input = { x: seededDraws(1).normals(BATCH * 784), xDims: [BATCH, 1, 28, 28], target: new Float32Array(BATCH * 10), lambda: 1e-3, lrW: 0.01, lrS: 0.01, trainSlopes: true };
    for (let k = 0; k < BATCH; k++) input.target[k * 10 + ((k * 7) % 10)] = 1;
    const WARM = 3;
    for (let i = 0; i < WARM; i++) await t.step(input);
    const walls: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await t.step(input);
      walls.push(performance.now() - t0);
    }
    await t.endProfiling();
    await t.release();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('onnxruntime wrote no profile');
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { cat?: string; name?: string; dur?: number; args?: { op_name?: string } }[];
    const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => (e.dur ?? 0) / 1000).slice(WARM);
    const perNode = new Map<string, { op: string; us: number[] }>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time')) continue;
      const k = e.name.slice(0, -'_kernel_time'.length);
      const v = perNode.get(k) ?? perNode.set(k, { op: e.args?.op_name ?? '?', us: [] }).get(k)!;
      v.us.push(e.dur ?? 0);
    }
    const nodeMs = [...perNode].map(([name, v]) => ({ name, op: v.op, ms: median(v.us.slice(WARM)) / 1000 }));
    const byOp = new Map<string, { ms: number; n: number }>();
    for (const n of nodeMs) {
      const o = byOp.get(n.op) ?? byOp.set(n.op, { ms: 0, n: 0 }).get(n.op)!;
      o.ms += n.ms;
      o.n++;
    }
    const kernels = nodeMs.reduce((s, n) => s + n.ms, 0);
    console.log(`onnxruntime, ${threads} thread${threads > 1 ? 's' : ''}, ${adam ? 'PRelu+prior+Adam' : 'SGD'}, mnist_cnn batch ${BATCH}: step ${median(walls).toFixed(1)} ms (median wall), session run ${median(runs).toFixed(1)} ms, kernels ${kernels.toFixed(1)} ms, ${nodeMs.length} nodes`);
    for (const [op, o] of [...byOp].sort((a, b) => b[1].ms - a[1].ms)) if (o.ms >= 0.05) console.log(`${o.ms.toFixed(2).padStart(8)} ms  ${op} ×${o.n}`);
    console.log('dearest nodes:');
    for (const n of nodeMs.sort((a, b) => b.ms - a.ms).slice(0, 25)) console.log(`${n.ms.toFixed(2).padStart(8)} ms  ${n.op.padEnd(18)} ${n.name}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (BACKEND === 'onnxruntime') return profileNative();
  await useBackend(BACKEND as 'wasm');
  instrument(tf.getBackend());
  const exe = compile(loadModel(fixture));
  const x = tf.randomNormal([BATCH, 1, 28, 28], 0, 1, 'float32', 1);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: BATCH }, (_, k) => (k * 7) % 10), 'int32'), 10);
  const optimizer = tf.train.sgd(0.01);
  const walls: number[] = [];
  for (let r = 0; r < RUNS + 1; r++) {
    counting = r > 0;
    const t0 = performance.now();
    label = 'forward';
    const { value, grads } = tf.variableGrads(() => {
      const loss = tf.losses.softmaxCrossEntropy(labels, exe.run({ input: x }).logits) as tf.Scalar;
      label = 'backprop (sums, seeds)';
      return loss;
    }, exe.trainableVariables);
    label = 'update';
    optimizer.applyGradients(grads);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
    exe.trainableVariables[0].dataSync();
    if (r > 0) walls.push(performance.now() - t0);
  }
  counting = false;
  const per = (ms: number) => ms / RUNS;
  const total = [...table.values()].reduce((s, e) => s + e.ms, 0);
  const byLabel = new Map<string, number>();
  for (const [key, e] of table) byLabel.set(key.split('\u0000')[0], (byLabel.get(key.split('\u0000')[0]) ?? 0) + e.ms);
  walls.sort((a, b) => a - b);
  console.log(`${BACKEND}, mnist_cnn batch ${BATCH}: step ${walls[walls.length >> 1].toFixed(1)} ms (median wall, instrumented), kernels ${per(total).toFixed(1)} ms/step`);
  for (const [l, ms] of [...byLabel].sort((a, b) => b[1] - a[1])) {
    console.log(`${per(ms).toFixed(1).padStart(7)} ms  ${l}`);
    const rows = [...table].filter(([k]) => k.startsWith(l + '\u0000')).sort((a, b) => b[1].ms - a[1].ms);
    for (const [k, e] of rows) if (per(e.ms) >= 0.05) console.log(`${per(e.ms).toFixed(1).padStart(15)} ms  ${k.split('\u0000')[1]} ×${e.n / RUNS}`);
  }
  tf.dispose([x, labels]);
  optimizer.dispose();
  exe.dispose();
}

await main();
