// linearize --backend onnxruntime: a seeded run ends with the same model as on wasm (to training noise), the
// written model equals the trained one under onnxruntime, freezing pins slopes to exactly 1, a checkpoint resumes
// to the same model, and `linfold backends` reports the native backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';


import { join } from 'node:path';
import { loadModel, encodeModel } from '../src/import/onnx-io.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Tensor } from '../src/import/tensor.js';
import { linearize } from '../src/train/linearize.js';
import { mnist, type Dataset } from '../src/train/data.js';
import { autoNativeBackend, isNativeBackend, nativeBackendInfo } from '../src/train/native/backend.js';
import { LinfoldError } from '../src/errors.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { buildTrainingGraph } from '../src/train/native/training-graph.js';
import { linfold } from './support/cli.js';
import { maxRel } from './support/numeric.js';
import { tempDir } from './support/tmp.js';

const tmp = tempDir('native');
const data: Dataset = mnist({ limit: 1280 });
const fixture = 'fixtures/mnist_cnn.onnx';


test('native: a seeded run on onnxruntime ends with the wasm run\'s model (to training noise); the written model equals the trained one', { timeout: 900_000 }, async () => {
  const opts = { data, lambda: 0.05, lr: 1e-3, epochs: 1, maxSteps: 12, quiet: true, seed: 2 } as const;
  const a = await linearize(loadModel(fixture), { ...opts, backend: 'onnxruntime' });
  const b = await linearize(loadModel(fixture), { ...opts, backend: 'wasm' });
  assert.equal(a.backend, 'onnxruntime');
  assert.ok(Math.abs(a.after.loss - b.after.loss) <= 1e-4 * Math.abs(b.after.loss), `mean loss ${a.after.loss} vs wasm ${b.after.loss}`);
  assert.equal(a.after.valAccuracy, b.after.valAccuracy);
  let worst = 0;
  for (const [name, t] of b.model.graph.initializers) {
    if (t.dtype !== 'float32') continue;
    worst = Math.max(worst, maxRel(a.model.graph.initializers.get(name)!.float32(), t.float32()));
  }
  // measured: 6e-4 after 60 Adam steps, ~1e-4 after 12 (Adam's normalised steps amplify float32 rounding)
  assert.ok(worst < 2e-3, `max relative weight difference ${worst}`);
  // the written model under onnxruntime: its validation accuracy is the one the run reported
  const session = await ortSession(encodeModel(a.model));
  let correct = 0, n = 0;
  for (const batch of data.validation.batches(256)) {
    const out = (await runOrt(session, { input: Tensor.fromArray('input', 'float32', batch.shape, batch.x as Float32Array) })).logits.float32();
    for (let i = 0; i < batch.size; i++) {
      let best = 0;
      for (let j = 1; j < 10; j++) if (out[i * 10 + j] > out[i * 10 + best]) best = j;
      correct += Number(best === batch.y![i]);
    }
    n += batch.size;
  }
  assert.equal(correct / n, a.after.valAccuracy);
});

test('native: slopes within eps of 1 are pinned to exactly 1 and stay there; distillation without labels', { timeout: 600_000 }, async () => {
  const strip = (set: Dataset['train']): Dataset['train'] => ({ size: set.size, *batches(bs, o) { for (const b of set.batches(bs, o)) yield { ...b, y: undefined }; } });
  const unlabelled: Dataset = { ...data, hasLabels: false, train: strip(data.train), validation: strip(data.validation) };
  const r = await linearize(loadModel(fixture), { data: unlabelled, loss: 'distill', lambda: 0.5, slopeLr: 0.3, epochs: 1, maxSteps: 15, quiet: true, backend: 'onnxruntime', freezeEps: 0.05 });
  const values = r.slopes.flatMap((s) => r.model.graph.initializers.get(s.name)!.numbers());
  const ones = values.filter((v) => v === 1).length;
  assert.ok(ones > 0 && ones === r.after.frozenChannels, `${ones} slopes at exactly 1, ${r.after.frozenChannels} frozen`);
  assert.ok(values.every((v) => v === 1 || Math.abs(1 - v) >= 0.05));
  assert.equal(r.after.valAccuracy, null, 'no labels were seen');
  assert.ok(r.after.teacherAgreement! > 0.5, `agreement with the teacher ${r.after.teacherAgreement}`);
});

