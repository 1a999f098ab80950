// Hand-made linearizations of the torch-exported fixtures, spelled here independently of linfold's own
// builders (src/train/linearizable.ts): ReLUs as PReLUs with chosen slopes, activations wrapped in the blend
// form y = s + A ⊙ (x − s).
import type { Graph, Model, Node } from '../../src/import/ir.js';
import { Tensor } from '../../src/import/tensor.js';

/**
 * Every Relu of `m` becomes a PRelu, in place; `slopes(relu)` gives its slopes: one value (slope shape [1]) or
 * one per channel ([C, 1, 1]).
 */
export function reluToPRelu(m: Model, slopes: (relu: Node) => number[]): Model {
  const g = m.graph;
  for (const n of g.nodes) {
    if (n.opType !== 'Relu') continue;
    const v = slopes(n);
    const name = g.uniqueName(`${n.name}_slope`);
    g.initializers.set(name, Tensor.f32(name, v.length === 1 ? [1] : [v.length, 1, 1], v));
    Object.assign(n, { opType: 'PRelu', inputs: [n.inputs[0], name], attrs: {} });
  }
  return m;
}

/**
 * Wraps the activation whose input is `x` and whose output `s` is the first output of node `act` in the blend
 * form: `act` now writes `<s>_act`, and Sub → Mul(A) → Add after it write `s` again (readers unchanged).
 */
export function wrapInBlend(g: Graph, act: Node, x: string, A: { dims: number[]; values: number[] }): void {
  const s = act.outputs[0];
  const inner = g.uniqueName(`${s}_act`), a = g.uniqueName(`${s}_A`), d = g.uniqueName(`${s}_d`), m = g.uniqueName(`${s}_m`);
  act.outputs[0] = inner;
  g.initializers.set(a, Tensor.f32(a, A.dims, A.values));
  g.nodes.splice(g.nodes.indexOf(act) + 1, 0,
    { name: `${s}_blend_sub`, opType: 'Sub', domain: '', inputs: [x, inner], outputs: [d], attrs: {} },
    { name: `${s}_blend_mul`, opType: 'Mul', domain: '', inputs: [d, a], outputs: [m], attrs: {} },
    { name: `${s}_blend_add`, opType: 'Add', domain: '', inputs: [inner, m], outputs: [s], attrs: {} });
}
