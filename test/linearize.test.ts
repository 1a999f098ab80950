// linearize: the step-0 function is unchanged, the prior moves slopes to 1, the exported ONNX matches the
// trained tfjs model under onnxruntime, distillation works without labels, a SIGKILLed run resumes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, encodeModel } from '../src/import/onnx-io.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Tensor } from '../src/import/tensor.js';
import { makeLinearizable } from '../src/train/linearizable.js';
import { linearize } from '../src/train/linearize.js';
import { arrays, type Dataset } from '../src/train/data.js';
import { compareTensors } from '../src/import/tfjs/check.js';
import { randomFeeds } from '../src/import/random.js';
import { useBackend } from '../src/import/tfjs/backends.js';
import { census } from '../src/analyze/census.js';
import { LinfoldError } from '../src/errors.js';
import { audit } from '../src/analyze/audit.js';
import { fold } from '../src/export/pipeline.js';
import { mnistNpy, writeNpy } from './support/npy.js';
import { LINFOLD, linfold, start } from './support/cli.js';
import { tfjsOutputs } from './support/run.js';
import { tempDir } from './support/tmp.js';
import { onnxFixtures } from './support/fixtures.js';

const tmp = tempDir('lin');


const unlabeled = (d: Dataset): Dataset => {
  const strip = (s: Dataset['train']): Dataset['train'] => ({ size: s.size, *batches(bs, o) { for (const b of s.batches(bs, o)) yield { ...b, y: undefined }; } });
  return { ...d, hasLabels: false, train: strip(d.train), validation: strip(d.validation) };
};

test('step 0: the linearizable model computes the original function (every fixture, onnxruntime)', async () => {
  for (const { name: f, path } of onnxFixtures()) {
    const m = loadModel(path);
    const { model, slopes } = makeLinearizable(m);
    const before = census(m).layers.filter((l) => !l.isGate).length;
    assert.equal(slopes.length, before, `${f}: one slope tensor per activation layer`);
    const shapes = Object.fromEntries(m.graph.feeds.map((v) => [v.name, (v.shape ?? []).map((d) => (typeof d === 'number' ? d : 2))]));
    const feeds = randomFeeds(m.graph, { inputShapes: shapes, seed: 3 });
    const a = await runOrt(await ortSession(m), feeds);
    const b = await runOrt(await ortSession(encodeModel(model)), feeds);
    for (const k of Object.keys(a)) assert.ok(compareTensors(b[k], a[k]).maxRelError < 1e-5, `${f}: ${k}`);
    // ReLU became PRelu at slope 0, smooth activations got the blend at a = 0
    const ops = new Set(model.graph.nodes.map((n) => n.opType));
    if (census(m).layers.some((l) => l.kind === 'relu')) assert.ok(ops.has('PRelu'));
  }
});

test('layer granularity: one slope per layer, same function at step 0, counted per channel, folds to fused LeakyRelu/identity, trains', { timeout: 300_000 }, async () => {
  const m = loadModel('fixtures/mnist_cnn.onnx');
  const { model, slopes } = makeLinearizable(m, { granularity: 'layer' });
  assert.equal(slopes.length, 5);
  for (const s of slopes) {
    assert.equal(s.size, 1);
    assert.equal(model.graph.initializers.get(s.name)!.numbers().length, 1);
  }
  const feeds = randomFeeds(m.graph, { inputShapes: { input: [2, 1, 28, 28] }, seed: 3 });
  const ref = (await runOrt(await ortSession(m), feeds)).logits;
  assert.ok(compareTensors((await runOrt(await ortSession(encodeModel(model)), feeds)).logits, ref).maxRelError < 1e-5);
  // first layer linear (a = 1), the others at a shared 0.3: the audit counts channels, fold leaves no PRelu
  const set = (k: number, a: number) => model.graph.initializers.set(slopes[k].name, Tensor.f32(slopes[k].name, model.graph.initializers.get(slopes[k].name)!.dims, [a]));
  slopes.forEach((_, k) => set(k, k === 0 ? 1 : 0.3));
  const r = audit(model);
  assert.equal(r.summary.channels, 168);
  assert.equal(r.summary.linearChannels, slopes[0].channels);
  const { model: folded } = await fold(model, { objective: 'depth', latencyRuns: 0 });
  const ops = folded.graph.nodes.map((n) => n.opType);
  assert.equal(ops.filter((o) => o === 'PRelu').length, 0, ops.join(' '));
  assert.equal(ops.filter((o) => o === 'LeakyRelu').length, 4, ops.join(' '));
  const unfolded = (await runOrt(await ortSession(encodeModel(model)), feeds)).logits;
  assert.ok(compareTensors((await runOrt(await ortSession(encodeModel(folded)), feeds)).logits, unfolded).maxRelError < 1e-4);
  // training moves the shared slopes (one value per layer, counted per channel in the frozen count)
  const { x, y } = mnistNpy(tmp, 128);
  const r2 = await linearize(m, { data: arrays(x, { labels: y }), granularity: 'layer', lambda: 0.5, slopeLr: 0.05, epochs: 1, maxSteps: 4, batchSize: 32, quiet: true, backend: 'wasm' });
  for (const s of r2.slopes) {
    const v = r2.model.graph.initializers.get(s.name)!.numbers();
    assert.equal(v.length, 1);
    assert.ok(v[0] > 0.1, `${s.layer}: shared slope ${v[0]} should have moved toward 1`);
  }
});

