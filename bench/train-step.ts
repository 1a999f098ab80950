// One SGD step (forward, softmax cross-entropy, backward, update) of the mnist_cnn fixture (ResNet-style CNN,
// BatchNormalization folded into the convs), batch 64: the tfjs executor on wasm (its default threads, all
// cores; LINFOLD_THREADS=1 for one) and cpu against PyTorch CPU with 1 and 2 threads (bench/train-step.py, same
// architecture), and the native backend (src/train/native/: the whole step as one ONNX graph run by onnxruntime-node
// with 1 and 2 threads; the same SGD step, and the step linearize takes — Relu → PRelu, CE + L1 prior, Adam).
// The machine's load drifts, so the variants run
// interleaved, round by round (PyTorch kept running in a child process), and each reports its median. Our
// onnxruntime sessions run with intra-op spinning off (verify.ts TIMING_OPTIONS): spinning worker threads would
// keep a core busy between steps and slow the PyTorch reference running next to them (72 ms instead of 25 ms).
// PyTorch is also timed alone, before any of our sessions exist. Its child runs with glibc's malloc told to keep
// freed memory (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_): by default the step's large activations are
// mmapped and unmapped every step, and on a VM the page faults make PyTorch's 1-thread step flip between 23 and
// 65 ms from run to run; onnxruntime's arena and the wasm heap keep their memory, so this is the like-for-like
// (and PyTorch's fastest) configuration. OMP_WAIT_POLICY=PASSIVE: like our sessions (spinning off), PyTorch's
// OpenMP workers sleep between parallel regions instead of spinning on the core our step runs on next. Besides wall time each row gives CPU time per
// step (all the process's threads): on a machine shared with other jobs wall time swells with the wait for a core,
// CPU time much less, so the ratios are stated on both.
//
//   node --import tsx bench/train-step.ts [--batch 64] [--runs 7] [--no-cpu]
//   node --import tsx bench/train-step.ts --resnet18 [--runs 3]   (ResNet-18 at 224², batch 8: seconds per step)
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tf, useBackend, wasmThreads, threadCount } from '../src/import/tfjs/backends.js';
import { compile, type Executable } from '../src/import/tfjs/executor.js';
import { loadModel } from '../src/import/onnx-io.js';
import { median, TIMING_OPTIONS } from '../src/export/verify.js';
import { makeLinearizable } from '../src/train/linearizable.js';
import { NativeTrainer } from '../src/train/native/session.js';
import { seededDraws } from '../src/import/graph-builder.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const BATCH = opt('batch', 64), RUNS = opt('runs', 7);
const fixture = fileURLToPath(new URL('../fixtures/mnist_cnn.onnx', import.meta.url));
const pyScript = fileURLToPath(new URL('./train-step.py', import.meta.url));


/** PyTorch in a child process answering "threads steps" requests with step times. */
interface Times { wall: number[]; cpu: number[] }

async function torchServer(): Promise<{ version: string; steps(threads: number, n: number): Promise<Times>; close(): void } | undefined> {
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: String(32 << 20), MALLOC_TRIM_THRESHOLD_: String(2 ** 31), OMP_WAIT_POLICY: 'PASSIVE' };
  const py = spawn('/usr/bin/python3', [pyScript, '--serve', String(BATCH)], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  py.stderr.on('data', (d) => (stderr += d));
  const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error(stderr.split('\n').slice(-3).join(' '));
    return JSON.parse(r.value);
  };
  try {
    const { torch } = await next();
    return {
      version: torch,
      steps: async (threads, n) => {
        py.stdin.write(`${threads} ${n}\n`);
        return next();
      },
      close: () => py.stdin.end(),
    };
  } catch (e) {
    console.log(`PyTorch reference failed: ${(e as Error).message}`);
    return undefined;
  }
}

interface TfjsStep { exe: Executable; step(): void; dispose(): void }

function tfjsStep(): TfjsStep {
  const exe = compile(loadModel(fixture));
  const x = tf.randomNormal([BATCH, 1, 28, 28], 0, 1, 'float32', 1);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: BATCH }, (_, k) => (k * 7) % 10), 'int32'), 10);
  const optimizer = tf.train.sgd(0.01);
  return {
    exe,
    step() {
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, exe.run({ input: x }).logits) as tf.Scalar, true, exe.trainableVariables);
      loss!.dataSync();
      loss!.dispose();
      exe.trainableVariables[0].dataSync();
    },
    dispose() {
      tf.dispose([x, labels]);
      optimizer.dispose();
      exe.dispose();
    },
  };
}

