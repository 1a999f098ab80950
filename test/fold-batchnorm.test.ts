// fold-batchnorm: BN into the preceding layer, or into the next one, checked against onnxruntime-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldBatchNorm, foldBatchNormPass } from '../src/export/fold-batchnorm.js';
import { loadModel } from '../src/import/onnx-io.js';
import { Builder, count, foldAndCompare, shapesCtx } from './support/fold.js';

function bn(b: Builder, x: string, c: number): string {
  return b.node('BatchNormalization', [x, b.weight([c], 0.5, 1), b.weight([c], 0.5), b.weight([c], 0.5), b.weight([c], 0.2, 1)], { epsilon: { type: 'float', value: 1e-5 } });
}

test('BN after a Conv (with and without bias) folds into the conv', async () => {
  for (const bias of [true, false]) {
    const b = new Builder();
    const x = b.input('x', ['batch', 3, 8, 8]);
    const m = b.model(bn(b, b.conv(x, 3, 6, 3, { pad: 1, bias }), 6));
    const { model } = await foldAndCompare(m, (f) => foldBatchNorm(f.graph));
    assert.equal(model.graph.nodes.length, 1);
    assert.equal(model.graph.nodes[0].inputs.length, 3, 'a bias is created');
  }
});

test('BN after a grouped conv, after a Gemm and after a 2-D MatMul folds backwards', async () => {
  let b = new Builder();
  let x = b.input('x', ['batch', 4, 6, 6]);
  let m = b.model(bn(b, b.conv(x, 4, 8, 3, { group: 4 }), 8));
  assert.equal((await foldAndCompare(m, (f) => foldBatchNorm(f.graph))).model.graph.nodes.length, 1);
  b = new Builder();
  x = b.input('x', ['batch', 5]);
  m = b.model(bn(b, b.gemm(x, 5, 7, { transB: true, beta: 0.5 }), 7));
  assert.equal((await foldAndCompare(m, (f) => foldBatchNorm(f.graph))).model.graph.nodes.length, 1);
  b = new Builder();
  x = b.input('x', ['batch', 5]);
  m = b.model(bn(b, b.node('MatMul', [x, b.weight([5, 7])]), 7));
  const r = await foldAndCompare(m, async (f) => foldBatchNorm(f.graph, await shapesCtx(f)));
  assert.deepEqual(r.model.graph.nodes.map((n) => n.opType), ['Gemm']);
});

test('BN on the input folds into the next unpadded conv and the next Gemm', async () => {
  let b = new Builder();
  let x = b.input('x', ['batch', 3, 8, 8]);
  let m = b.model(b.conv(bn(b, x, 3), 3, 5, 3));
  assert.equal((await foldAndCompare(m, (f) => foldBatchNorm(f.graph))).model.graph.nodes.length, 1);
  b = new Builder();
  x = b.input('x', ['batch', 6]);
  m = b.model(b.gemm(bn(b, x, 6), 6, 4));
  assert.equal((await foldAndCompare(m, (f) => foldBatchNorm(f.graph))).model.graph.nodes.length, 1);
});

test('BN into the next zero-padded conv: exact with a border bias map, refused without static shapes', async () => {
  const b = new Builder();
  const x = b.input('x', ['batch', 3, 8, 8]);
  const m = b.model(b.conv(bn(b, x, 3), 3, 5, 3, { pad: 1 }));
  const refused = foldBatchNormPass.candidates(m.graph, (await import('../src/export/pass.js')).passContext());
  assert.match(refused[0].refused!, /zero-pads/);
  const { model } = await foldAndCompare(m, async (f) => foldBatchNorm(f.graph, await shapesCtx(f)));
  assert.equal(count(model, 'BatchNormalization'), 0);
  assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Conv', 'Add']);
});

test('training-mode BN (bn_training fixture) is refused', async () => {
  const m = loadModel('fixtures/bn_training.onnx');
  const c = foldBatchNormPass.candidates(m.graph, await shapesCtx(m));
  assert.equal(c.length, 2);
  for (const k of c) assert.match(k.refused ?? '', /training|running statistics/);
});
