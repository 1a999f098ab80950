// Models exported with torch.onnx.export's defaults (batch fixed at 1, baked into Reshape constants):
// makeBatchSymbolic frees the batch (checked here against onnxruntime: a batch of 3 against the original run on
// each example alone), linearize/check work on such models, a model whose batch cannot be freed is trained one
// example at a time (gradients equal to the batched ones) and named in one line, and onnxruntime's multi-line
// errors reach the user whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';


import { join } from 'node:path';
import { loadModel } from '../src/import/onnx-io.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Tensor, compareValues } from '../src/import/tensor.js';
import { randomFeeds } from '../src/import/random.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { makeBatchSymbolic, freeBatch } from '../src/import/batch.js';
import { perSampleExecutable } from '../src/train/per-sample.js';
import { compile } from '../src/import/tfjs/executor.js';
import { useBackend, tf } from '../src/import/tfjs/backends.js';
import { linearize } from '../src/train/linearize.js';
import { mnist, arrays } from '../src/train/data.js';
import { fold } from '../src/export/pipeline.js';
import { ortAccuracy, ortAgreement } from '../src/train/evaluate.js';
import { LinfoldError } from '../src/errors.js';
import type { Model } from '../src/import/ir.js';
import { writeNpy } from './support/npy.js';
import { linfold } from './support/cli.js';
import { tempDir } from './support/tmp.js';

const tmp = tempDir('batch');

/** `n` random examples (batch 1 each), and the same stacked as one batch. */
function examples(m: Model, n: number, seed: number): { one: Record<string, Tensor>[]; batch: Record<string, Tensor> } {
  const name = m.graph.feeds[0].name;
  const one = Array.from({ length: n }, (_, k) => randomFeeds(m.graph, { seed: seed + 17 * k, batch: 1 }));
  const size = one[0][name].size;
  const x = new Float32Array(size * n);
  one.forEach((f, k) => x.set(f[name].data as Float32Array, k * size));
  return { one, batch: { [name]: Tensor.fromArray(name, 'float32', [n, ...one[0][name].dims.slice(1)], x) } };
}

/** The rewritten model on a batch of n against the original on each example alone (onnxruntime). */
async function batchedVsOneByOne(original: Model, freed: Model, n: number): Promise<number> {
  const { one, batch } = examples(original, n, 99);
  const so = await ortSession(original), sf = await ortSession(freed);
  const out = Object.values(await runOrt(sf, batch))[0];
  assert.equal(out.dims[0], n, 'batch leads the output');
  const per = out.size / n, got = out.numbers();
  let worst = 0;
  for (let k = 0; k < n; k++) {
    const ref = Object.values(await runOrt(so, one[k]))[0].numbers();
    worst = Math.max(worst, compareValues(got.slice(k * per, (k + 1) * per), ref).maxRelError);
  }
  await so.release();
  await sf.release();
  return worst;
}

test('CNN flattened with x.view(1, -1): the Reshape constant becomes [-1, 784]; batch 3 = three batch-1 runs', async () => {
  const m = loadModel('fixtures/fixed_batch_cnn.onnx');
  assert.deepEqual(m.graph.feeds[0].shape, [1, 1, 28, 28]);
  const r = await makeBatchSymbolic(m);
  assert.equal(r.reason, undefined);
  assert.ok(r.changed);
  assert.deepEqual(r.rewrites.map((w) => [w.op, w.from, w.to]), [['Reshape', [1, -1], [-1, 784]]]);
  assert.deepEqual(r.model.graph.feeds[0].shape, ['batch', 1, 28, 28]);
  assert.deepEqual(r.model.graph.outputs[0].shape, ['batch', 10]);
  assert.ok(r.verifiedError! < 1e-5);
  assert.ok((await batchedVsOneByOne(m, r.model, 3)) < 1e-5);
  // the input model is left as it was
  assert.deepEqual(m.graph.feeds[0].shape, [1, 1, 28, 28]);
});

