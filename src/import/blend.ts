// linfold's blend form of an activation σ with a learnable per-channel slope A:
//   y = s + A ⊙ (x − s),  s = σ(x)        (A = 0: σ itself, A = 1: the identity)
// written as Sub(x, s) → Mul(·, A) → Add(s, ·). One builder (used by linearize) and one matcher (used by the
// audit and by the fold passes), which also accepts the mirrored spelling y = s − A ⊙ (s − x) that other
// tools write for the same function.
import type { Graph, Node } from './ir.js';

/** The three nodes of y = s + A ⊙ (x − s) for activation input `x`, activation output `s`, slope `slope`. */
export function blendNodes(g: Graph, base: string, x: string, s: string, slope: string, y: string): Node[] {
  const d = g.uniqueName(`${y}_diff`), m = g.uniqueName(`${y}_scaled`);
  const sub: Node = { name: g.uniqueName(`${base}_blend_sub`), opType: 'Sub', domain: '', inputs: [x, s], outputs: [d], attrs: {} };
  const mul: Node = { name: g.uniqueName(`${base}_blend_mul`), opType: 'Mul', domain: '', inputs: [d, slope], outputs: [m], attrs: {} };
  const add: Node = { name: g.uniqueName(`${base}_blend_add`), opType: 'Add', domain: '', inputs: [s, m], outputs: [y], attrs: {} };
  return [sub, mul, add];
}

export interface BlendMatch {
  /** Sub(x, s), or Sub(s, x) when mirrored */
  sub: Node;
  /** Mul(sub, A) in either operand order */
  mul: Node;
  /** Add(s, mul), or Sub(s, mul) when mirrored: its output is y */
  fin: Node;
  x: string;
  s: string;
  /** the value holding A */
  slope: string;
  mirrored: boolean;
}

const isOp = (n: Node, op: string): boolean => n.opType === op && (!n.domain || n.domain === 'ai.onnx');
const otherInput = (n: Node, v: string): string => (n.inputs[0] === v ? n.inputs[1] : n.inputs[0]);

/** Every blend whose difference node is `sub` (usually one; a shared Sub can feed several). */
export function matchBlendAt(sub: Node, consumers: Map<string, Node[]>): BlendMatch[] {
  if (!isOp(sub, 'Sub') || sub.inputs.length !== 2) return [];
  const [a, b] = sub.inputs;
  const out: BlendMatch[] = [];
  for (const mul of consumers.get(sub.outputs[0]) ?? []) {
    if (!isOp(mul, 'Mul') || mul.inputs.length !== 2) continue;
    const slope = otherInput(mul, sub.outputs[0]);
    for (const fin of consumers.get(mul.outputs[0]) ?? []) {
      if (isOp(fin, 'Add') && fin.inputs.length === 2 && otherInput(fin, mul.outputs[0]) === b)
        out.push({ sub, mul, fin, x: a, s: b, slope, mirrored: false });
      else if (isOp(fin, 'Sub') && fin.inputs[0] === a && fin.inputs[1] === mul.outputs[0])
        out.push({ sub, mul, fin, x: b, s: a, slope, mirrored: true });
    }
  }
  return out;
}
