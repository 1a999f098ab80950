// simplify-activation: cheaper exact spellings of PRelu / LeakyRelu / blends, checked against onnxruntime-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simplifyActivation, simplifyActivationPass, RESPELL_MIN_ELEMENTS } from '../src/export/simplify-activation.js';
import { deadCode } from '../src/import/ir-edit.js';
import { fold } from '../src/export/pipeline.js';
import { census } from '../src/analyze/census.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { foldAndCompare, shapesCtx } from './support/fold.js';
import { count, ops } from './support/graph.js';


test('PRelu with all slopes 0 → Relu, one slope for all channels → LeakyRelu, LeakyRelu(0) → Relu', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 6, 6]);
  let y = b.prelu(b.conv(x, 3, 4, 3), [0, 0, 0, 0]);
  y = b.prelu(b.conv(y, 4, 4, 1), [0.2, 0.2, 0.2, 0.2]);
  y = b.prelu(b.conv(y, 4, 4, 1), [-0.5], [1]);
  y = b.op('LeakyRelu', [b.conv(y, 4, 4, 1)], { alpha: { type: 'float', value: 0 } });
  const m = b.output(b.conv(y, 4, 2, 1)).model();
  const { model, rel } = await foldAndCompare(m, async (f) => {
    simplifyActivation(f.graph, await shapesCtx(f));
    deadCode(f.graph);
  });
  assert.equal(rel, 0, 'bit-exact');
  assert.deepEqual(ops(model), ['Conv', 'Relu', 'Conv', 'LeakyRelu', 'Conv', 'LeakyRelu', 'Conv', 'Relu', 'Conv']);
  const leaky = model.graph.nodes.filter((n) => n.opType === 'LeakyRelu').map((n) => n.attrs.alpha);
  assert.deepEqual(leaky, [{ type: 'float', value: Math.fround(0.2) }, { type: 'float', value: -0.5 }]);
  assert.equal(count(model, 'PRelu'), 0);
  assert.equal(model.graph.initializers.size, 10, 'the slope initializers are dead');
});

test('per-channel slopes in [0, 1] → Max(x, Mul(x, a)); all ≥ 1 → Min(x, Mul(x, a)); mixed stays PRelu; bit-exact', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 16, 16]);
  let y = b.prelu(b.conv(x, 3, 4, 1), [0, 0.25, 1, 0.5]);
  y = b.prelu(b.conv(y, 4, 4, 1), [1, 1.5, 2, 3]);
  y = b.prelu(b.conv(y, 4, 4, 1), [0.5, 1.5, 0.5, 0.5]);
  const m = b.output(b.conv(y, 4, 2, 1)).model();
  const { model, rel } = await foldAndCompare(m, async (f) => simplifyActivation(f.graph, await shapesCtx(f)));
  assert.equal(rel, 0, 'bit-exact');
  assert.deepEqual(ops(model), ['Conv', 'Mul', 'Max', 'Conv', 'Mul', 'Min', 'Conv', 'PRelu', 'Conv']);
  // the census sees all three activations, the respelled ones as prelu layers with the same linear channels
  const layers = census(model.graph).layers;
  assert.equal(layers.length, 3);
  assert.deepEqual(layers.map((l) => l.linearChannels), [1, 1, 0]);
});

test('small activations keep their PRelu under depth/macs (one node for the same time); latency proposes them, timed', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 4, 4]);
  const m = b.output(b.conv(b.prelu(b.conv(x, 3, 4, 1), [0.1, 0.2, 0.3, 0.4]), 4, 2, 1)).model();
  assert.ok(4 * 4 * 4 < RESPELL_MIN_ELEMENTS);
  assert.equal(simplifyActivationPass.candidates(m.graph, await shapesCtx(m)).length, 0);
  const timed = simplifyActivationPass.candidates(m.graph, await shapesCtx(m, { objective: 'latency' }));
  assert.equal(timed.length, 1);
  assert.equal(timed[0].speedOnly, true);
});

