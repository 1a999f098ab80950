// Per-kernel time of one SGD step of the mnist_cnn fixture on wasm, grouped by phase: the forward pass, each
// gradient function (by the forward kernel and input it differentiates), backprop's own bookkeeping (summing
// fan-out gradients) and the optimizer update. Kernels are timed by wrapping the backend's kernel functions
// (wasm kernels are synchronous, so wall time is kernel time).
//
//   node --import tsx bench/profile-train-step.ts [--batch 64] [--runs 5] [--backend wasm]
import { tf, useBackend } from '../src/import/tfjs/backends.js';
import { compile } from '../src/import/tfjs/executor.js';
import { loadModel } from '../src/import/onnx-io.js';
import { fileURLToPath } from 'node:url';

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

async function main(): Promise<void> {
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
