// Reductions: dY (with the reduced axes restored when keepdims = 0) broadcast back over the input; ReduceMean
// divides by the number of values each output averaged (Size(x) / Size(y), so symbolic dims are fine).
import { normAxis } from '../../../import/shape-math.js';
import { LinfoldError } from '../../../errors.js';
import { attrInt, attrInts, nodeLabel } from '../../../import/ir.js';
import { registerGrads, type GradContext } from './registry.js';

function reduceGrad(mean: boolean) {
  return ({ e, node, dOut }: GradContext) => {
    const x = node.inputs[0];
    const rank = e.shape(x, node).length;
    let axes = attrInts(node, 'axes');
    if (!axes && node.inputs[1]) {
      const t = e.g.initializers.get(node.inputs[1]);
      if (!t) throw new LinfoldError(`native backend: ${nodeLabel(node)}: its axes are not a constant`);
      axes = t.numbers();
    }
    if (!axes || !axes.length) {
      if (attrInt(node, 'noop_with_empty_axes', 0)) return [dOut[0]];
      axes = Array.from({ length: rank }, (_, i) => i);
    }
    axes = axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
    let dy = dOut[0]!;
    if (!attrInt(node, 'keepdims', 1)) dy = e.op('Unsqueeze', [dy, e.i64(axes)]);
    if (mean) {
      const count = e.op('Div', [e.op('Cast', [e.op('Size', [x])], { to: 1 }), e.op('Cast', [e.op('Size', [node.outputs[0]])], { to: 1 })]);
      dy = e.op('Div', [dy, count]);
    }
    return [e.op('Expand', [dy, e.op('Shape', [x])], {}, 'dX')];
  };
}

registerGrads(
  { op: 'ReduceMean', constant: [1], grad: reduceGrad(true) },
  { op: 'ReduceSum', constant: [1], grad: reduceGrad(false) },
);