test('nn.TransformerEncoder (batch_first=False, MultiheadAttention) with a class token: Reshapes and the Expand rewritten', async () => {
  const m = loadModel('fixtures/fixed_batch_transformer.onnx');
  const r = await makeBatchSymbolic(m);
  assert.equal(r.reason, undefined);
  const byOp = (op: string) => r.rewrites.filter((w) => w.op === op).map((w) => [w.from, w.to]);
  // [seq, batch·heads, head_dim] for q, k, v; [seq·batch, E] before out_proj; [seq, batch, E] after it
  assert.deepEqual(byOp('Reshape'), [[[7, 2, 8], [7, -1, 8]], [[7, 2, 8], [7, -1, 8]], [[7, 2, 8], [7, -1, 8]], [[7, 16], [-1, 16]], [[7, 1, 16], [7, -1, 16]]]);
  // the class token expanded to the batch read from the input's shape
  assert.deepEqual(byOp('Expand'), [[[1, 1, 1], ['batch', 1, 1]]]);
  assert.ok(r.model.graph.nodes.some((n) => n.opType === 'Shape' && n.inputs[0] === 'input'));
  assert.ok((await batchedVsOneByOne(m, r.model, 3)) < 1e-5);
  assert.ok((await batchedVsOneByOne(m, r.model, 5)) < 1e-5);
});

test('token ids declared [1, 16] whose Reshape constants already read -1 for the batch: only the declarations change', async () => {
  const m = loadModel('fixtures/transformer_gelu.onnx');
  m.graph.inputs[0].shape = [1, 16];
  m.graph.outputs[0].shape = [1, 10];
  m.graph.valueInfo = new Map();
  const r = await makeBatchSymbolic(m);
  assert.equal(r.reason, undefined);
  assert.deepEqual(r.rewrites, []);
  assert.equal(r.model.graph.initializers.size, m.graph.initializers.size);
  assert.deepEqual(r.model.graph.feeds[0].shape, ['batch', 16]);
  assert.ok(r.verifiedError! < 1e-5);
  // a model with a symbolic batch is returned as it is
  const d = loadModel('fixtures/transformer_gelu.onnx');
  assert.equal((await makeBatchSymbolic(d)).model, d);
});

test("a target computed from the input's shape with a constant 1 for the batch (torchvision Swin's windows) becomes a constant", async () => {
  // x [1,4,6] → Reshape to Concat([1], Shape(x)[1], [2, 3]) → ReduceSum(axis 3) → [1,4,2]
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', [1, 4, 6]);
  const h = b.op('Unsqueeze', [b.op('Gather', [b.op('Shape', [x]), b.constant(Tensor.i64('one', [], [1]))]), b.initI64([0])]);
  const r1 = b.op('Reshape', [x, b.op('Concat', [b.initI64([1]), h, b.initI64([2, 3])], { axis: 0 })]);
  b.graph.nodes.push({ name: 'sum', opType: 'ReduceSum', domain: '', inputs: [r1, b.initI64([3])], outputs: ['y'], attrs: { keepdims: { type: 'int', value: 0 } } });
  b.output('y', 'float32', [1, 4, 2]);
  const m = b.model();
  const r = await makeBatchSymbolic(m);
  assert.equal(r.reason, undefined);
  assert.deepEqual(r.rewrites.map((w) => [w.from, w.to]), [[[1, 4, 2, 3], [-1, 4, 2, 3]]]);
  assert.ok(!r.model.graph.nodes.some((n) => n.opType === 'Concat'), 'the shape chain is gone');
  assert.ok((await batchedVsOneByOne(m, r.model, 3)) < 1e-6);
});

test('a model whose batch cannot be freed: the reason is one line naming the node; freeBatch(required) throws it', async () => {
  const m = loadModel('fixtures/fixed_batch_pinned.onnx');
  const r = await makeBatchSymbolic(m);
  assert.equal(r.changed, false);
  assert.equal(r.model, m);
  assert.match(r.reason!, /node \/Reshape \(Reshape\) pins the batch/);
  assert.ok(!r.reason!.includes('\n'));
  await assert.rejects(freeBatch(m, { required: true }), (e: unknown) => e instanceof LinfoldError && /\/Reshape \(Reshape\)/.test(e.message) && !e.message.includes('\n'));
  // not required: logged, model returned as it is
  const logs: string[] = [];
  assert.equal(await freeBatch(m, { log: (s) => logs.push(s) }), m);
  assert.match(logs[0], /kept fixed/);
});

