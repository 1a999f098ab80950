// LayerNormalization (its Mean and InvStdDev outputs added to the forward node when unread) and
// BatchNormalization in inference mode (running statistics: a per-channel affine map).
import { LinfoldError, option } from '../../../errors.js';
import { attrFloat, attrInt, nodeLabel } from '../../../import/ir.js';
import { registerGrads } from './registry.js';

registerGrads(
  {
    // x̂ = (x − μ)·r; dScale = Σ dy·x̂, dB = Σ dy over the leading axes; dx = r·(g − mean(g) − x̂·mean(g·x̂)), g = dy·scale
    op: 'LayerNormalization', weights: [1, 2],
    grad: ({ e, node, dOut, need }) => {
      const [x, scale, bias] = node.inputs;
      const xs = e.shape(x, node);
      const rank = xs.length;
      const axis0 = attrInt(node, 'axis', -1) < 0 ? attrInt(node, 'axis', -1) + rank : attrInt(node, 'axis', -1);
      const normAxes = Array.from({ length: rank - axis0 }, (_, i) => axis0 + i);
      const lead = Array.from({ length: axis0 }, (_, i) => i);
      const count = normAxes.reduce((p, a) => p * (typeof xs[a] === 'number' ? (xs[a] as number) : NaN), 1);
      if (!Number.isFinite(count)) e.staticShape(x, node);
      while (node.outputs.length < 3) node.outputs.push('');
      if (!node.outputs[1]) node.outputs[1] = e.fresh(`${node.outputs[0]}_mean`);
      if (!node.outputs[2]) node.outputs[2] = e.fresh(`${node.outputs[0]}_invstd`);
      const dy = dOut[0]!;
      const xhat = e.op('Mul', [e.op('Sub', [x, node.outputs[1]]), node.outputs[2]]);
      const res: (string | undefined)[] = [];
      if (need[0]) {
        const g = e.op('Mul', [dy, scale]);
        const meanOf = (v: string) => e.op('Mul', [e.op('ReduceSum', [v, e.i64(normAxes)], { keepdims: 1 }), e.f32(1 / count)]);
        const inner = e.op('Sub', [e.op('Sub', [g, meanOf(g)]), e.op('Mul', [xhat, meanOf(e.op('Mul', [g, xhat]))])]);
        res[0] = e.op('Mul', [inner, node.outputs[2]], {}, 'dX');
      }
      const sumLead = (v: string) => (lead.length ? e.op('ReduceSum', [v, e.i64(lead)], { keepdims: 0 }) : v);
      if (need[1]) res[1] = e.op('Reshape', [sumLead(e.op('Mul', [dy, xhat])), e.op('Shape', [scale])]);
      if (need[2] && bias) res[2] = e.op('Reshape', [sumLead(dy), e.op('Shape', [bias])]);
      return res;
    },
  },
  {
    op: 'BatchNormalization', weights: [1, 2], constant: [3, 4],
    grad: ({ e, node, dOut, need }) => {
      if (attrInt(node, 'training_mode', 0) || node.outputs.filter(Boolean).length > 1)
        throw new LinfoldError(`native backend: ${nodeLabel(node)} is in training mode (batch statistics); export the model in eval mode or use ${option('backend')} 'wasm'`);
      const [x, scale, , mean, variance] = node.inputs;
      const rank = e.shape(x, node).length;
      const chan = [-1, ...new Array(rank - 2).fill(1)];
      const r = e.op('Reshape', [e.op('Reciprocal', [e.op('Sqrt', [e.op('Add', [variance, e.f32(attrFloat(node, 'epsilon', 1e-5))])])]), e.i64(chan)]);
      const dy = dOut[0]!;
      const axes = e.i64([0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)]);
      const res: (string | undefined)[] = [];
      if (need[0]) res[0] = e.op('Mul', [dy, e.op('Mul', [r, e.op('Reshape', [scale, e.i64(chan)])])], {}, 'dX');
      if (need[1]) res[1] = e.op('ReduceSum', [e.op('Mul', [dy, e.op('Mul', [e.op('Sub', [x, e.op('Reshape', [mean, e.i64(chan)])]), r])]), axes], { keepdims: 0 });
      if (need[2]) res[2] = e.op('ReduceSum', [dy, axes], { keepdims: 0 });
      return res;
    },
  },
);
