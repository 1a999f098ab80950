// absorb-residual: x + f(x) with f one linear layer → one layer, checked against onnxruntime-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { absorbResidual, absorbResidualPass } from '../src/export/absorb-residual.js';
import { mergeConv } from '../src/export/merge-conv.js';
import { deadCode } from '../src/import/ir-edit.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { foldAndCompare, shapesCtx } from './support/fold.js';
import { count } from './support/graph.js';

test('x + Conv3×3(x) (same padding) → one conv with the identity at the kernel centre', async () => {
  for (const group of [1, 4]) {
    const b = new GraphBuilder({ opset: 13 });
    const x = b.input('x', ['batch', 4, 8, 8]);
    const m = b.output(b.op('Add', [x, b.conv(x, 4, 4, 3, { pad: 1, group })])).model();
    const { model } = await foldAndCompare(m, (f) => absorbResidual(f.graph));
    assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Conv']);
  }
});

test('x + Gemm(x), x + (MatMul(x) + b) on 3-D input → one layer', async () => {
  let b = new GraphBuilder({ opset: 13 });
  let x = b.input('x', ['batch', 6]);
  let m = b.output(b.op('Add', [b.gemm(x, 6, 6, { transB: true, alpha: 0.5, beta: 2 }), x])).model();
  let r = await foldAndCompare(m, (f) => absorbResidual(f.graph));
  assert.deepEqual(r.model.graph.nodes.map((n) => n.opType), ['Gemm']);
  b = new GraphBuilder({ opset: 13 });
  x = b.input('x', ['batch', 3, 6]);
  m = b.output(b.op('Add', [x, b.matmul(x, 6, 6)])).model();
  r = await foldAndCompare(m, async (f) => absorbResidual(f.graph, await shapesCtx(f)));
  assert.deepEqual(r.model.graph.nodes.map((n) => n.opType), ['MatMul', 'Add']);
});

test('a residual block x + Conv(Conv1×1(x)) folds to one conv after merging', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 4, 8, 8]);
  const m = b.output(b.op('Add', [x, b.conv(b.conv(x, 4, 6, 1), 6, 4, 3, { pad: 1 })])).model();
  const { model } = await foldAndCompare(m, async (f) => {
    const ctx = await shapesCtx(f);
    mergeConv(f.graph, ctx);
    absorbResidual(f.graph, ctx);
    deadCode(f.graph);
  });
  assert.equal(count(model, 'Conv'), 1);
  assert.equal(count(model, 'Add'), 1, 'the border bias map of the merged 1×1 bias stays');
});

test('strided, channel-changing or non-"same" layers are refused', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 4, 8, 8]);
  const y = b.op('Add', [x, b.conv(x, 4, 4, 3, { pad: [1, 1, 1, 1], stride: 1, bias: true, group: 1, dilation: 1 })]);
  const z = b.op('Add', [y, b.conv(y, 4, 4, 3, { pad: [0, 0, 2, 2] })]);
  const m = b.output(z).model();
  const cands = absorbResidualPass.candidates(m.graph, await shapesCtx(m));
  assert.ok(cands.some((c) => c.apply));
  // pads [0,0,2,2]: the identity tap is at offset 0 — still exact (begin pad 0 → tap 0)
  const r = await foldAndCompare(m, (f) => absorbResidual(f.graph));
  assert.equal(count(r.model, 'Add'), 0);
  const b2 = new GraphBuilder({ opset: 13 });
  const x2 = b2.input('x', ['batch', 4, 8, 8]);
  const m2 = b2.output(b2.op('Add', [x2, b2.conv(x2, 4, 4, 3)])).model();
  assert.equal(absorbResidualPass.candidates(m2.graph, await shapesCtx(m2))[0].apply, undefined);
});

test('Conv3×3 stride 2 (x) + Conv1×1 stride 2 downsample (x) → one conv with the 1×1 kernel at the centre tap', async () => {
  for (const [k, pad, groups] of [[3, 1, 1], [5, 2, 1], [3, 1, 4]]) {
    const b = new GraphBuilder({ opset: 13 });
    const x = b.input('x', ['batch', 4, 9, 9]);
    const branch = b.conv(x, 4, 8, k, { pad, stride: 2, group: groups });
    const down = b.conv(x, 4, 8, 1, { stride: 2, group: groups });
    const m = b.output(b.op('Add', [down, branch])).model();
    const { model } = await foldAndCompare(m, async (f) => absorbResidual(f.graph, await shapesCtx(f)));
    assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Conv'], `k ${k} groups ${groups}`);
    assert.deepEqual(model.graph.initializers.get(model.graph.nodes[0].inputs[1])!.dims, [8, 4 / groups, k, k]);
  }
});

test('parallel convs that cannot be one conv are refused with the reason', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 4, 9, 9]);
  // a 1×1 with pad 1 reads a pixel before the unpadded 3×3's window starts
  let m = b.output(b.op('Add', [b.conv(x, 4, 4, 3), b.conv(x, 4, 4, 1, { pad: 1 })])).model();
  let c = absorbResidualPass.candidates(m.graph, await shapesCtx(m)).find((k) => k.nodes.length === 3);
  assert.match(c?.refused ?? '', /taps do not fall inside/);
  const b2 = new GraphBuilder({ opset: 13 });
  const x2 = b2.input('x', ['batch', 4, 9, 9]);
  m = b2.output(b2.op('Add', [b2.conv(x2, 4, 4, 3, { pad: 1 }), b2.conv(x2, 4, 4, 1, { stride: 2 })])).model();
  c = absorbResidualPass.candidates(m.graph, await shapesCtx(m)).find((k) => k.nodes.length === 3);
  assert.match(c?.refused ?? '', /strides/);
});