test('a layout-consistent rewrite that mixes examples fails verification, naming a node', async () => {
  // x [1,6] → Reshape [3,2] → X·Xᵀ [3,3] → ReduceSum(axis 1) [3] → Reshape [1,3]: freed, X·Xᵀ would mix examples
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', [1, 6]);
  const r1 = b.op('Reshape', [x, b.initI64([3, 2])]);
  const mm = b.op('MatMul', [r1, b.op('Transpose', [r1], { perm: [1, 0] })]);
  const s = b.op('ReduceSum', [mm, b.initI64([1])], { keepdims: 0 });
  b.graph.nodes.push({ name: 'out_reshape', opType: 'Reshape', domain: '', inputs: [s, b.initI64([1, 3])], outputs: ['y'], attrs: {} });
  b.output('y', 'float32', [1, 3]);
  const r = await makeBatchSymbolic(b.model());
  assert.equal(r.changed, false);
  assert.match(r.reason!, /differ from the examples run one at a time .*first at node \S+ \(ReduceSum\)/);
});

test('per-example execution (the fallback) gives the batched outputs and gradients', async () => {
  await useBackend('wasm');
  const fixed = loadModel('fixtures/fixed_batch_cnn.onnx');
  const freed = (await makeBatchSymbolic(fixed)).model;
  const { batch } = examples(fixed, 4, 7);
  const batched = compile(freed), perEx = perSampleExecutable(compile(fixed), ['input']);
  const loss = (e: typeof batched) => () => tf.sum(tf.square(e.run({ input: tf.tensor(batch.input.data as Float32Array, batch.input.dims) }).output)) as tf.Scalar;
  const a = tf.variableGrads(loss(batched), batched.trainableVariables);
  const p = tf.variableGrads(loss(perEx), perEx.trainableVariables);
  assert.ok(Math.abs(a.value.dataSync()[0] - p.value.dataSync()[0]) <= 1e-5 * Math.abs(a.value.dataSync()[0]));
  const trained = [...batched.variables].filter(([, v]) => a.grads[v.name]);
  assert.ok(trained.length >= 4);
  for (const [init, v] of trained) assert.ok(compareValues(p.grads[perEx.variables.get(init)!.name].dataSync(), a.grads[v.name].dataSync()).maxRelError < 1e-4, init);
  batched.dispose();
  perEx.dispose();
});

test('linearize --batch-size 8 on the fixed-batch CNN writes a model onnxruntime runs at batch 5', { timeout: 300_000 }, async () => {
  const out = join(tmp, 'cnn.linear.onnx');
  const r = linfold(['--threads', '1', 'linearize', 'fixtures/fixed_batch_cnn.onnx', '--batch-size', '8', '--steps', '4', '--epochs', '1', '--lambda', '0.05', '-o', out], { timeout: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /batch: input input fixed at 1 → 'batch'; rewrote \/Reshape \[1,-1\]→\[-1,784\]/);
  const m = loadModel(out);
  assert.deepEqual(m.graph.feeds[0].shape, ['batch', 1, 28, 28]);
  assert.ok(m.graph.nodes.some((n) => n.opType === 'PRelu'));
  // batch 5 through onnxruntime = the written model on each example alone
  assert.ok((await batchedVsOneByOne(m, m, 5)) < 1e-5);
  // check passes on the written model and on both fixtures
  for (const f of [out, 'fixtures/fixed_batch_cnn.onnx', 'fixtures/fixed_batch_transformer.onnx']) {
    const c = linfold(['--threads', '1', 'check', f]);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    assert.match(c.stdout, /ok: ready to linearize/);
  }
});

test('linearize (distill, batch 8) on the fixed-batch transformer and fold of the result keep the symbolic batch', { timeout: 300_000 }, async () => {
  const m = loadModel('fixtures/fixed_batch_transformer.onnx');
  const xs = join(tmp, 'seq.npy');
  const { batch } = examples(m, 40, 3);
  writeNpy(xs, batch.input.data as Float32Array, batch.input.dims);
  const r = await linearize(m, { data: arrays(xs), loss: 'distill', batchSize: 8, maxSteps: 4, epochs: 1, lambda: 0.05, backend: 'wasm', quiet: true });
  assert.equal(r.after.step, 4);
  assert.deepEqual(r.model.graph.feeds[0].shape, ['batch', 6, 16]);
  const f = await fold(r.model, { latencyRuns: 0 });
  assert.deepEqual(f.model.graph.feeds[0].shape, ['batch', 6, 16]);
  assert.deepEqual(f.model.graph.outputs[0].shape, ['batch', 10]);
  // the folded model on a batch of 5 = the linearized one on each example alone
  assert.ok((await batchedVsOneByOne(r.model, f.model, 5)) < 1e-4);
});

test('linearize on a model whose batch cannot be freed runs one example at a time and keeps the fixed batch', { timeout: 300_000 }, async () => {
  const m = loadModel('fixtures/fixed_batch_pinned.onnx');
  const logs: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => (logs.push(String(s)), true)) as typeof process.stderr.write;
  let r;
  try {
    r = await linearize(m, { data: mnist({ limit: 200 }), loss: 'both', batchSize: 8, maxSteps: 3, epochs: 1, backend: 'wasm' });
  } finally {
    process.stderr.write = write;
  }
  assert.ok(logs.some((l) => /batch: kept fixed at 1 .*node \/Reshape \(Reshape\) pins the batch.*one example at a time/.test(l)), logs.join(''));
  assert.equal(r.after.step, 3);
  assert.ok(Number.isFinite(r.after.loss));
  assert.deepEqual(r.model.graph.feeds[0].shape, [1, 1, 28, 28]);
  const c = linfold(['--threads', '1', 'check', 'fixtures/fixed_batch_pinned.onnx']);
  assert.equal(c.code, 0, c.stdout + c.stderr);
  assert.match(c.stdout, /kept fixed at 1/);
});

