import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpRegistry, type OpsetRanged } from '../src/import/op-registry.js';
import { allOpSpecs, opFacts, type OpSpec } from '../src/import/ops/index.js';
import { Tensor } from '../src/import/tensor.js';
import type { Node } from '../src/import/ir.js';
import { audit } from '../src/analyze/audit.js';
import { attr, f32in, makeModel, node } from './support/models.js';

test('an op registry finds the entry covering an opset and refuses overlapping ranges', () => {
  const r = new OpRegistry<OpsetRanged & { tag: string }>('test rule');
  r.register({ op: 'Squeeze', since: 1, until: 12, tag: 'attr' }, { op: 'Squeeze', since: 13, tag: 'input' });
  r.register({ op: 'Gelu', domain: 'com.microsoft', tag: 'ms' });
  assert.equal(r.lookup('Squeeze', '', 11)?.tag, 'attr');
  assert.equal(r.lookup('Squeeze', 'ai.onnx', 13)?.tag, 'input');
  assert.equal(r.lookup('Squeeze', '', 21)?.tag, 'input');
  assert.equal(r.lookup('Gelu', '', 20), undefined);
  assert.equal(r.lookup('Gelu', 'com.microsoft', 1)?.tag, 'ms');
  assert.deepEqual(r.names().sort(), ['Squeeze', 'com.microsoft::Gelu']);
  assert.throws(() => r.register({ op: 'Squeeze', since: 12, until: 13, tag: 'x' }), /test rule Squeeze: opsets 12–13 overlap the registered 1–12/);
  assert.throws(() => r.register({ op: 'Gelu', domain: 'com.microsoft', since: 5, tag: 'y' }), /overlap the registered 1–∞/);
  r.register({ op: 'Squeeze', domain: 'other', since: 1, tag: 'own domain' });
  assert.equal(r.lookup('Squeeze', 'other', 3)?.tag, 'own domain');
});

test("an op's static facts live in its spec: one path rule, channel layout and MACs rule across its opset ranges", () => {
  const byOp = new Map<string, OpSpec[]>();
  for (const s of allOpSpecs()) byOp.set(`${s.domain ?? ''}::${s.op}`, [...(byOp.get(`${s.domain ?? ''}::${s.op}`) ?? []), s]);
  for (const [op, list] of byOp) {
    assert.ok(list.every((s) => s.infer || s.path || s.channels || s.macs), `${op}: a spec with no facts`);
    const facts = list.map((s) => JSON.stringify([s.path ?? null, s.channels ?? null, !!s.macs]));
    assert.equal(new Set(facts).size, 1, `${op}: opset ranges disagree on path/channels/MACs: ${facts.join(' vs ')}`);
  }
  // every contraction has a MACs rule, every op with a shape rule that moves data has a path rule
  for (const op of ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Einsum', 'LSTM', 'GRU', 'RNN', 'QLinearConv', 'QLinearMatMul'])
    assert.ok(opFacts(op, '')?.macs, `${op}: no MACs rule`);
  for (const op of ['Reshape', 'Transpose', 'Concat', 'Slice', 'Split', 'Gather', 'Add', 'Softmax', 'LayerNormalization'])
    assert.ok(opFacts(op, '')?.path, `${op}: no path rule`);
});

test('facts of ops without a shape rule reach the audit: recurrent MACs and per-path counts, fused norms, quantized weights', () => {
  // LSTM: seq 5, batch 2, input 3, hidden 4 → 5·2·4 gates·4·(3 + 4) = 1120 MACs; one recurrent op per path
  const lstm = makeModel(14, [f32in('x', [5, 2, 3])], [node('LSTM', ['x', 'W', 'R'], ['y'], { hidden_size: attr.i(4) }, 'lstm')],
    [Tensor.f32('W', [1, 16, 3], new Array(48).fill(0.1)), Tensor.f32('R', [1, 16, 4], new Array(64).fill(0.1))],
    [{ name: 'y', dtype: 'float32', shape: [5, 1, 2, 4] }]);
  const r = audit(lstm, { inferShapes: false });
  assert.equal(r.cost.macs, 1120);
  assert.deepEqual(r.otherNonlinear.counts, { recurrent: 1 });
  assert.equal(r.summary.otherNonlinearPerPath.napl, 1);
  assert.deepEqual(r.opaque, []);
  // onnxruntime's SkipLayerNormalization: x + skip (a residual merge of two input paths), then one layernorm
  const skip: Node = { name: 'sln', opType: 'SkipLayerNormalization', domain: 'com.microsoft', inputs: ['x', 'h', 'g', 'b'], outputs: ['y'], attrs: {} };
  const m = makeModel(17, [f32in('x', [1, 3, 8])], [node('Relu', ['x'], ['h'], {}, 'relu'), skip],
    [Tensor.f32('g', [8], new Array(8).fill(1)), Tensor.f32('b', [8], new Array(8).fill(0))]);
  m.opsets.push({ domain: 'com.microsoft', version: 1 });
  const s = audit(m);
  assert.deepEqual(s.otherNonlinear.counts, { layernorm: 1 });
  assert.deepEqual(s.merges.map((x) => [x.node, x.branches]), [['sln', 2]]);
  assert.equal(s.summary.napl, 0.5, 'half the paths skip the Relu');
  assert.deepEqual(s.opaque, []);
  assert.deepEqual(m.graph.valueInfo.get('y')?.shape, [1, 3, 8], 'its shape rule: output shaped like input 0');
  // QLinearConv reads its weight at input 3: 1·4·3·3 MACs per output element, 4·6·6 outputs
  const q = makeModel(10, [{ name: 'x', dtype: 'uint8', shape: [1, 1, 8, 8] }],
    [node('QLinearConv', ['x', 's', 'z', 'w', 's', 'z', 's', 'z'], ['y'], {}, 'qconv')],
    [Tensor.f32('s', [], [1]), Tensor.f32('z', [], [0]), Tensor.f32('w', [4, 1, 3, 3], new Array(36).fill(1))],
    [{ name: 'y', dtype: 'uint8', shape: [1, 4, 6, 6] }]);
  assert.equal(audit(q, { inferShapes: false }).cost.macs, 4 * 6 * 6 * 9);
});
