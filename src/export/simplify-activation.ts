// simplify-activation: the cheapest exact spelling of an activation that training left (partly) nonlinear.
//  - PRelu whose slopes are all exactly 0, LeakyRelu(alpha = 0) → Relu
//  - PRelu with one slope value on every channel → LeakyRelu(alpha)
//  - linfold's blend y = s + A ⊙ (x − s) with A = 0 on every channel → s (the activation it wraps)
//  - PRelu with per-channel slopes, all in [0, 1] → Max(x, Mul(x, a)); all ≥ 1 → Min(x, Mul(x, a)).
//    Exact to the bit: for 0 ≤ a ≤ 1, fl(a·x) ≤ x when x ≥ 0 and ≥ x when x < 0 (rounding is monotone and
//    x is representable), so Max picks x or fl(a·x) exactly where PRelu does; Min likewise for a ≥ 1.
//
// Why. onnxruntime-node 1.30 runs PRelu with a [C,1,1] slope through a generic broadcasting kernel; Relu and
// LeakyRelu are MLAS activations that also fuse into the Conv before them (FusedConv). Measured on the 2-core
// dev machine, medians of 400–1500 alternating runs, intra-op spinning off:
//  - fixtures/mnist_cnn.onnx, its 5 Relus spelled each way (slopes random in [0, 1]): batch 1 — Relu
//    0.23–0.24 ms, LeakyRelu 0.25–0.26, PRelu 0.41–0.42 (all-0 or uniform slopes alike), Max(x, Mul(x, a))
//    0.37–0.38; batch 8 — Relu 0.83–0.89, LeakyRelu 0.93–0.99, PRelu 2.13–2.20, Max form 1.27–1.32.
//  - one activation alone (after an Add: nothing to fuse with), PRelu vs Max form: per run 128–4 704
//    elements ([1,8,4,4] 0.0276 vs 0.0284 ms, [1,16,8,8], [1,16,16,16], [1,24,14,14], [1,48,7,7], [8,8,4,4])
//    equal within ±3% either way (the extra node costs about a microsecond); 8 192 ([8,16,8,8],
//    [1,32,16,16]) Max 3–4% faster; 12 288–18 816 ([1,48,16,16], [1,24,28,28]) 6–13%; [8,48,7,7] 0.102 vs
//    0.066, [1,32,32,32] 0.24 vs 0.14, [1,64,56,56] 1.30 vs 0.58.
// So Relu and LeakyRelu (never slower, same node count) are cleanups. The Max/Min form adds a node:
//  - objective 'depth' / 'macs': respelled when the activation holds ≥ 1 024 elements per example (static
//    shape known): never measurably slower, faster from 8 k elements per run (large maps, or batch 8); smaller ones (a dense
//    core of a few units, e.g. what split-partial leaves) keep the PRelu: one node for the same time. The
//    pipeline ignores the node-count tie-break for this rewrite (Candidate.speedOnly).
//  - objective 'latency': every in-range PRelu is proposed; the pipeline times the respelled model against
//    the current one (batch 1) and keeps it only when faster.
// A PRelu that split-partial can split (some channels exactly linear, between two dense layers) is left to
// it. src/analyze's census recognises the Max/Min form as a prelu layer.
import { product } from '../import/shape-math.js';
import { type Graph, type Node, attrFloat } from '../import/ir.js';
import { allOne, blendsFrom, constFloats, numericDims } from './graph-utils.js';
import { float, makeNode, removeNodes, rewire } from '../import/ir-edit.js';
import { fitsShape } from './remove-identity.js';
import { splitPartialPass } from './split-partial.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';

/** Under depth/macs, a partial PRelu is respelled Max/Min(x, Mul(x, a)) from this many elements per example (see above). */
export const RESPELL_MIN_ELEMENTS = 1024;

/** Elements per example of x (its static shape without the batch axis), NaN when unknown. */
function perExample(g: Graph, ctx: PassContext, x: string): number {
  const s = ctx.shapeOf(x) ?? g.info(x)?.shape;
  const d = s && numericDims(s.slice(1));
  return d ? product(d) : NaN;
}

const inRange = (v: ArrayLike<number>, lo: number, hi: number): boolean => {
  for (let i = 0; i < v.length; i++) if (!(v[i] >= lo && v[i] <= hi)) return false;
  return true;
};