test('ortAccuracy on fixed-batch models: freed (CNN) or one example at a time (pinned), as counted example by example', async () => {
  const data = mnist({ limit: 300 });
  for (const f of ['fixtures/fixed_batch_cnn.onnx', 'fixtures/fixed_batch_pinned.onnx']) {
    const m = loadModel(f);
    const s = await ortSession(m);
    let correct = 0, n = 0;
    for (const b of data.validation.batches(1)) {
      const logits = Object.values(await runOrt(s, { input: Tensor.fromArray('input', 'float32', b.shape, b.x as Float32Array) }))[0].float32();
      correct += Number(logits.indexOf(Math.max(...logits)) === b.y![0]);
      n++;
    }
    await s.release();
    assert.ok(n >= 50);
    assert.equal(await ortAccuracy(m, data), correct / n, f);
  }
});

test("onnxruntime's multi-line errors reach the user whole, on one line", async () => {
  // library: a batch of 3 into an input fixed at 1
  const m = loadModel('fixtures/fixed_batch_pinned.onnx');
  const s = await ortSession(m);
  const bad = { input: Tensor.fromArray('input', 'float32', [3, 1, 28, 28], new Float32Array(3 * 784)) };
  await assert.rejects(runOrt(s, bad), (e: unknown) => {
    const msg = (e as Error).message;
    return e instanceof LinfoldError && !msg.includes('\n') && /for the following indices \| index: 0 Got: 3 Expected: 1 \| Please fix/.test(msg);
  });
  await s.release();
  // CLI: fold verifying on 8 rows of data, which the model (batch fixed at 1, not freeable) cannot take
  const x = join(tmp, 'x40.npy'); // validation: every 5th row, 8 rows
  writeNpy(x, new Float32Array(40 * 784), [40, 1, 28, 28]);
  const r = linfold(['fold', 'fixtures/fixed_batch_pinned.onnx', '--data', x, '-o', join(tmp, 'never.onnx')]);
  assert.equal(r.code, 2, r.stderr);
  const line = r.stderr.trim().split('\n').filter((l) => l.startsWith('linfold:'));
  assert.equal(line.length, 1, r.stderr);
  assert.match(line[0], /index: 0 Got: 8 Expected: 1 \| Please fix/);
});

test('ortAgreement with a teacher exported with a fixed batch (heal --teacher original.onnx): same weights agree everywhere', { timeout: 300_000 }, async () => {
  const data = mnist();
  // mnist_mbv2_fixed holds mnist_mbv2's weights with the batch fixed at 1; batches of 256 must still run
  assert.equal(await ortAgreement('fixtures/mnist_mbv2.onnx', 'fixtures/mnist_mbv2_fixed.onnx', data), 1);
  assert.equal(await ortAgreement('fixtures/mnist_mbv2_fixed.onnx', 'fixtures/mnist_cnn.onnx', data) < 1, true);
});
