// merge-matmul: Gemm/MatMul ∘ Gemm/MatMul → one layer, checked against onnxruntime-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeMatmul, mergeMatmulPass } from '../src/export/merge-matmul.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { foldAndCompare, shapesCtx } from './support/fold.js';
import { count } from './support/graph.js';

test('Gemm ∘ Gemm with biases, transB, alpha and beta → one Gemm', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 6]);
  const h = b.gemm(x, 6, 9, { transB: true, alpha: 0.7, beta: 1.3 });
  const m = b.output(b.gemm(h, 9, 4, { alpha: 1.5, beta: 0.5 })).model();
  const { model } = await foldAndCompare(m, async (f) => mergeMatmul(f.graph, await shapesCtx(f)));
  assert.equal(model.graph.nodes.length, 1);
  assert.equal(count(model, 'Gemm'), 1);
  assert.deepEqual(model.graph.initializers.get(model.graph.nodes[0].inputs[1])!.dims, [6, 4]);
});

test('Gemm with transA ∘ Gemm keeps transA on the merged Gemm', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', [6, 4]);
  const h = b.op('Gemm', [x, b.normal([6, 5], 0.3), b.normal([5], 0.3)], { transA: { type: 'int', value: 1 } });
  const m = b.output(b.gemm(h, 5, 3)).model();
  const { model } = await foldAndCompare(m, (f) => mergeMatmul(f.graph));
  assert.equal(model.graph.nodes.length, 1);
});

test('chain of three Gemms without biases → one Gemm', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 5]);
  const m = b.output(b.gemm(b.gemm(b.gemm(x, 5, 7, { bias: false }), 7, 6, { bias: false }), 6, 3, { bias: false })).model();
  const { model } = await foldAndCompare(m, (f) => mergeMatmul(f.graph));
  assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['MatMul'], 'no bias: a plain MatMul');
});

test('transformer FFN: MatMul[d→4d] + Add ∘ MatMul[4d→d] + Add on [batch, tokens, d] → one d×d MatMul + bias', async () => {
  const d = 8;
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 5, d]);
  const m = b.output(b.matmul(b.matmul(x, d, 4 * d), 4 * d, d)).model();
  const { model } = await foldAndCompare(m, (f) => mergeMatmul(f.graph));
  assert.equal(count(model, 'MatMul'), 1);
  assert.equal(count(model, 'Add'), 1);
  assert.deepEqual(model.graph.initializers.get(model.graph.nodes.find((n) => n.opType === 'MatMul')!.inputs[1])!.dims, [d, d]);
});

test('MatMul ∘ Gemm (2-D) and Gemm ∘ MatMul merge; a layer read twice does not', async () => {
  let b = new GraphBuilder({ opset: 13 });
  let x = b.input('x', ['batch', 6]);
  let m = b.output(b.gemm(b.matmul(x, 6, 7), 7, 3)).model();
  let r = await foldAndCompare(m, (f) => mergeMatmul(f.graph));
  assert.equal(count(r.model, 'MatMul') + count(r.model, 'Gemm'), 1);
  b = new GraphBuilder({ opset: 13 });
  x = b.input('x', ['batch', 6]);
  m = b.output(b.matmul(b.gemm(x, 6, 7), 7, 3)).model();
  r = await foldAndCompare(m, (f) => mergeMatmul(f.graph));
  assert.equal(r.model.graph.nodes.length, 1);
  b = new GraphBuilder({ opset: 13 });
  x = b.input('x', ['batch', 6]);
  const h = b.gemm(x, 6, 7);
  m = b.output(b.gemm(h, 7, 3)).output(h).model();
  const c = mergeMatmulPass.candidates(m.graph, await shapesCtx(m));
  assert.match(c[0].refused!, /other readers/);
});
