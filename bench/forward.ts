// Forward pass: the tfjs import (wasm; optionally cpu) against onnxruntime-node on a ResNet-18-sized model
// built with the IR (random He-initialized weights, BatchNormalization folded into the convs as an eval
// export does). Also measures the executor's layout pass (channels-last conv chains) on and off.
//
//   node --import tsx bench/forward.ts [--batch 1] [--size 224] [--runs 5] [--cpu] [--chain-only]
import { tf, useBackend, wasmThreads, threadCount } from '../src/import/tfjs/backends.js';
import { compile } from '../src/import/tfjs/executor.js';
import { GraphBuilder, attr, seededDraws } from '../src/import/graph-builder.js';
import { median } from '../src/export/verify.js';
import { cost } from '../src/analyze/cost.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Tensor, compareValues } from '../src/import/tensor.js';
import type { Model } from '../src/import/ir.js';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const BATCH = opt('batch', 1), SIZE = opt('size', 224), RUNS = opt('runs', 5);
const WITH_CPU = args.includes('--cpu');

/** ResNet-18: 7×7/2 stem, 3×3/2 max pool, 4 stages of 2 basic blocks (64, 128, 256, 512), GAP, FC 1000. */
export function resnet18(classes = 1000, width = 64): Model {
  const { i, ints } = attr;
  const rnd = seededDraws(0);
  const g = new GraphBuilder({ name: 'resnet18' });
  let n = 0;
  const conv = (x: string, cin: number, cout: number, k: number, stride: number): string => {
    const W = g.init([cout, cin, k, k], rnd.normals(cout * cin * k * k, Math.sqrt(2 / (cin * k * k))), `conv${n}.weight`);
    const B = g.init([cout], rnd.normals(cout, 0.01), `conv${n}.bias`);
    n++;
    const p = (k - 1) >> 1;
    return g.op('Conv', [x, W, B], { kernel_shape: ints([k, k]), strides: ints([stride, stride]), pads: ints([p, p, p, p]) });
  };
  const relu = (x: string) => g.op('Relu', [x]);
  let x = g.input('input', ['batch', 3, SIZE, SIZE]);
  x = relu(conv(x, 3, width, 7, 2));
  x = g.op('MaxPool', [x], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) });
  let cin = width;
  [width, width * 2, width * 4, width * 8].forEach((cout, stage) => {
    for (let b = 0; b < 2; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const h = relu(conv(x, cin, cout, 3, stride));
      const y = conv(h, cout, cout, 3, 1);
      const skip = stride !== 1 || cin !== cout ? conv(x, cin, cout, 1, stride) : x;
      x = relu(g.op('Add', [y, skip]));
      cin = cout;
    }
  });
  const flat = g.op('Flatten', [g.op('GlobalAveragePool', [x])], { axis: i(1) });
  const fc = g.init([classes, cin], rnd.normals(classes * cin, Math.sqrt(1 / cin)), 'fc.weight');
  const fcb = g.init([classes], rnd.normals(classes, 0.01), 'fc.bias');
  g.output(g.op('Gemm', [flat, fc, fcb], { transB: i(1) }), 'float32', ['batch', classes]);
  return g.model(13);
}


/** A plain chain of `depth` Conv 3×3 + Relu layers (the layout pass's best case). */
function convChain(depth: number, c: number): Model {
  const { ints } = attr;
  const rnd = seededDraws(2);
  const g = new GraphBuilder({ name: 'chain' });
  let x = g.input('input', ['batch', c, 28, 28]);
  for (let k = 0; k < depth; k++) {
    const W = g.init([c, c, 3, 3], rnd.normals(c * c * 9, Math.sqrt(2 / (c * 9))), `w${k}`);
    const B = g.init([c], rnd.normals(c, 0.01), `b${k}`);
    x = g.op('Relu', [g.op('Conv', [x, W, B], { pads: ints([1, 1, 1, 1]) })]);
  }
  g.output(x);
  return g.model(13);
}