test('training moves slopes to 1; the exported ONNX matches the trained tfjs model under onnxruntime', { timeout: 600_000 }, async () => {
  const { x, y } = mnistNpy(tmp, 640);
  const data = arrays(x, { labels: y });
  const m = loadModel('fixtures/mnist_cnn.onnx');
  const r = await linearize(m, { data, lambda: 0.05, slopeLr: 0.05, epochs: 2, batchSize: 64, quiet: true, backend: 'wasm' });
  const slopes = r.slopes.flatMap((s) => r.model.graph.initializers.get(s.name)!.numbers());
  const mean = slopes.reduce((a, b) => a + b, 0) / slopes.length;
  assert.ok(mean > 0.3, `mean slope ${mean} should have moved from 0 toward 1`);
  assert.ok(r.after.priorLoss < r.history[0].priorLoss + 1e-9 || r.history.length === 1);
  assert.ok(r.after.napl <= r.before.napl);
  assert.equal(r.history.length, 2);
  // the written model, run by onnxruntime, equals the trained model run by tfjs
  const feeds = { input: Tensor.fromArray('input', 'float32', [8, 1, 28, 28], data.validation.batches(8).next().value!.x as Float32Array) };
  const ort = await runOrt(await ortSession(encodeModel(r.model)), feeds);
  await useBackend('wasm');
  const mine = tfjsOutputs(r.model, feeds);
  assert.ok(compareTensors(mine.logits, ort.logits).maxRelError < 1e-4);
});

test('distillation needs no labels: the student tracks the teacher', { timeout: 600_000 }, async () => {
  const { x } = mnistNpy(tmp, 320);
  const data = arrays(x);
  assert.equal(data.hasLabels, false);
  await assert.rejects(linearize(loadModel('fixtures/mnist_cnn.onnx'), { data, loss: 'ce', quiet: true }), /needs labels/);
  const r = await linearize(loadModel('fixtures/mnist_cnn.onnx'), { data, loss: 'distill', lambda: 0.01, epochs: 1, quiet: true, backend: 'wasm' });
  assert.equal(r.before.teacherAgreement, 1);
  assert.ok(r.after.teacherAgreement! > 0.9, `agreement ${r.after.teacherAgreement}`);
  assert.equal(r.after.valAccuracy, null);
});

