// fold-batchnorm: BN into the preceding layer, or into the next one, checked against onnxruntime-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldBatchNorm, foldBatchNormPass } from '../src/export/fold-batchnorm.js';
import { loadModel } from '../src/import/onnx-io.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { foldAndCompare, shapesCtx } from './support/fold.js';
import { count } from './support/graph.js';

function bn(b: GraphBuilder, x: string, c: number): string {
  return b.op('BatchNormalization', [x, b.normal([c], 0.5, 1), b.normal([c], 0.5), b.normal([c], 0.5), b.normal([c], 0.2, 1)], { epsilon: { type: 'float', value: 1e-5 } });
}

test('BN after a Conv (with and without bias) folds into the conv', async () => {
  for (const bias of [true, false]) {
    const b = new GraphBuilder({ opset: 13 });
    const x = b.input('x', ['batch', 3, 8, 8]);
    const m = b.output(bn(b, b.conv(x, 3, 6, 3, { pad: 1, bias }), 6)).model();
    const { model } = await foldAndCompare(m, (f) => foldBatchNorm(f.graph));
    assert.equal(model.graph.nodes.length, 1);
    assert.equal(model.graph.nodes[0].inputs.length, 3, 'a bias is created');
  }
});

test('BN after a grouped conv, after a Gemm and after a 2-D MatMul folds backwards', async () => {
  let b = new GraphBuilder({ opset: 13 });
  let x = b.input('x', ['batch', 4, 6, 6]);
  let m = b.output(bn(b, b.conv(x, 4, 8, 3, { group: 4 }), 8)).model();
  assert.equal((await foldAndCompare(m, (f) => foldBatchNorm(f.graph))).model.graph.nodes.length, 1);
  b = new GraphBuilder({ opset: 13 });
  x = b.input('x', ['batch', 5]);
  m = b.output(bn(b, b.gemm(x, 5, 7, { transB: true, beta: 0.5 }), 7)).model();
  assert.equal((await foldAndCompare(m, (f) => foldBatchNorm(f.graph))).model.graph.nodes.length, 1);
  b = new GraphBuilder({ opset: 13 });
  x = b.input('x', ['batch', 5]);
  m = b.output(bn(b, b.op('MatMul', [x, b.normal([5, 7], 0.3)]), 7)).model();
  const r = await foldAndCompare(m, async (f) => foldBatchNorm(f.graph, await shapesCtx(f)));
  assert.deepEqual(r.model.graph.nodes.map((n) => n.opType), ['Gemm']);
});

test('BN on the input folds into the next unpadded conv and the next Gemm', async () => {
  let b = new GraphBuilder({ opset: 13 });
  let x = b.input('x', ['batch', 3, 8, 8]);
  let m = b.output(b.conv(bn(b, x, 3), 3, 5, 3)).model();
  assert.equal((await foldAndCompare(m, (f) => foldBatchNorm(f.graph))).model.graph.nodes.length, 1);
  b = new GraphBuilder({ opset: 13 });
  x = b.input('x', ['batch', 6]);
  m = b.output(b.gemm(bn(b, x, 6), 6, 4)).model();
  assert.equal((await foldAndCompare(m, (f) => foldBatchNorm(f.graph))).model.graph.nodes.length, 1);
});

test('BN into the next zero-padded conv: exact with a border bias map, refused without static shapes', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 8, 8]);
  const m = b.output(b.conv(bn(b, x, 3), 3, 5, 3, { pad: 1 })).model();
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
