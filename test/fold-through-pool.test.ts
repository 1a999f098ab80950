// fold-through-pool: pointwise linear ops before GlobalAveragePool → Flatten → Gemm/MatMul move behind the
// pool and merge with the dense layer; k×k and strided convs are refused. Checked against onnxruntime-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldThroughPool, foldThroughPoolPass } from '../src/export/fold-through-pool.js';
import { fold } from '../src/export/pipeline.js';
import { loadModel } from '../src/import/onnx-io.js';
import { Tensor } from '../src/import/tensor.js';
import type { Model } from '../src/import/ir.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { foldAndCompare, shapesCtx } from './support/fold.js';
import { count, ops } from './support/graph.js';

const head = (b: GraphBuilder, y: string, c: number, o: { transB?: boolean; matmul?: boolean } = {}) => {
  const f = b.op('Flatten', [b.op('GlobalAveragePool', [y])], { axis: { type: 'int', value: 1 } });
  return o.matmul ? b.matmul(f, c, 10) : b.gemm(f, c, 10, { transB: o.transB ?? true });
};
const weightDims = (m: Model, op: string) => m.graph.initializers.get(m.graph.nodes.find((n) => n.opType === op)!.inputs[1])!.dims;

test('Conv 1×1 → GAP → Flatten → Gemm: the conv moves behind the pool and merges into the Gemm', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 8, 7, 7]);
  const m = b.output(head(b, b.conv(x, 8, 32, 1), 32)).model();
  const { model } = await foldAndCompare(m, async (f) => foldThroughPool(f.graph, await shapesCtx(f)));
  assert.deepEqual(ops(model), ['GlobalAveragePool', 'Flatten', 'Gemm']);
  assert.deepEqual(weightDims(model, 'Gemm'), [8, 10]);
});

test('a chain: 3×3 conv → 1×1 conv → BatchNormalization → Mul (per channel) → Add (bias map) → pool; stops at the 3×3 and says why', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 9, 9]);
  const c3 = b.conv(x, 3, 6, 3, { pad: 1 });
  let y = b.conv(c3, 6, 12, 1);
  y = b.op('BatchNormalization', [y, b.normal([12], 0.3, 1), b.normal([12], 0.3), b.normal([12], 0.3), b.normal([12], 0.1, 1)]);
  y = b.op('Mul', [y, b.normal([12, 1, 1], 0.5, 1)]);
  y = b.op('Add', [b.normal([12, 9, 9], 0.3), y]);
  const m = b.output(head(b, y, 12)).model();
  const { model } = await foldAndCompare(m, async (f) => foldThroughPool(f.graph, await shapesCtx(f)));
  assert.deepEqual(ops(model), ['Conv', 'GlobalAveragePool', 'Flatten', 'Gemm']);
  assert.deepEqual(weightDims(model, 'Gemm'), [6, 10]);
  const c = foldThroughPoolPass.candidates(model.graph, await shapesCtx(model));
  assert.equal(c.length, 1);
  assert.equal(c[0].apply, undefined);
  assert.match(c[0].refused!, /Conv .* 3×3 with zero padding .*not a function of GAP\(x\)/);
});

test('zero-padded and depthwise 1×1 convs fold exactly (the padded ring holds only the bias); MatMul + Add after the Flatten', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 4, 5, 6]);
  let y = b.conv(x, 4, 4, 1, { pad: [1, 2, 0, 1] });
  y = b.conv(y, 4, 8, 1, { group: 4 });
  const m = b.output(head(b, y, 8, { matmul: true })).model();
  const { model } = await foldAndCompare(m, async (f) => foldThroughPool(f.graph, await shapesCtx(f)));
  assert.deepEqual(ops(model), ['GlobalAveragePool', 'Flatten', 'Gemm']);
  assert.deepEqual(weightDims(model, 'Gemm'), [4, 10]);
});

test('a residual before the pool: x + conv1×1(x), and convA(x) + convB(x), fold into the Gemm', async () => {
  for (const form of ['skip', 'two-branch', 'add-self'] as const) {
    const b = new GraphBuilder({ opset: 13 });
    const inp = b.input('x', ['batch', 3, 8, 8]);
    const x = b.conv(inp, 3, 6, 3, { pad: 1 });
    const y = form === 'skip' ? b.op('Add', [x, b.conv(x, 6, 6, 1)])
      : form === 'two-branch' ? b.op('Add', [b.conv(x, 6, 12, 1), b.op('BatchNormalization', [b.conv(x, 6, 12, 1), b.normal([12], 0.3, 1), b.normal([12], 0.3), b.normal([12], 0.3), b.normal([12], 0.1, 1)])])
      : b.op('Add', [x, x]);
    const c = form === 'two-branch' ? 12 : 6;
    const m = b.output(head(b, y, c)).model();
    const { model } = await foldAndCompare(m, async (f) => foldThroughPool(f.graph, await shapesCtx(f)));
    assert.deepEqual(ops(model), ['Conv', 'GlobalAveragePool', 'Flatten', 'Gemm'], form);
    assert.deepEqual(weightDims(model, 'Gemm'), [6, 10], form);
  }
});

