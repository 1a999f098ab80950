// split-partial: a partially linear PRelu between two dense layers splits into core + linear bypass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitPartial, splitPartialPass } from '../src/export/split-partial.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { foldAndCompare, shapesCtx } from './support/fold.js';
import { count } from './support/graph.js';

const slopes = (n: number, linear: number) => Array.from({ length: n }, (_, i) => (i < linear ? 1 : 0.1 + 0.01 * i));

test('Gemm → PRelu (28 of 32 channels linear) → Gemm splits into a 4-wide core and a bypass, lowering MACs', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 8]);
  const h = b.gemm(x, 8, 32, { transB: true });
  const m = b.output(b.gemm(b.prelu(h, slopes(32, 28), [32]), 32, 8)).model();
  const cands = splitPartialPass.candidates(m.graph, await shapesCtx(m));
  assert.ok(cands[0].apply, cands[0].refused);
  // 8·32 + 32·8 = 512 → 8·4 + 4·8 + 8·8 = 128
  assert.equal(cands[0].macsDelta, 128 - 512);
  const { model } = await foldAndCompare(m, (f) => splitPartial(f.graph));
  assert.equal(count(model, 'PRelu'), 1);
  assert.equal(count(model, 'Gemm'), 2, 'core fc1, bypass');
  assert.equal(count(model, 'MatMul'), 1, 'core fc2 (no bias)');
  assert.equal(count(model, 'Add'), 1, 'core + bypass');
  const slope = model.graph.initializers.get(model.graph.nodes.find((n) => n.opType === 'PRelu')!.inputs[1])!;
  assert.deepEqual(slope.dims, [4]);
});

test('MatMul + bias → PRelu → MatMul + bias on [batch, tokens, d] splits exactly', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 5, 8]);
  const m = b.output(b.matmul(b.prelu(b.matmul(x, 8, 32), slopes(32, 30), [32]), 32, 8)).model();
  const { model } = await foldAndCompare(m, (f) => splitPartial(f.graph));
  assert.equal(count(model, 'MatMul'), 3);
});

test('a split that would not lower MACs is refused', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 8]);
  const m = b.output(b.gemm(b.prelu(b.gemm(x, 8, 32), slopes(32, 4), [32]), 32, 8)).model();
  const c = splitPartialPass.candidates(m.graph, await shapesCtx(m));
  assert.equal(c[0].apply, undefined);
  assert.match(c[0].refused!, /would not lower MACs/);
});

test('in the pipeline the split is taken under the macs and the depth objective (parallel bypass)', async () => {
  const { fold } = await import('../src/export/pipeline.js');
  for (const objective of ['macs', 'depth'] as const) {
    const b = new GraphBuilder({ opset: 13 });
    const x = b.input('x', ['batch', 8]);
    const m = b.output(b.gemm(b.prelu(b.gemm(x, 8, 32), slopes(32, 28), [32]), 32, 8)).model();
    const { report } = await fold(m, { objective, latencyRuns: 0 });
    assert.deepEqual(report.taken.map((e) => e.pass), ['split-partial'], objective);
    assert.equal(report.before.macs! - report.after.macs!, 512 - 128);
  }
});