test('native: a checkpoint resumes to the model of an unbroken run', { timeout: 600_000 }, async () => {
  const opts = { data, lambda: 0.05, lr: 1e-3, epochs: 2, quiet: true, seed: 4, backend: 'onnxruntime' as const, batchSize: 256, schedule: 'constant' as const };
  // maxSteps stops the second run after its first epoch's checkpoint (a constant schedule does not depend on it)
  const whole = await linearize(loadModel(fixture), opts);
  const dir = join(tmp, 'ck');
  await linearize(loadModel(fixture), { ...opts, maxSteps: Math.ceil(data.train.size / 256), checkpointDir: dir });
  const resumed = await linearize(loadModel(fixture), { ...opts, checkpointDir: dir, resume: true });
  let worst = 0;
  for (const [name, t] of whole.model.graph.initializers)
    if (t.dtype === 'float32') worst = Math.max(worst, maxRel(resumed.model.graph.initializers.get(name)!.float32(), t.float32()));
  assert.ok(worst < 1e-5, `max relative weight difference ${worst}`);
  await assert.rejects(linearize(loadModel(fixture), { ...opts, backend: 'wasm', checkpointDir: dir, resume: true }), (e: Error) => e instanceof LinfoldError && /optimizer|backend/.test(e.message));
});

test('native: an op without a gradient rule is named; backends lists onnxruntime', async () => {
  const b = new GraphBuilder();
  const x = b.input('x', ['batch', 4]);
  b.output(b.op('Cos', [b.gemm(x, 4, 3, { transB: true })]));
  assert.throws(() => buildTrainingGraph(b.model(), { slopes: [], loss: 'distill' }), (e: Error) => e instanceof LinfoldError && /no gradient rule for Cos/.test(e.message));
  // CUDA is found, or its absence is explained
  const cuda = nativeBackendInfo().find((n) => n.name === 'onnxruntime-cuda')!;
  assert.ok(cuda.available || /CUDA/.test(cuda.reason ?? ''), JSON.stringify(cuda));
  const r = linfold(['backends', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.native.map((n: { name: string }) => n.name), ['onnxruntime', 'onnxruntime-cuda']);
});

test('native: --backend auto trains on onnxruntime; a model or feature it lacks falls back to TensorFlow.js with the reason', { timeout: 600_000 }, async () => {
  const r = await linearize(loadModel(fixture), { data, epochs: 1, maxSteps: 2, batchSize: 64, quiet: true });
  assert.equal(r.backend, 'onnxruntime');
  // training-mode BatchNormalization: named by the native backend, trained by TensorFlow.js under auto
  await assert.rejects(linearize(loadModel('fixtures/bn_training.onnx'), { data, epochs: 1, maxSteps: 1, quiet: true, backend: 'onnxruntime' }),
    (e: Error) => e instanceof LinfoldError && /\/features\/features\.\d\/BatchNormalization.* training mode/.test(e.message) && !e.message.includes('\n'));
  const bn = await linearize(loadModel('fixtures/bn_training.onnx'), { data, epochs: 1, maxSteps: 1, quiet: true });
  assert.ok(!isNativeBackend(bn.backend), bn.backend);
  const c = linfold(['--threads', '1', 'linearize', 'fixtures/bn_training.onnx', '--steps', '1', '--epochs', '1', '-o', join(tmp, 'bn.onnx')], { timeout: 300_000 });
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /^backend auto: TensorFlow\.js, not onnxruntime \(.*BatchNormalization.*training mode.*\)$/m);
  // features only the TensorFlow.js step has
  const said: string[] = [];
  assert.equal(autoNativeBackend(false, 'heal', (m) => said.push(m)), undefined);
  assert.deepEqual(said, ['backend auto: TensorFlow.js, not onnxruntime (heal runs on the TensorFlow.js backends only)']);
  assert.equal(autoNativeBackend(false, undefined), nativeBackendInfo()[1].available ? 'onnxruntime-cuda' : 'onnxruntime');
});
