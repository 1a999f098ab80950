// Recurrent layers (RNN, GRU, LSTM): no shape rule or kernel in linfold; the audit's facts only — every path
// through the layer meets one nonlinear op, and the MACs of the gates over the sequence.
import { attrInt, attrString, type Node } from '../ir.js';
import { registerOps, type DimsOf, type OpSpec } from './registry.js';

const GATES: Record<string, number> = { RNN: 1, GRU: 3, LSTM: 4 };

function recurrentMacs(n: Node, dims: DimsOf): number | undefined {
  const x = dims(n.inputs[0]);
  if (!x) return undefined;
  const H = attrInt(n, 'hidden_size', 0);
  const dirs = attrString(n, 'direction', 'forward') === 'bidirectional' ? 2 : 1;
  const [seq, batch, input] = attrInt(n, 'layout', 0) ? [x[1], x[0], x[2]] : [x[0], x[1], x[2]];
  return seq * batch * dirs * GATES[n.opType] * H * (input + H);
}

registerOps(...Object.keys(GATES).map((op): OpSpec => ({ op, since: 1, path: { rule: 'recurrent' }, macs: recurrentMacs })));