export const simplifyActivationPass: FoldPass = {
  name: 'simplify-activation',
  kind: 'cleanup',
  candidates(g: Graph, ctx: PassContext): Candidate[] {
    const out: Candidate[] = [];
    const producers = g.producers();
    const consumers = g.consumers();
    let splittable: Set<string> | undefined;
    const leftToSplit = (n: Node): boolean => {
      splittable ??= new Set(splitPartialPass.candidates(g, ctx).filter((c) => c.apply).flatMap((c) => c.nodes));
      return splittable.has(nm(n));
    };
    for (const n of g.nodes) {
      if (n.domain && n.domain !== 'ai.onnx') continue;
      const x = n.inputs[0];
      switch (n.opType) {
        case 'LeakyRelu':
          if (attrFloat(n, 'alpha', 0.01) === 0)
            out.push({ what: `LeakyRelu ${nm(n)} with alpha 0 → Relu`, nodes: [nm(n)], apply: () => Object.assign(n, { opType: 'Relu', inputs: [x], attrs: {} }) });
          break;
        case 'PRelu': {
          const s = constFloats(g, n.inputs[1], producers);
          if (!s || !s.data.length || !fitsShape(g, ctx, x, s.dims)) break;
          if (allOne(s.data, ctx.eps)) break; // remove-identity's
          const C = s.data.length;
          const v0 = s.data[0];
          if (s.data.every((v) => v === 0)) {
            out.push({ what: `PRelu ${nm(n)} (${C} slope(s), all 0) → Relu`, nodes: [nm(n)], apply: () => Object.assign(n, { opType: 'Relu', inputs: [x], attrs: {} }) });
          } else if (s.data.every((v) => v === v0)) {
            out.push({
              what: `PRelu ${nm(n)} (${C} slope(s), all ${v0}) → LeakyRelu(${v0})`,
              nodes: [nm(n)],
              apply: () => Object.assign(n, { opType: 'LeakyRelu', inputs: [x], attrs: { alpha: float(v0) } }),
            });
          } else {
            const op = inRange(s.data, 0, 1) ? 'Max' : inRange(s.data, 1, Infinity) ? 'Min' : undefined;
            // (Max/Min broadcast from opset 8; the shapes are equal here, but older Max/Min-6 is left alone)
            if (!op || (ctx.opset !== undefined && ctx.opset < 8) || leftToSplit(n)) break;
            if (ctx.objective !== 'latency' && !(perExample(g, ctx, x) >= RESPELL_MIN_ELEMENTS)) break;
            const slope = n.inputs[1];
            out.push({
              what: `PRelu ${nm(n)} (${C} slopes in ${op === 'Max' ? '[0, 1]' : '[1, ∞)'}) → ${op}(x, Mul(x, a))`,
              nodes: [nm(n)],
              speedOnly: true,
              apply: () => {
                const t = g.uniqueName(`${n.outputs[0]}_ax`);
                const mul = makeNode(g, 'Mul', [x, slope], [t], {}, `${n.name || 'prelu'}_mul`);
                g.nodes.splice(g.nodes.indexOf(n), 0, mul);
                Object.assign(n, { opType: op, inputs: [x, t], attrs: {} });
                const sh = ctx.shapeOf(n.outputs[0]);
                if (sh) ctx.setShape(t, sh);
              },
            });
          }
          break;
        }
        case 'Sub':
          for (const b of blendsFrom(g, n, producers, consumers)) {
            if (!b.A.data.every((v) => v === 0) || !fitsShape(g, ctx, b.x, b.A.dims)) continue;
            out.push({
              what: `blend ${nm(b.add)} (${b.A.data.length} coefficient(s), all 0) → the activation it wraps`,
              nodes: b.removable.map(nm),
              apply: () => {
                if (!rewire(g, b.add.outputs[0], b.s)) throw new Error(`cannot bypass ${nm(b.add)}: its output and the activation's are both graph interface values`);
                removeNodes(g, ...b.removable);
              },
            });
          }
          break;
      }
    }
    return out;
  },
};

export function simplifyActivation(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(simplifyActivationPass, g, ctx);
}