/** The native backend's step: `linearizable` = the linearize step (PRelu slopes, CE + L1 prior, Adam), else SGD. */
async function nativeStep(threads: number, linearizable: boolean): Promise<() => Promise<void>> {
  const src = loadModel(fixture);
  const { model, slopes } = linearizable ? makeLinearizable(src) : { model: src, slopes: [] };
  const t = await NativeTrainer.create(model, { slopes: slopes.map((s) => ({ name: s.name, weight: 1 })), threads, optimizer: linearizable ? 'adam' : 'sgd', momentum: 0, sessionOptions: TIMING_OPTIONS });
  const input = { x: seededDraws(1).normals(BATCH * 784), xDims: [BATCH, 1, 28, 28], target: new Float32Array(BATCH * 10), lambda: 1e-3, lrW: 0.01, lrS: 0.01, trainSlopes: true };
  for (let k = 0; k < BATCH; k++) input.target[k * 10 + ((k * 7) % 10)] = 1;
  return async () => void (await t.step(input));
}

const NATIVE = [
  { key: 'ort1', threads: 1, lin: false, label: 'onnxruntime, 1 thread, SGD' },
  { key: 'ort2', threads: 2, lin: false, label: 'onnxruntime, 2 threads, SGD' },
  { key: 'ortlin1', threads: 1, lin: true, label: 'onnxruntime, 1 thread, PRelu+prior+Adam' },
  { key: 'ortlin2', threads: 2, lin: true, label: 'onnxruntime, 2 threads, PRelu+prior+Adam' },
];

/** One SGD step of a ResNet-18 (bench/forward.ts's, BN folded) at 224², batch 8, on tfjs wasm and onnxruntime. */
async function resnet18Step(): Promise<void> {
  const { resnet18 } = await import('./forward.js');
  const model = resnet18();
  const B = 8;
  const x = seededDraws(3).normals(B * 3 * 224 * 224);
  const target = new Float32Array(B * 1000);
  for (let k = 0; k < B; k++) target[k * 1000 + k * 37] = 1;
  const rows: { label: string; step(): Promise<void> }[] = [];
  for (const threads of [1, 2]) {
    const t = await NativeTrainer.create(model, { slopes: [], threads, optimizer: 'sgd', momentum: 0 });
    rows.push({ label: `onnxruntime, ${threads} thread${threads > 1 ? 's' : ''}`, step: async () => void (await t.step({ x, xDims: [B, 3, 224, 224], target, lambda: 0, lrW: 0.01, lrS: 0, trainSlopes: false })) });
  }
  await useBackend('wasm');
  const exe = compile(model);
  const xt = tf.tensor(x, [B, 3, 224, 224]);
  const yt = tf.tensor(target, [B, 1000]);
  const sgd = tf.train.sgd(0.01);
  rows.push({
    label: `tfjs wasm, ${threadCount(wasmThreads())}`,
    step: async () => {
      const loss = sgd.minimize(() => tf.losses.softmaxCrossEntropy(yt, exe.run({ input: xt })[exe.outputs[0].name]) as tf.Scalar, true, exe.trainableVariables);
      loss!.dataSync();
      loss!.dispose();
    },
  });
  const times = rows.map(() => [] as number[]);
  for (const r of rows) await r.step(); // warm-up
  const runs = Math.min(RUNS, 3);
  for (let k = 0; k < runs; k++)
    for (const [i, r] of rows.entries()) {
      const t0 = performance.now();
      await r.step();
      times[i].push((performance.now() - t0) / 1000);
    }
  console.log(`one SGD step, ResNet-18 (BN folded) at 224², batch ${B}, medians of ${runs} interleaved rounds`);
  for (const [i, r] of rows.entries()) console.log(`  ${r.label.padEnd(28)} ${median(times[i]).toFixed(2).padStart(7)} s/step (${Math.min(...times[i]).toFixed(2)}–${Math.max(...times[i]).toFixed(2)})`);
}