test('blend s + A ⊙ (x − s) with A = 0 becomes s; the Sub and Mul become dead', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 4, 4]);
  const h = b.conv(x, 3, 3, 1);
  const s = b.op('Sigmoid', [h]);
  const y = b.op('Add', [s, b.op('Mul', [b.op('Sub', [h, s]), b.init([1, 3, 1, 1], [0, 0, 0])])]);
  const m = b.output(b.conv(y, 3, 2, 1)).model();
  const { model } = await foldAndCompare(m, async (f) => {
    simplifyActivation(f.graph, await shapesCtx(f));
    deadCode(f.graph);
  });
  assert.deepEqual(ops(model), ['Conv', 'Sigmoid', 'Conv']);
  // a blend producing the graph output keeps the output name
  const b2 = new GraphBuilder({ opset: 13 });
  const x2 = b2.input('x', ['batch', 3, 4, 4]);
  const h2 = b2.conv(x2, 3, 3, 1);
  const s2 = b2.op('Relu', [h2]);
  const y2 = b2.op('Add', [s2, b2.op('Mul', [b2.op('Sub', [h2, s2]), b2.init([3, 1, 1], [0, 0, 0])])]);
  const r = await foldAndCompare(b2.output(y2).model(), async (f) => {
    simplifyActivation(f.graph, await shapesCtx(f));
    deadCode(f.graph);
  });
  assert.deepEqual(ops(r.model), ['Conv', 'Relu']);
  assert.equal(r.model.graph.nodes[1].outputs[0], y2);
});

test('a partially linear PRelu that split-partial can split is left to it', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 64]);
  const slopes = Array.from({ length: 2048 }, (_, i) => (i < 2000 ? 1 : 0.5));
  const m = b.output(b.gemm(b.prelu(b.gemm(x, 64, 2048), slopes, [2048]), 2048, 8)).model();
  assert.equal(simplifyActivationPass.candidates(m.graph, await shapesCtx(m)).length, 0);
  // with no linear channel there is nothing to split: respelled
  const b2 = new GraphBuilder({ opset: 13 });
  const x2 = b2.input('x', ['batch', 64]);
  const m2 = b2.output(b2.gemm(b2.prelu(b2.gemm(x2, 64, 2048), slopes.map((v) => v / 2), [2048]), 2048, 8)).model();
  assert.deepEqual(simplifyActivationPass.candidates(m2.graph, await shapesCtx(m2)).map((c) => c.speedOnly), [true]);
});

test('pipeline (depth): a trained-looking net — all-0, uniform and partial layers — keeps NAPL', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 16, 16]);
  let y = b.prelu(b.conv(x, 3, 8, 3, { pad: 1 }), new Array(8).fill(0));
  y = b.prelu(b.conv(y, 8, 8, 3, { pad: 1 }), new Array(8).fill(0.3));
  y = b.prelu(b.conv(y, 8, 8, 3, { pad: 1 }), [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  const m = b.output(b.conv(y, 8, 4, 3, { pad: 1 })).model();
  const { model, report } = await fold(m, { objective: 'depth', latencyRuns: 0 });
  assert.deepEqual(ops(model), ['Conv', 'Relu', 'Conv', 'LeakyRelu', 'Conv', 'Mul', 'Max', 'Conv']);
  assert.deepEqual(report.taken.map((e) => e.pass), ['simplify-activation', 'simplify-activation', 'simplify-activation']);
  assert.equal(report.before.napl, 3);
  assert.equal(report.after.napl, 3, 'the census reads the Max form as a prelu layer');
  assert.ok(report.verification.maxRelError === 0);
});

test('pipeline (latency): a respelling is kept only when it measured faster', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 16, 64, 64]);
  const slopes = Array.from({ length: 16 }, (_, i) => i / 16);
  const m = b.output(b.op('Add', [b.prelu(b.op('Add', [x, b.init([1], [0.5])]), slopes), b.init([1], [1])])).model();
  const { report } = await fold(m, { objective: 'latency', latencyRuns: 3 });
  for (const e of report.taken.filter((t) => t.pass === 'simplify-activation')) assert.ok(e.objective!.after[0] < e.objective!.before[0] * 0.98);
  const lost = report.rejected.filter((e) => e.pass === 'simplify-activation');
  for (const e of lost) assert.match(e.reason!, /^objective: latency/);
  assert.equal(report.taken.length + lost.length, 1, 'judged once, by timing');
});