test('where to cut: behind a conv merge-conv can take, at the fewest channels; behind a nonlinearity, everything', async () => {
  for (const act of [false, true]) {
    const b = new GraphBuilder({ opset: 13 });
    const x = b.input('x', ['batch', 4, 8, 8]);
    let y = b.conv(x, 4, 8, 3, { pad: 1 });
    if (act) y = b.op('Relu', [y]);
    y = b.conv(b.conv(y, 8, 2, 1), 2, 16, 1);
    const m = b.output(head(b, y, 16)).model();
    const { model } = await foldAndCompare(m, async (f) => foldThroughPool(f.graph, await shapesCtx(f)));
    // 3×3 → 1×1 (8→2) → 1×1 (2→16): only the last goes (the 3×3 then merges with the 8→2 into a 3×3 4→2);
    // after a Relu nothing can merge with the 1×1s, so both go
    assert.equal(count(model, 'Conv'), act ? 1 : 2, `relu ${act}`);
    assert.deepEqual(weightDims(model, 'Gemm'), act ? [8, 10] : [2, 10]);
  }
});

test('refused: a strided 1×1 conv, a Mul that varies over positions, a residual whose branches do not meet', async () => {
  let b = new GraphBuilder({ opset: 13 });
  let x = b.input('x', ['batch', 4, 8, 8]);
  let m = b.output(head(b, b.conv(x, 4, 8, 1, { stride: 2 }), 8)).model();
  let c = foldThroughPoolPass.candidates(m.graph, await shapesCtx(m));
  assert.match(c[0].refused!, /stride 2×2: it keeps every 2×2-th position/);
  b = new GraphBuilder({ opset: 13 });
  x = b.input('x', ['batch', 4, 8, 8]);
  m = b.output(head(b, b.op('Mul', [b.conv(x, 4, 4, 3, { pad: 1 }), b.normal([1, 8, 8], 0.3)]), 4)).model();
  c = foldThroughPoolPass.candidates(m.graph, await shapesCtx(m));
  assert.match(c[0].refused!, /varies over positions/);
  b = new GraphBuilder({ opset: 13 });
  x = b.input('x', ['batch', 4, 8, 8]);
  m = b.output(head(b, b.op('Add', [b.conv(x, 4, 4, 3, { pad: 1 }), b.conv(x, 4, 4, 1)]), 4)).model();
  c = foldThroughPoolPass.candidates(m.graph, await shapesCtx(m));
  assert.match(c[0].refused!, /residual Add .* branches are not pointwise linear maps of one tensor \(Conv .* 3×3/);
  // the pooled features also read elsewhere: nothing moves
  b = new GraphBuilder({ opset: 13 });
  x = b.input('x', ['batch', 4, 8, 8]);
  const y = b.conv(x, 4, 4, 1);
  m = b.output(head(b, y, 4)).output(y).model();
  assert.equal(foldThroughPoolPass.candidates(m.graph, await shapesCtx(m)).length, 0);
});

test('pipeline (depth): linearized head conv → pool → Gemm loses a layer; MACs drop', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 12, 12]);
  let y = b.prelu(b.conv(x, 3, 16, 3, { pad: 1 }), new Array(16).fill(0));
  y = b.prelu(b.conv(y, 16, 64, 1), new Array(64).fill(1));
  const m = b.output(head(b, y, 64)).model();
  const { model, report } = await fold(m, { objective: 'depth', latencyRuns: 0 });
  assert.deepEqual(ops(model), ['Conv', 'Relu', 'GlobalAveragePool', 'Flatten', 'Gemm']);
  assert.equal(report.before.depth, 3);
  assert.equal(report.after.depth, 2);
  assert.equal(report.before.macs! - report.after.macs!, 144 * 16 * 64 + 64 * 10 - 16 * 10);
  assert.ok(report.taken.some((e) => e.pass === 'fold-through-pool'));
  assert.ok(report.verification.maxRelError < 1e-4);
});

test('mobilenetv2_small with every ReLU6 made identity: the head conv 1×1 folds through the pool into the classifier', async () => {
  const m = loadModel('fixtures/mobilenetv2_small.onnx');
  // Clip(x, 0, 6) → PRelu(x, 1): the identity (a linearized ReLU6)
  for (const n of m.graph.nodes) {
    if (n.opType !== 'Clip') continue;
    const s = m.graph.uniqueName(`${n.name}_slope`);
    m.graph.initializers.set(s, Tensor.f32(s, [1], [1]));
    Object.assign(n, { opType: 'PRelu', inputs: [n.inputs[0], s] });
  }
  const { model, report } = await fold(m, { objective: 'depth', latencyRuns: 0 });
  // the last block (expand 1×1 24→96, dw 3×3 s2, project 1×1 96→32) then head 1×1 32→64 → pool → fc 64→10:
  // the head conv goes behind the pool (the fewest channels, 32, flow at its input); expand∘dw∘project
  // merge into one 3×3 conv 24→32 before the pool (moving project too would leave a 3×3 conv 24→96)
  const ev = report.taken.filter((e) => e.pass === 'fold-through-pool');
  assert.ok(ev.length >= 1, report.taken.map((e) => e.what).join('\n'));
  assert.match(ev[0].what, /Conv 1×1 \/head\/head\.0\/Conv moved behind the pool → Gemm 32×10 \(was 64×10\)/);
  assert.equal(count(model, 'GlobalAveragePool'), 1);
  const gemm = model.graph.nodes.find((n) => n.opType === 'Gemm')!;
  assert.deepEqual(model.graph.initializers.get(gemm.inputs[1])!.dims, [32, 10]);
  const last = model.graph.nodes.filter((n) => n.opType === 'Conv').at(-1)!;
  assert.deepEqual(model.graph.initializers.get(last.inputs[1])!.dims, [32, 24, 3, 3]);
  assert.equal(report.after.depth, 6);
  assert.ok(report.after.macs! < report.before.macs!, `${report.before.macs} → ${report.after.macs}`);
  assert.ok(report.verification.maxRelError < 1e-4);
});
