// remove-identity: activations that are the identity on every channel go away.
//  - PRelu with every slope 1, LeakyRelu with alpha 1 (exactly, or within ctx.eps)
//  - linfold's blend form y = s + A ⊙ (x − s) (Sub(x, s) → Mul(·, A) → Add(s, ·)) with A = 1 on every channel
//  - Identity, and Dropout in inference (no training_mode, mask output unread)
//  - any other activation layer src/analyze/census recognises as linear on every channel
// The nodes computing s (the original activation) become dead and are left to dead-code.
import { type Graph, type Node, attrFloat } from '../import/ir.js';
import { allOne, blendsFrom, constFloats, constValue } from './graph-utils.js';
import { rewire, removeNodes, isGraphOutput } from '../import/ir-edit.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';
import { census, type ActivationLayer } from '../analyze/census.js';

export const removeIdentityPass: FoldPass = {
  name: 'remove-identity',
  kind: 'cleanup',
  candidates(g: Graph, ctx: PassContext): Candidate[] {
    const out: Candidate[] = [];
    const producers = g.producers();
    const consumers = g.consumers();
    const bypass = (nodes: Node[], from: string, to: string, what: string) => {
      out.push({
        what,
        nodes: nodes.map(nm),
        apply: () => {
          if (!rewire(g, from, to)) {
            // a graph input wired straight to a graph output: keep one Identity node
            const last = nodes[nodes.length - 1];
            removeNodes(g, ...nodes.filter((n) => n !== last));
            Object.assign(last, { opType: 'Identity', domain: '', inputs: [to], outputs: [from], attrs: {} });
            return;
          }
          removeNodes(g, ...nodes);
        },
      });
    };
    for (const n of g.nodes) {
      if (n.domain && n.domain !== 'ai.onnx') continue;
      const x = n.inputs[0], y = n.outputs[0];
      switch (n.opType) {
        case 'Identity':
          if (isGraphOutput(g, y) && (g.inputs.some((i) => i.name === x) || isGraphOutput(g, x) || g.initializers.has(x))) break;
          bypass([n], y, x, `Identity ${nm(n)}`);
          break;
        case 'Dropout': {
          if (n.outputs[1] && (consumers.get(n.outputs[1])?.length || isGraphOutput(g, n.outputs[1]))) {
            out.push({ what: `Dropout ${nm(n)}`, nodes: [nm(n)], refused: 'its mask output is read' });
            break;
          }
          const tm = n.inputs[2] ? constValue(g, n.inputs[2], producers) : undefined;
          if (n.inputs[2] && (!tm || tm.numbers()[0] !== 0)) {
            out.push({ what: `Dropout ${nm(n)}`, nodes: [nm(n)], refused: 'training_mode is not a constant false' });
            break;
          }
          bypass([n], y, x, `Dropout ${nm(n)} (inference)`);
          break;
        }
        case 'LeakyRelu':
          if (Math.abs(attrFloat(n, 'alpha', 0.01) - 1) <= ctx.eps) bypass([n], y, x, `LeakyRelu ${nm(n)} with alpha 1`);
          break;
        case 'PRelu': {
          const s = constFloats(g, n.inputs[1], producers);
          if (!s || !allOne(s.data, ctx.eps) || !fitsShape(g, ctx, x, s.dims)) break;
          bypass([n], y, x, `PRelu ${nm(n)} (${s.data.length} slope(s), all 1)`);
          break;
        }
        case 'Sub':
          // blend: Sub(x, s) → Mul(·, A) → Add(s, ·), or its mirrored spelling
          for (const b of blendsFrom(g, n, producers, consumers)) {
            if (!allOne(b.A.data, ctx.eps) || !fitsShape(g, ctx, b.x, b.A.dims)) continue;
            bypass(b.removable, b.add.outputs[0], b.x, `blend ${nm(b.add)} (${b.A.data.length} coefficient(s), all 1)`);
          }
          break;
      }
    }
    // anything else analyze/census recognises as an activation layer that is linear on every channel
    // (blends around any activation, Clip without bounds, …)
    const claimed = new Set(out.map((c) => c.nodes[c.nodes.length - 1]));
    let layers: ActivationLayer[] = [];
    try {
      layers = census(g, { eps: ctx.eps }).layers;
    } catch {
      // the census is a supplement: without it the structural matches above still apply
    }
    for (const l of layers) {
      if (l.channels === 0 || l.linearChannels !== l.channels) continue;
      const last = producers.get(l.output);
      if (!last || claimed.has(nm(last))) continue;
      const si = ctx.shapeOf(l.input), so = ctx.shapeOf(l.output);
      if (!si || !so || si.join() !== so.join()) continue;
      bypass([last], l.output, l.input, `${l.kind} ${l.name} (${l.form}): identity on all ${l.channels} channels`);
    }
    return out;
  },
};

/** The constant broadcasts onto x without raising its rank (else removing the op would change the shape). */
export function fitsShape(g: Graph, ctx: PassContext, x: string, dims: number[]): boolean {
  const shape = ctx.shapeOf(x) ?? g.info(x)?.shape;
  if (!shape) return dims.length <= 1;
  if (dims.length > shape.length) return false;
  return dims.every((d, i) => {
    const xd = shape[shape.length - dims.length + i];
    return d === 1 || typeof xd !== 'number' || d === xd;
  });
}

export function removeIdentity(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(removeIdentityPass, g, ctx);
}