/** Wall and CPU time (ms) of one call. */
async function timed(f: () => unknown): Promise<Times> {
  const c0 = process.cpuUsage(), t0 = performance.now();
  await f();
  const c = process.cpuUsage(c0);
  return { wall: [performance.now() - t0], cpu: [(c.user + c.system) / 1000] };
}

async function main(): Promise<void> {
  if (args.includes('--resnet18')) return resnet18Step();
  if (!existsSync(fixture)) throw new Error(`${fixture} is missing: run /usr/bin/python3 fixtures/make_fixtures.py`);
  const torch = await torchServer();
  const skip2 = (t: Times): Times => ({ wall: t.wall.slice(2), cpu: t.cpu.slice(2) });
  // PyTorch alone: before our sessions and tfjs's threads exist
  const alone = torch ? { 1: skip2(await torch.steps(1, RUNS + 2)), 2: skip2(await torch.steps(2, RUNS + 2)) } : undefined;
  const backends: ('wasm' | 'cpu')[] = args.includes('--no-cpu') ? ['wasm'] : ['wasm', 'cpu'];
  const times: Record<string, Times> = {};
  const add = (k: string, t: Times) => {
    const e = (times[k] ??= { wall: [], cpu: [] });
    e.wall.push(...t.wall);
    e.cpu.push(...t.cpu);
  };
  const native = await Promise.all(NATIVE.map(async (n) => ({ ...n, step: await nativeStep(n.threads, n.lin) })));
  for (const n of native) await n.step(); // warm-up
  for (const b of backends) {
    await useBackend(b);
    const s = tfjsStep();
    s.step(); // warm-up
    const runs = b === 'cpu' ? Math.min(RUNS, 2) : RUNS;
    for (let r = 0; r < runs; r++) {
      if (torch && b === backends[0]) {
        const one = (t: Times): Times => ({ wall: t.wall.slice(1), cpu: t.cpu.slice(1) });
        add('torch1', one(await torch.steps(1, 3)));
        add('torch2', one(await torch.steps(2, 3)));
      }
      if (b === backends[0]) for (const n of native) add(n.key, await timed(n.step));
      add(b, await timed(() => s.step()));
    }
    s.dispose();
  }
  torch?.close();
  const med = (k: string, kind: keyof Times) => median(times[k][kind]);
  const fmt = (k: string) => `${med(k, 'wall').toFixed(1).padStart(8)} ms (CPU ${med(k, 'cpu').toFixed(1).padStart(5)} ms)`;
  console.log(`one SGD step, mnist_cnn (ResNet-style, BN folded), batch ${BATCH}, medians of ${RUNS} interleaved rounds: wall time (CPU time of the process)`);
  if (torch) {
    for (const th of [1, 2] as const) {
      const a = alone![th];
      console.log(`  PyTorch ${torch.version} CPU, ${th} thread${th > 1 ? 's' : ' '}  ${fmt(`torch${th}`)}; alone ${median(a.wall).toFixed(1)} ms (CPU ${median(a.cpu).toFixed(1)} ms)`);
    }
  }
  const ratio = (k: string, th: number) => {
    const r = `torch${th}`;
    if (!times[r]) return '';
    const a = alone![th as 1 | 2];
    return `   ${(med(k, 'wall') / med(r, 'wall')).toFixed(2)}× PyTorch wall, ${(med(k, 'cpu') / med(r, 'cpu')).toFixed(2)}× CPU (${th} thread${th > 1 ? 's' : ''}; ${(med(k, 'wall') / median(a.wall)).toFixed(2)}× PyTorch alone)`;
  };
  for (const b of backends) {
    const name = b === 'wasm' ? `wasm, ${threadCount(wasmThreads())}` : b;
    console.log(`  tfjs ${name.padEnd(34)} ${fmt(b)}${b === 'wasm' ? ratio(b, wasmThreads()) : ''}`);
  }
  for (const n of native) console.log(`  ${n.label.padEnd(39)} ${fmt(n.key)}${ratio(n.key, n.threads)}, ${(med('wasm', 'wall') / med(n.key, 'wall')).toFixed(2)}× faster than tfjs wasm`);
}

await main();
