// One SGD step (forward, softmax cross-entropy, backward, update) of the mnist_cnn fixture (ResNet-style CNN,
// BatchNormalization folded into the convs), batch 64: the tfjs executor on wasm and cpu against PyTorch CPU
// (bench/train-step.py, same architecture, run in the same process tree).
//
//   node --import tsx bench/train-step.ts [--batch 64] [--runs 5] [--no-cpu]
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tf, useBackend } from '../src/train/backends.js';
import { compile } from '../src/import/tfjs/executor.js';
import { loadModel } from '../src/import/onnx-io.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const BATCH = opt('batch', 64), RUNS = opt('runs', 5);
const fixture = fileURLToPath(new URL('../fixtures/mnist_cnn.onnx', import.meta.url));
const pyScript = fileURLToPath(new URL('./train-step.py', import.meta.url));

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function tfjsStep(backend: 'wasm' | 'cpu', runs: number): Promise<number> {
  await useBackend(backend);
  const exe = compile(loadModel(fixture));
  const x = tf.randomNormal([BATCH, 1, 28, 28], 0, 1, 'float32', 1);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: BATCH }, (_, k) => (k * 7) % 10), 'int32'), 10);
  const optimizer = tf.train.sgd(0.01);
  const times: number[] = [];
  try {
    for (let r = 0; r < runs + 1; r++) {
      const t0 = performance.now();
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(labels, exe.run({ input: x }).logits) as tf.Scalar, true, exe.trainableVariables);
      loss!.dataSync();
      loss!.dispose();
      exe.trainableVariables[0].dataSync();
      if (r > 0) times.push(performance.now() - t0);
    }
  } finally {
    tf.dispose([x, labels]);
    optimizer.dispose();
    exe.dispose();
  }
  return median(times);
}

async function main(): Promise<void> {
  if (!existsSync(fixture)) throw new Error(`${fixture} is missing: run /usr/bin/python3 fixtures/make_fixtures.py`);
  const py = spawnSync('/usr/bin/python3', [pyScript, String(BATCH), String(Math.max(RUNS, 5))], { encoding: 'utf8' });
  let torch: { torch: string; threads: Record<string, number> } | undefined;
  if (py.status === 0) torch = JSON.parse(py.stdout.trim().split('\n').pop()!);
  else console.log(`PyTorch reference failed: ${py.stderr.split('\n').slice(-3).join(' ')}`);
  console.log(`one SGD step, mnist_cnn (ResNet-style, BN folded), batch ${BATCH}, median of ${RUNS} runs`);
  if (torch) for (const [t, ms] of Object.entries(torch.threads)) console.log(`  PyTorch ${torch.torch} CPU, ${t} thread${t === '1' ? ' ' : 's'}   ${ms.toFixed(1).padStart(8)} ms`);
  const ref1 = torch?.threads['1'];
  const rows: [string, number][] = [['wasm', await tfjsStep('wasm', RUNS)]];
  if (!args.includes('--no-cpu')) rows.push(['cpu', await tfjsStep('cpu', Math.min(RUNS, 2))]);
  for (const [b, ms] of rows) {
    const ratio = ref1 ? `   ${(ms / ref1).toFixed(2)}× PyTorch (1 thread), ${(ms / torch!.threads['2']).toFixed(2)}× (2 threads)` : '';
    console.log(`  tfjs ${b.padEnd(4)}                   ${ms.toFixed(1).padStart(8)} ms${ratio}`);
  }
}

await main();
