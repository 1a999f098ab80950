// The threaded wasm build (src/import/tfjs/backends.ts starts it in Node with worker files instead of blob: URLs).
// npm test runs everything else single-threaded (LINFOLD_THREADS=1, test files run two at a time); this file
// starts wasm with 2 threads and checks it against independent references: onnxruntime for the forward pass,
// the cpu backend for the gradients of a whole training step (threaded XNNPACK convolutions, and linfold's JS
// kernels over the shared wasm heap: im2col, MaxPool gradient, sums).
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { tf, useBackend, setWasmThreads, wasmThreads } from '../src/import/tfjs/backends.js';
import { compile } from '../src/import/tfjs/executor.js';
import { loadModel } from '../src/import/onnx-io.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Tensor } from '../src/import/tensor.js';
import { seededDraws } from '../src/import/graph-builder.js';
import { linfold } from './support/cli.js';
import { fixture } from './support/fixtures.js';
import { maxRel } from './support/numeric.js';
import { tempDir } from './support/tmp.js';

const MNIST_CNN = fixture('mnist_cnn.onnx');
const BATCH = 16;

/** Loss and the gradient of every trainable variable (in the executor's order) for one batch, on the backend in use. */
function lossAndGrads(x: Float32Array, labels: number[]): { loss: number; grads: Float32Array[] } {
  const exe = compile(loadModel(MNIST_CNN));
  try {
    return tf.tidy(() => {
      const input = tf.tensor4d(x, [BATCH, 1, 28, 28]);
      const target = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(target, exe.run({ input }).logits) as tf.Scalar, exe.trainableVariables);
      return { loss: value.dataSync()[0], grads: exe.trainableVariables.map((v) => grads[v.name].dataSync() as Float32Array) };
    });
  } finally {
    exe.dispose();
  }
}

describe('wasm with 2 threads', () => {
  const draws = seededDraws(7);
  const x = Float32Array.from({ length: BATCH * 28 * 28 }, () => 2 * draws.uniform() - 1);
  const labels = Array.from({ length: BATCH }, (_, k) => (k * 3) % 10);

  const listeners = () => ['uncaughtException', 'unhandledRejection'].map((e) => process.listeners(e as 'uncaughtException').length);
  let listenersBefore: number[] = [];
  before(async () => {
    listenersBefore = listeners();
    setWasmThreads(2);
    await useBackend('wasm');
  });

  test('the thread pool runs 2 threads; the glue leaves no process-wide error handlers behind', () => {
    // emscripten's handlers rethrow every uncaught error with the whole minified glue source as its context
    assert.deepEqual(listeners(), listenersBefore);
    assert.equal(wasmThreads(), 2);
    assert.equal(getThreadsCount(), 2);
    assert.throws(() => setWasmThreads(1), /already runs with 2 thread/);
  });

  test('forward pass matches onnxruntime', async () => {
    const exe = compile(loadModel(MNIST_CNN));
    const ours = tf.tidy(() => exe.run({ input: tf.tensor4d(x, [BATCH, 1, 28, 28]) }).logits.dataSync() as Float32Array);
    exe.dispose();
    const session = await ortSession(MNIST_CNN);
    const ref = await runOrt(session, { input: Tensor.fromArray('input', 'float32', [BATCH, 1, 28, 28], x) });
    const err = maxRel(ours, ref.logits.data as Float32Array);
    assert.ok(err < 1e-4, `max relative error ${err}`);
  });

  test('gradients of a training step match the cpu backend', async () => {
    const threaded = lossAndGrads(x, labels);
    await useBackend('cpu');
    const reference = lossAndGrads(x, labels);
    await useBackend('wasm');
    assert.ok(Math.abs(threaded.loss - reference.loss) < 1e-4 * Math.abs(reference.loss), `loss ${threaded.loss} vs ${reference.loss}`);
    assert.equal(threaded.grads.length, reference.grads.length);
    assert.ok(reference.grads.length >= 10);
    reference.grads.forEach((g, k) => {
      const err = maxRel(threaded.grads[k], g);
      assert.ok(err < 1e-4, `variable ${k}: max relative error ${err}`);
    });
  });

  test('50 SGD steps leak no tensors', () => {
    const exe = compile(loadModel(MNIST_CNN));
    const opt = tf.train.sgd(1e-3);
    const input = tf.tensor4d(x, [BATCH, 1, 28, 28]);
    const target = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
    const step = () => opt.minimize(() => tf.losses.softmaxCrossEntropy(target, exe.run({ input }).logits) as tf.Scalar, false, exe.trainableVariables);
    step();
    const start = tf.memory().numTensors;
    for (let k = 0; k < 50; k++) step();
    assert.equal(tf.memory().numTensors, start);
    tf.dispose([input, target]);
    opt.dispose();
    exe.dispose();
  });

  test('the CLI with --threads 2 runs and exits by itself (pool threads do not hold the process)', () => {
    const r = linfold(['--threads', '2', 'check', MNIST_CNN, '--backend', 'wasm', '--json'], { timeout: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.backend, 'wasm');
    assert.equal(report.threads, 2);
    assert.equal(report.ok, true);
  });

  test('a seeded linearize run gives the same model with 1 and 2 threads (threads split outputs, not sums)', () => {
    const dir = tempDir('threads');
    const runs = [1, 2].map((threads) => {
      const out = join(dir, `t${threads}.onnx`);
      const r = linfold(['--threads', String(threads), 'linearize', MNIST_CNN, '--steps', '3', '--lambda', '0.05', '-o', out, '--quiet', '--json']);
      assert.equal(r.code, 0, r.stderr);
      return { loss: JSON.parse(r.stdout).after.loss as number, bytes: readFileSync(out) };
    });
    assert.equal(runs[1].loss, runs[0].loss);
    assert.ok(runs[1].bytes.equals(runs[0].bytes), 'the written models differ');
  });

  test('bad thread counts are named', () => {
    const r = linfold(['--threads', '0', 'backends']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--threads must be a whole number/);
    const env = linfold(['backends'], { env: { LINFOLD_THREADS: 'two' } });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /^linfold: LINFOLD_THREADS must be a whole number ≥ 1, got 'two'\n$/);
  });
});