async function layoutOnChain(): Promise<void> {
  await useBackend('wasm');
  const depth = 8, c = 32, batch = 32;
  const model = convChain(depth, c);
  const x = tf.randomNormal([batch, c, 28, 28]);
  console.log(`conv chain: ${depth} × (Conv 3×3 ${c}→${c} + Relu), batch ${batch}, 28×28, wasm, median of ${RUNS} runs`);
  const exes = [true, false].map((layout) => compile(model, { layout }));
  const fwd: number[][] = [[], []], step: number[][] = [[], []];
  for (let r = 0; r < RUNS + 1; r++) {
    exes.forEach((exe, k) => {
      let t0 = performance.now();
      tf.tidy(() => {
        Object.values(exe.run({ input: x }))[0].dataSync();
      });
      if (r > 0) fwd[k].push(performance.now() - t0);
      t0 = performance.now();
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => tf.mean(Object.values(exe.run({ input: x }))[0]) as tf.Scalar, exe.trainableVariables);
        Object.values(grads)[0].dataSync();
      });
      if (r > 0) step[k].push(performance.now() - t0);
    });
  }
  exes.forEach((e, k) => {
    console.log(`  layout pass ${k === 0 ? 'on ' : 'off'}: forward ${median(fwd[k]).toFixed(1).padStart(7)} ms, forward+backward ${median(step[k]).toFixed(1).padStart(7)} ms`);
    e.dispose();
  });
  x.dispose();
}


/**
 * onnxruntime with its default threads (all cores) and with one intra-op thread, and the tfjs executor with
 * the layout pass on and off (wasm with its default threads, all cores; LINFOLD_THREADS=1 for one): every round
 * runs each once, so the machine's drifting load hits all alike; medians per variant.
 */
async function main(): Promise<void> {
  const model = resnet18();
  const input = seededDraws(1).normals(BATCH * 3 * SIZE * SIZE);
  const feed = { input: Tensor.f32('input', [BATCH, 3, SIZE, SIZE], input) };
  const orts = [
    { label: 'onnxruntime-node (cpu, default threads)', session: await ortSession(model, 'resnet18') },
    { label: 'onnxruntime-node (cpu, 1 thread)', session: await ortSession(model, 'resnet18', { intraOpNumThreads: 1, interOpNumThreads: 1 }) },
  ];
  const backends: ('wasm' | 'cpu')[] = WITH_CPU ? ['wasm', 'cpu'] : ['wasm'];
  const rows: { label: string; times: number[]; out?: Float32Array; ratio: boolean }[] = orts.map((o) => ({ label: o.label, times: [], ratio: false }));
  let ref = new Float32Array();
  for (const b of backends) {
    await useBackend(b);
    const exes = [true, false].map((layout) => ({ layout, exe: compile(model, { layout }) }));
    const name = b === 'wasm' ? `wasm (${threadCount(wasmThreads())})` : b;
    const tfRows = exes.map(({ layout }) => ({ label: `tfjs ${name} layout pass ${layout ? 'on' : 'off'}`, times: [] as number[], out: new Float32Array(), ratio: true }));
    const x = tf.tensor4d(input, [BATCH, 3, SIZE, SIZE]);
    const first = b === backends[0];
    for (let r = 0; r < RUNS + 1; r++) {
      if (first)
        for (const [k, o] of orts.entries()) {
          const t0 = performance.now();
          const out = await runOrt(o.session, feed);
          if (r > 0) rows[k].times.push(performance.now() - t0);
          if (k === 0) ref = Float32Array.from(out[Object.keys(out)[0]].data as Float32Array);
        }
      exes.forEach(({ exe }, k) => {
        const t0 = performance.now();
        const y = exe.run({ input: x });
        const data = Object.values(y)[0].dataSync() as Float32Array;
        if (r > 0) tfRows[k].times.push(performance.now() - t0);
        tfRows[k].out = Float32Array.from(data);
        tf.dispose(Object.values(y));
      });
    }
    x.dispose();
    exes.forEach(({ exe }) => exe.dispose());
    rows.push(...tfRows);
  }
  const ort = median(rows[0].times), ort1 = median(rows[1].times);
  const macs = cost(model).macs;
  console.log(`ResNet-18, batch ${BATCH}, ${SIZE}×${SIZE} (${(macs / 1e9).toFixed(2)} GMAC), median of ${RUNS} interleaved runs`);
  for (const row of rows) {
    const ms = median(row.times);
    const rate = `${(macs / ms / 1e6).toFixed(1).padStart(5)} GMAC/s`;
    const tail = row.ratio ? `   ${(ms / ort).toFixed(2)}× onnxruntime, ${(ms / ort1).toFixed(2)}× onnxruntime 1 thread   (max rel error ${compareValues(row.out!, ref).maxRelError.toExponential(1)})` : '';
    console.log(`  ${row.label.padEnd(44)} ${ms.toFixed(1).padStart(8)} ms  ${rate}${tail}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (!args.includes('--chain-only')) await main();
  await layoutOnChain();
}
