// remove-identity and dead-code: identity activations go, the graph shrinks, outputs stay the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { removeIdentity, removeIdentityPass } from '../src/export/remove-identity.js';
import { deadCode } from '../src/import/ir-edit.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { foldAndCompare, shapesCtx } from './support/fold.js';
import { count } from './support/graph.js';

test('PRelu with all slopes 1, LeakyRelu(1), Identity and Dropout are removed', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 5, 5]);
  let y = b.conv(x, 3, 4, 3);
  y = b.prelu(y, [1, 1, 1, 1]);
  y = b.op('LeakyRelu', [y], { alpha: { type: 'float', value: 1 } });
  y = b.op('Identity', [y]);
  y = b.op('Dropout', [y]);
  const m = b.output(b.conv(y, 4, 2, 1)).model();
  const { model } = await foldAndCompare(m, async (f) => removeIdentity(f.graph, await shapesCtx(f)));
  assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Conv', 'Conv']);
});

test('slopes near 1 count only within eps', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 2, 4, 4]);
  const m = b.output(b.conv(b.prelu(b.conv(x, 2, 2, 1), [1, 1 + 1e-6]), 2, 2, 1)).model();
  assert.equal(removeIdentityPass.candidates(m.graph, await shapesCtx(m)).length, 0);
  const { model } = await foldAndCompare(m, async (f) => removeIdentity(f.graph, await shapesCtx(f, { eps: 1e-5 })), 1e-4);
  assert.equal(count(model, 'PRelu'), 0);
  const partial = new GraphBuilder({ opset: 13 });
  const x2 = partial.input('x', ['batch', 2, 4, 4]);
  const m2 = partial.output(partial.prelu(x2, [1, 0.5])).model();
  assert.equal(removeIdentity(m2.graph, await shapesCtx(m2)), false);
});

test('blend y = s + A ⊙ (x − s) with A = 1 goes, and the wrapped activation becomes dead code', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 4, 4]);
  const h = b.conv(x, 3, 3, 1);
  const s = b.op('Sigmoid', [h]);
  const d = b.op('Sub', [h, s]);
  const md = b.op('Mul', [d, b.init([1, 3, 1, 1], [1, 1, 1])]);
  const y = b.op('Add', [s, md]);
  const m = b.output(b.conv(y, 3, 2, 1)).model();
  const { model } = await foldAndCompare(m, async (f) => {
    removeIdentity(f.graph, await shapesCtx(f));
    deadCode(f.graph);
  });
  assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Conv', 'Conv']);
  assert.equal(model.graph.initializers.size, 4, 'the blend coefficient initializer is gone');
});

test('the mirrored blend y = s − A ⊙ (s − x) with A = 1 goes too (one matcher for audit and fold)', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 4, 4]);
  const h = b.conv(x, 3, 3, 1);
  const s = b.op('Tanh', [h]);
  const d = b.op('Sub', [s, h]);
  const md = b.op('Mul', [b.init([3, 1, 1], [1, 1, 1]), d]);
  const y = b.op('Sub', [s, md]);
  const m = b.output(b.conv(y, 3, 2, 1)).model();
  const { model } = await foldAndCompare(m, async (f) => {
    removeIdentity(f.graph, await shapesCtx(f));
    deadCode(f.graph);
  });
  assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Conv', 'Conv']);
});

test('an identity activation producing the graph output keeps the output name', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 2, 4, 4]);
  const y = b.prelu(b.conv(x, 2, 2, 1), [1, 1]);
  const m = b.output(y).model();
  const { model } = await foldAndCompare(m, async (f) => removeIdentity(f.graph, await shapesCtx(f)));
  assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Conv']);
  assert.equal(model.graph.nodes[0].outputs[0], y);
  // input → PRelu(1) → output: one Identity remains (the interface needs both names)
  const b2 = new GraphBuilder({ opset: 13 });
  const x2 = b2.input('x', ['batch', 2]);
  const m2 = b2.output(b2.prelu(x2, [1, 1], [2])).model();
  const r = await foldAndCompare(m2, async (f) => removeIdentity(f.graph, await shapesCtx(f)));
  assert.deepEqual(r.model.graph.nodes.map((n) => n.opType), ['Identity']);
});

test('dead-code drops unread nodes and unused initializers, keeps graph outputs', () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 2, 4, 4]);
  const y = b.conv(x, 2, 2, 1);
  b.conv(y, 2, 2, 3); // unread
  b.normal([7], 0.3); // unused
  const m = b.output(y).model();
  assert.equal(deadCode(m.graph), true);
  assert.equal(m.graph.nodes.length, 1);
  assert.equal(m.graph.initializers.size, 2);
  assert.equal(deadCode(m.graph), false);
});

test('census-recognised identity layers go too: Clip without bounds, a blend A = 1 around GELU (Erf chain)', async () => {
  const b = new GraphBuilder({ seed: 5, opset: 13 });
  const x = b.input('x', ['batch', 3, 4, 4]);
  const h = b.conv(x, 3, 3, 1);
  const c = b.op('Clip', [h]);
  // GELU as exported: Div → Erf → Add → Mul → Mul
  const dv = b.op('Div', [c, b.init([], [Math.SQRT2])]);
  const e = b.op('Erf', [dv]);
  const a1 = b.op('Add', [e, b.init([], [1])]);
  const m1 = b.op('Mul', [c, a1]);
  const s = b.op('Mul', [m1, b.init([], [0.5])]);
  const y = b.op('Add', [s, b.op('Mul', [b.init([3, 1, 1], [1, 1, 1]), b.op('Sub', [c, s])])]);
  const m = b.output(b.conv(y, 3, 2, 1)).model();
  const { model } = await foldAndCompare(m, async (f) => {
    removeIdentity(f.graph, await shapesCtx(f));
    deadCode(f.graph);
  });
  assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Conv', 'Conv']);
});
