// Ops that only move values: the gradient is dY moved back (reshaped to the input's runtime shape, or transposed
// by the inverse permutation).
import { attrInts } from '../../../import/ir.js';
import { registerGrads, type GradContext } from './registry.js';

const reshapeBack = ({ e, node, dOut }: GradContext) => [e.op('Reshape', [dOut[0]!, e.op('Shape', [node.inputs[0]])], {}, 'dX')];

registerGrads(
  { op: 'Flatten', grad: reshapeBack },
  { op: 'Reshape', constant: [1], grad: reshapeBack },
  { op: 'Squeeze', constant: [1], grad: reshapeBack },
  { op: 'Unsqueeze', constant: [1], grad: reshapeBack },
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