test('transformer: GELU blends move toward 1 under distillation; the export loads in onnxruntime', { timeout: 600_000 }, async () => {
  const tokens = join(tmp, 'tokens.npy');
  writeNpy(tokens, BigInt64Array.from({ length: 160 * 16 }, (_, i) => BigInt((i * 7919) % 100)), [160, 16]);
  const m = loadModel('fixtures/transformer_gelu.onnx');
  const r = await linearize(m, { data: unlabeled(arrays(tokens)), loss: 'distill', lambda: 0.01, slopeLr: 0.05, epochs: 2, batchSize: 32, quiet: true, backend: 'wasm' });
  assert.equal(r.slopes.length, 2);
  assert.ok(r.slopes.every((s) => s.kind === 'gelu' && s.form === 'blend' && s.channels === 128));
  const a = r.slopes.flatMap((s) => r.model.graph.initializers.get(s.name)!.numbers());
  assert.ok(a.reduce((s, v) => s + v, 0) / a.length > 0.2, 'GELU channels moved toward 1');
  const out = await runOrt(await ortSession(encodeModel(r.model)), { tokens: Tensor.i64('tokens', [2, 16], Array.from({ length: 32 }, (_, i) => i)) });
  assert.deepEqual(out.logits.dims, [2, 10]);
});

test('bad data: shape mismatch names the expected input', async () => {
  const tokens = join(tmp, 'tok2.npy');
  writeNpy(tokens, BigInt64Array.from({ length: 40 }, () => 1n), [5, 8]);
  await assert.rejects(linearize(loadModel('fixtures/mnist_cnn.onnx'), { data: arrays(tokens), loss: 'distill', quiet: true }),
    (e: Error) => e instanceof LinfoldError && /expects float32 \[batch, 1, 28, 28\]/.test(e.message));
});

test('NaN loss stops with the step named and exit code 3', { timeout: 300_000 }, () => {
  const { x, y } = mnistNpy(tmp, 128);
  const r = linfold(['linearize', 'fixtures/mnist_cnn.onnx', '--data', x, '--labels', y, '--lr', '1e30', '--slope-lr', '1e30', '--epochs', '1', '--quiet', '-o', join(tmp, 'nan.onnx'), '--backend', 'wasm']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /loss became (NaN|Infinity|-Infinity) at step \d+/);
});

/** Runs `linfold linearize` and SIGKILLs it as soon as epoch `killAfter` is reported. */
async function runUntilEpoch(args: string[], killAfter: number): Promise<void> {
  const { child, done } = start([...LINFOLD, ...args]);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.includes(`epoch ${killAfter}:`)) process.kill(-child.pid!, 'SIGKILL');
  });
  const r = await done;
  assert.equal(r.code, null, `not killed (exit ${r.code}): ${err}`);
}

