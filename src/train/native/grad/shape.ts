// Ops that only move values: the gradient is dY moved back (reshaped to the input's runtime shape, transposed by
// the inverse permutation, scattered back into zeros where a Slice took it, split between a Concat's inputs, or
// summed over the axes an Expand broadcast).
import { attrInt, attrInts } from '../../../import/ir.js';
import { registerGrads, type GradContext } from './registry.js';

const reshapeBack = ({ e, node, dOut }: GradContext) => [e.op('Reshape', [dOut[0]!, e.op('Shape', [node.inputs[0]])], {}, 'dX')];

/** Slice's gradient for any starts/ends/axes/steps (constant or computed, negative, clamped): the same Slice
 *  applied to the flat positions of X says where each element of dY came from; dY is scattered there into zeros. */
function sliceBack({ e, node, dOut }: GradContext): (string | undefined)[] {
  const shape = e.op('Shape', [node.inputs[0]]);
  const size = e.op('ReduceProd', [shape], { keepdims: 1 });
  const positions = e.op('Reshape', [e.op('Range', [e.i64([0], []), e.op('Squeeze', [size]), e.i64([1], [])]), shape]);
  const taken = e.op('Slice', [positions, ...node.inputs.slice(1)]);
  const flat = e.op('ScatterElements', [e.op('ConstantOfShape', [size]), e.op('Reshape', [taken, e.i64([-1])]), e.op('Reshape', [dOut[0]!, e.i64([-1])])], { axis: 0 });
  return [e.op('Reshape', [flat, shape], {}, 'dX')];
}

/** Concat: dY split along the axis into the inputs' runtime sizes. */
function concatBack({ e, node, dOut, need }: GradContext): (string | undefined)[] {
  const rank = e.shape(node.outputs[0], node).length;
  const axis = (attrInt(node, 'axis', 0) + rank) % rank;
  const sizes = e.op('Concat', node.inputs.map((x) => e.op('Gather', [e.op('Shape', [x]), e.i64([axis])], { axis: 0 })), { axis: 0 });
  const parts = e.nodeN('Split', [dOut[0]!, sizes], { axis }, node.inputs.length, 'dX');
  return parts.map((p, k) => (need[k] ? p : undefined));
}

const expandBack = ({ e, node, dOut }: GradContext) => [e.unbroadcast(dOut[0]!, node.inputs[0], node.outputs[0], node)];

registerGrads(
  { op: 'Flatten', grad: reshapeBack },
  { op: 'Reshape', constant: [1], grad: reshapeBack },
  { op: 'Squeeze', constant: [1], grad: reshapeBack },
  { op: 'Unsqueeze', constant: [1], grad: reshapeBack },
  { op: 'Slice', since: 10, constant: [1, 2, 3, 4], grad: sliceBack },
  { op: 'Concat', since: 4, grad: concatBack },
  { op: 'Expand', since: 8, constant: [1], grad: expandBack },
  {
    op: 'Transpose',
    grad: ({ e, node, dOut }) => {
      const rank = e.shape(node.inputs[0], node).length;
      const perm = attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      const inv = new Array(rank);
      perm.forEach((p, i) => (inv[p] = i));
      return [e.op('Transpose', [dOut[0]!], { perm: inv })];
    },
  },
);
