// Reverse-mode differentiation of an IR graph into ONNX nodes: walks the forward nodes backwards, asks each op's
// gradient rule for the gradients of the inputs that lead to a trainable tensor, and sums the contributions of
// values read several times.
import { LinfoldError, option } from '../../errors.js';
import { type Node, nodeLabel } from '../../import/ir.js';
import type { Emitter } from './emit.js';
import { gradRule } from './grad/index.js';

/**
 * `forward`: the forward nodes in topological order; `seeds`: value → its gradient (dLoss/dValue);
 * `wrt`: the tensors whose gradients are wanted. Returns wrt → gradient value (undefined: does not reach the loss).
 */
export function backward(e: Emitter, forward: Node[], seeds: Map<string, string>, wrt: string[]): Map<string, string | undefined> {
  const dependent = new Set(wrt);
  for (const n of forward) if (n.inputs.some((i) => dependent.has(i))) for (const o of n.outputs) if (o) dependent.add(o);
  const parts = new Map<string, string[]>([...seeds].map(([v, g]) => [v, [g]]));
  for (let k = forward.length - 1; k >= 0; k--) {
    const n = forward[k];
    if (!n.outputs.some((o) => parts.has(o))) continue;
    const rule = gradRule(n.opType, n.domain);
    const need = n.inputs.map((i, j) => Boolean(i) && dependent.has(i) && !rule?.constant?.includes(j));
    if (!need.some(Boolean)) continue;
    if (!rule) throw new LinfoldError(`native backend: no gradient rule for ${n.domain ? `${n.domain}::` : ''}${n.opType} (${nodeLabel(n)}); use ${option('backend')} 'wasm'`);
    const dOut = n.outputs.map((o) => (parts.has(o) ? e.sum(parts.get(o)!) : undefined));
    const dIn = rule.grad({ e, node: n, dOut, need });
    n.inputs.forEach((i, j) => {
      if (!need[j] || !dIn[j]) return;
      const l = parts.get(i);
      if (l) l.push(dIn[j]!);
      else parts.set(i, [dIn[j]!]);
    });
  }
  return new Map(wrt.map((w) => [w, parts.has(w) ? e.sum(parts.get(w)!) : undefined]));
}