test('resume after SIGKILL gives the same model as an unbroken run', { timeout: 600_000 }, async () => {
  const { x, y } = mnistNpy(tmp, 320);
  const common = ['linearize', 'fixtures/mnist_cnn.onnx', '--data', x, '--labels', y, '--epochs', '2', '--lambda', '0.02', '--seed', '3', '--backend', 'wasm'];
  const whole = join(tmp, 'whole.onnx'), resumed = join(tmp, 'resumed.onnx');
  const a = linfold([...common, '-o', whole, '--quiet'], { timeout: 600_000 });
  assert.equal(a.code, 0, a.stderr);
  await runUntilEpoch([...common, '-o', resumed], 1);
  const state = JSON.parse(readFileSync(`${resumed}.ckpt/state.json`, 'utf8'));
  assert.equal(state.epoch, 1, 'the checkpoint of epoch 1 survived the kill');
  const b = linfold([...common, '-o', resumed, '--resume', '--quiet'], { timeout: 600_000 });
  assert.equal(b.code, 0, b.stderr);
  const wa = loadModel(whole).graph.initializers, wb = loadModel(resumed).graph.initializers;
  let worst = 0;
  for (const [k, t] of wa) {
    if (t.dtype !== 'float32') continue;
    const p = t.numbers(), q = wb.get(k)!.numbers();
    p.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - q[i]))));
  }
  assert.ok(worst < 1e-5, `max weight difference ${worst}`);
  const logs = readFileSync(`${resumed}.log.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(logs.map((l) => l.epoch), [1, 2]);
});

test('fine-tuning epochs keep the slopes fixed and drop the prior; the weights still train', { timeout: 300_000 }, async () => {
  const { x, y } = mnistNpy(tmp, 192);
  const m = loadModel('fixtures/mnist_cnn.onnx');
  const r = await linearize(m, { data: arrays(x, { labels: y }), lambda: 0.5, epochs: 0, finetuneEpochs: 1, quiet: true, backend: 'wasm' });
  assert.equal(r.history.length, 1);
  assert.equal(r.after.priorLoss, 0, 'no prior while fine-tuning');
  for (const s of r.slopes) assert.ok(r.model.graph.initializers.get(s.name)!.numbers().every((v) => v === 0), `${s.layer}: slopes stay at 0`);
  const conv = m.graph.nodes.find((n) => n.opType === 'Conv')!.inputs[1];
  const before = m.graph.initializers.get(conv)!.numbers(), after = r.model.graph.initializers.get(conv)!.numbers();
  assert.ok(before.some((v, i) => v !== after[i]), 'weights changed');
});

test('fine-tuning with finetuneSlopes: linear channels stay exactly 1, the others keep training', { timeout: 300_000 }, async () => {
  const { x, y } = mnistNpy(tmp, 192);
  // a model already partly linear: every other channel at slope 1, the rest at 0.5
  const { model: start, slopes } = makeLinearizable(loadModel('fixtures/mnist_cnn.onnx'));
  for (const s of slopes) {
    const t = start.graph.initializers.get(s.name)!;
    start.graph.initializers.set(s.name, Tensor.f32(s.name, t.dims, Array.from({ length: s.channels }, (_, c) => (c % 2 ? 0.5 : 1))));
  }
  const r = await linearize(start, { data: arrays(x, { labels: y }), lambda: 0.5, epochs: 0, finetuneEpochs: 1, finetuneSlopes: true, slopeLr: 0.05, quiet: true, backend: 'wasm' });
  assert.equal(r.after.priorLoss, 0, 'no prior while fine-tuning');
  let moved = 0;
  for (const s of r.slopes) {
    const v = r.model.graph.initializers.get(s.name)!.numbers();
    v.forEach((a, c) => {
      if (c % 2 === 0) assert.equal(a, 1, `${s.layer} channel ${c} left the identity`);
      else moved += Number(a !== 0.5);
    });
  }
  assert.ok(moved > 50, `only ${moved} of the nonlinear slopes trained`);
});

test('resume refuses a checkpoint made with other settings, naming them', { timeout: 300_000 }, () => {
  const { x, y } = mnistNpy(tmp, 128);
  const out = join(tmp, 'mismatch.onnx');
  const args = ['linearize', 'fixtures/mnist_cnn.onnx', '--data', x, '--labels', y, '--epochs', '1', '--quiet', '--backend', 'wasm', '-o', out];
  assert.equal(linfold([...args, '--lambda', '0.01']).code, 0);
  const r = linfold([...args, '--lambda', '0.02', '--resume']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /other settings \(lambda: 0\.01 then, 0\.02 now\)/);
});

test('snap: at fine-tuning, slopes not linear return to their start values and stay there; linear ones stay 1', { timeout: 300_000 }, async () => {
  // start: layer 0 already linear, the others with a shared slope 0.3 (a LeakyRelu) — they move during the prior epoch
  const { model: start, slopes } = makeLinearizable(loadModel('fixtures/mnist_cnn.onnx'), { granularity: 'layer' });
  slopes.forEach((s, k) => start.graph.initializers.set(s.name, Tensor.f32(s.name, start.graph.initializers.get(s.name)!.dims, [k === 0 ? 1 : 0.3])));
  const { x, y } = mnistNpy(tmp, 128);
  const opts = { data: arrays(x, { labels: y }), granularity: 'layer' as const, lambda: 0.05, slopeLr: 0.02, epochs: 1, finetuneEpochs: 1, batchSize: 32, quiet: true, backend: 'wasm' as const };
  const read = (r: Awaited<ReturnType<typeof linearize>>) => r.slopes.map((s) => r.model.graph.initializers.get(s.name)!.numbers()[0]);
  const plain = read(await linearize(start, opts));
  assert.equal(plain[0], 1);
  assert.ok(plain.slice(1).every((v) => Math.abs(v - 0.3) > 1e-3 && v < 1), `without snap the slopes moved: ${plain}`);
  const snapped = read(await linearize(start, { ...opts, snap: true }));
  assert.equal(snapped[0], 1);
  for (const v of snapped.slice(1)) assert.equal(v, Math.fround(0.3));
});
