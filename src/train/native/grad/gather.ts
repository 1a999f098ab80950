// Gather: the gradient of the gathered tensor (an embedding table) is dY scattered back with ScatterND 'add'
// (repeated indices accumulate); only axis 0 of a table with constant or data indices.
import { LinfoldError } from '../../../errors.js';
import { attrInt, nodeLabel } from '../../../import/ir.js';
import { registerGrads } from './registry.js';

registerGrads({
  op: 'Gather', weights: [0], constant: [1],
  grad: ({ e, node, dOut }) => {
    if (attrInt(node, 'axis', 0) !== 0) throw new LinfoldError(`native backend: ${nodeLabel(node)}: only Gather along axis 0 has a gradient rule`);
    const [table, idx] = node.inputs;
    const zeros = e.op('ConstantOfShape', [e.op('Shape', [table])]);
    // negative indices count from the end
    const size = e.op('Gather', [e.op('Shape', [table]), e.i64([0], [])], { axis: 0 });
    const i64 = e.op('Cast', [idx], { to: 7 });
    const pos = e.op('Where', [e.op('Less', [i64, e.i64([0], [])]), e.op('Add', [i64, size]), i64]);
    return [e.op('ScatterND', [zeros, e.op('Unsqueeze', [pos, e.i64([-1])]), dOut[0]!], { reduction: 'add' }, 'dTable')];
  },
});
