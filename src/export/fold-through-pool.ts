// fold-through-pool: GlobalAveragePool → Flatten → Gemm/MatMul absorbs the linear ops before the pool that
// act on every spatial position alike.
//
// GAP is linear and commutes with any op that maps each position's channel vector by one affine map:
// GAP(W·x + b) = W·GAP(x) + b. Such ops can move behind the pool, where they act on one vector per example,
// and merge with the dense layer after the Flatten: with GAP(v) = GAP(x)·M + b and y = GAP(v)·A + c,
// y = GAP(x)·(M·A) + (b·A + c). Exact cases, walked back from the pool as far as they go:
//  - Conv 1×1 with stride 1 (any groups: a block-diagonal matrix), its bias. Zero padding p only adds a
//    ring of positions holding the bias: GAP(conv(x)) = (H·W / H'·W')·W·GAP(x) + b (static shapes).
//  - BatchNormalization (inference), Mul/Div by a per-channel constant, Add/Sub of a constant that does not
//    vary with the example; a constant that varies over positions adds its spatial mean (the border bias
//    maps merge-conv writes fold this way).
//  - Add(f(x), g(x)), f and g two such chains (or the identity) from one tensor x — a residual before the
//    pool: the maps add.
// Each absorbed value must be read only by the absorbed ops. Refused, with the reason:
//  - Conv k×k, k > 1: GAP(conv(x)) = Σ_taps W_tap · (mean of x over the window shifted by the tap). With zero
//    padding each shifted window drops border strips of x (and without padding the windows are crops), so
//    the sum depends on those strips, not on GAP(x) alone: no dense layer after the pool reproduces it.
//  - Conv with stride > 1: it keeps every s-th position, and their mean is not GAP(x).
//  - Mul/Div by a constant that varies over positions: GAP(m ⊙ x) weights positions unequally.
import { product } from '../import/shape-math.js';
import { type Graph, type Node, attrInt } from '../import/ir.js';
import { constFloats, numericDims } from './graph-utils.js';
import { insertBefore, int, isGraphOutput, makeNode, removeNodes } from '../import/ir-edit.js';
import { readConv, readDense } from './layers.js';
import { readBN } from './fold-batchnorm.js';
import { emitDense, type DensePlan } from './merge-matmul.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';

/** The dense layer after the pool seen from value `value`: y = GAP(value)·A + b + (the layer's own bias). */
interface Reach {
  value: string;
  /** channels of `value` */
  C: number;
  /** [C, N] row-major */
  A: Float64Array;
  /** [N]: bias gathered from the absorbed ops */
  b: Float64Array;
  /** the absorbed nodes, the pool included */
  nodes: Set<Node>;
  ops: string[];
}

interface Step {
  input: string;
  C: number;
  A: Float64Array;
  b: Float64Array;
  op: string;
}

/** How the pool sees one op: a step back, a reason it is linear but cannot pass (string), or not linear (undefined). */
function stepThrough(g: Graph, ctx: PassContext, p: Node, r: Reach, N: number, producers: Map<string, Node>, consumers: Map<string, Node[]>): Step | string | undefined {
  if (p.domain && p.domain !== 'ai.onnx') return undefined;
  const C = r.C;
  const b = r.b.slice();
  /** b += k·A for a per-channel k */
  const addBias = (k: ArrayLike<number>, sign = 1) => {
    for (let c = 0; c < C; c++) for (let n = 0; n < N; n++) b[n] += sign * k[c] * r.A[c * N + n];
  };
  const scaleRows = (k: (c: number) => number) => r.A.map((v, i) => v * k(Math.floor(i / N)));
  switch (p.opType) {
    case 'Conv': {
      const l = readConv(g, p, ctx, false, producers, consumers);
      if (typeof l === 'string') return `Conv ${nm(p)}: ${l}`;
      if (l.cout !== C) return `Conv ${nm(p)}: ${l.cout} output channels, the pool sees ${C}`;
      const padded = l.pads.some((v) => v !== 0);
      if (l.kernel.some((k) => k !== 1))
        return `Conv ${nm(p)} ${l.kernel.join('×')}${padded ? ` with zero padding [${l.pads}]` : ' without padding'}: GAP(conv(x)) = Σ_taps W_tap · (mean of x over the window shifted by the tap)` +
          `, and each shifted window ${padded ? 'drops' : 'crops'} border strips of x, so it is not a function of GAP(x): no dense layer after the pool reproduces it`;
      if (l.strides.some((s) => s !== 1)) return `Conv ${nm(p)} 1×1 with stride ${l.strides.join('×')}: it keeps every ${l.strides.join('×')}-th position, and their mean is not GAP(x)`;
      let f = 1;
      if (padded) {
        if (!l.inSpatial || !l.outSpatial) return `Conv ${nm(p)} 1×1 zero-pads and its static shapes are unknown (the pool's mean needs them)`;
        f = product(l.inSpatial) / product(l.outSpatial);
      }
      const cinG = l.cin / l.group, coutG = l.cout / l.group;
      const A = new Float64Array(l.cin * N);
      for (let o = 0; o < l.cout; o++) {
        const grp = Math.floor(o / coutG);
        for (let ci = 0; ci < cinG; ci++) {
          const w = l.W[o * cinG + ci] * f;
          if (w === 0) continue;
          const row = (grp * cinG + ci) * N;
          for (let n = 0; n < N; n++) A[row + n] += w * r.A[o * N + n];
        }
      }
      addBias(l.bias);
      return { input: l.input, C: l.cin, A, b, op: `Conv 1×1 ${nm(p)}${padded ? ' (zero-padded)' : ''}` };
    }
    case 'BatchNormalization': {
      const bn = readBN(g, p, ctx.opset, producers, consumers);
      if (typeof bn === 'string') return `BatchNormalization ${nm(p)}: ${bn}`;
      if (bn.C !== C) return `BatchNormalization ${nm(p)}: ${bn.C} channels, the pool sees ${C}`;
      addBias(bn.c);
      return { input: p.inputs[0], C, A: scaleRows((c) => bn.a[c]), b, op: `BatchNormalization ${nm(p)}` };
    }
    case 'Add': case 'Sub': case 'Mul': case 'Div': {
      if (p.inputs.length !== 2) return undefined;
      const k0 = constFloats(g, p.inputs[0], producers), k1 = constFloats(g, p.inputs[1], producers);
      if (!k0 === !k1) return undefined; // two variables (a residual Add is handled by the walk) or two constants
      const side = k1 ? 0 : 1; // the variable input
      const k = (k1 ?? k0)!;
      const u = p.inputs[side];
      if (p.opType === 'Div' && side === 1) return undefined; // K / x is not linear
      const su = ctx.shapeOf(u), sv = ctx.shapeOf(p.outputs[0]);
      if (!su || !sv || su.join() !== sv.join()) return `${p.opType} ${nm(p)}: its constant broadcasts the tensor to another shape, or the shapes are unknown`;
      const spatial = numericDims(su.slice(2));
      if (su[1] !== C || !spatial) return `${p.opType} ${nm(p)}: static shape [${su}] unknown or not [N, ${C}, …]`;
      const rank = su.length;
      if (k.dims.length > rank) return `${p.opType} ${nm(p)}: constant of higher rank`;
      const full = [...Array(rank - k.dims.length).fill(1), ...k.dims];
      if (full[0] !== 1) return `${p.opType} ${nm(p)}: the constant varies with the example`;
      if (full[1] !== 1 && full[1] !== C) return `${p.opType} ${nm(p)}: constant of shape [${k.dims}] not per channel`;
      const perPos = product(full.slice(2));
      const perChannel = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        const base = (full[1] === 1 ? 0 : c) * perPos;
        let s = 0;
        for (let i = 0; i < perPos; i++) s += k.data[base + i];
        perChannel[c] = s / perPos;
      }
      if (p.opType === 'Mul' || p.opType === 'Div') {
        if (perPos !== 1) return `${p.opType} ${nm(p)} by a constant of shape [${k.dims}] that varies over positions: GAP(m ⊙ x) weights positions unequally, it is not a function of GAP(x)`;
        const A = scaleRows((c) => (p.opType === 'Mul' ? perChannel[c] : 1 / perChannel[c]));
        return { input: u, C, A, b, op: `${p.opType} ${nm(p)}` };
      }
      // GAP(x + m) = GAP(x) + spatial mean of m; Sub(m, x) also negates x
      const negX = p.opType === 'Sub' && side === 1;
      addBias(perChannel, p.opType === 'Sub' && side === 0 ? -1 : 1);
      return { input: u, C, A: negX ? r.A.map((v) => -v) : r.A, b, op: `${p.opType} ${nm(p)}${perPos > 1 ? ' (constant map: its spatial mean)' : ''}` };
    }
    default:
      return undefined;
  }
}

export const foldThroughPoolPass: FoldPass = {
  name: 'fold-through-pool',
  kind: 'merge',
  candidates(g: Graph, ctx: PassContext): Candidate[] {
    const out: Candidate[] = [];
    const producers = g.producers();
    const consumers = g.consumers();
    for (const pool of g.nodes) {
      if (pool.opType !== 'GlobalAveragePool' || (pool.domain && pool.domain !== 'ai.onnx')) continue;
      // GAP → Flatten(axis 1) | Reshape | Squeeze to [N, C] → Gemm/MatMul, each read once
      const P = pool.outputs[0];
      const r1 = consumers.get(P) ?? [];
      if (r1.length !== 1 || isGraphOutput(g, P)) continue;
      const flat = r1[0];
      if (!['Flatten', 'Reshape', 'Squeeze'].includes(flat.opType) || flat.inputs[0] !== P) continue;
      if (flat.opType === 'Flatten' && attrInt(flat, 'axis', 1) !== 1) continue;
      const F = flat.outputs[0];
      const r2 = consumers.get(F) ?? [];
      if (r2.length !== 1 || isGraphOutput(g, F)) continue;
      const dn = r2[0];
      if (dn.opType !== 'Gemm' && dn.opType !== 'MatMul') continue;
      const L = readDense(g, dn, true, producers, consumers);
      // (a bias of rank > 2 broadcasts the output up: the merged Gemm would not)
      if (typeof L === 'string' || L.input !== F || L.transA || L.biasRank > 2) continue;
      const xs = ctx.shapeOf(pool.inputs[0]), fs = ctx.shapeOf(F);
      if (!xs || xs.length < 3 || xs[1] !== L.K || !fs || fs.length !== 2 || fs[0] !== xs[0] || fs[1] !== L.K) continue;
      const N = L.N;

      type Walk = { reaches: Reach[]; stop?: string; stopAt?: Node };
      const walk = (r: Reach): Walk => {
        const v = r.value;
        const p = producers.get(v);
        if (!p || isGraphOutput(g, v) || (consumers.get(v) ?? []).some((n) => !r.nodes.has(n))) return { reaches: [r] };
        const nodes = new Set(r.nodes).add(p);
        if (p.opType === 'Add' && p.inputs.length === 2 && (!p.domain || p.domain === 'ai.onnx') && !constFloats(g, p.inputs[0], producers) && !constFloats(g, p.inputs[1], producers)) {
          // a residual: both branches walked back from the Add with the same A, until they meet
          const branch = (u: string) => walk({ value: u, C: r.C, A: r.A, b: new Float64Array(N), nodes, ops: [] });
          const [wu, ww] = [branch(p.inputs[0]), branch(p.inputs[1])];
          const meet = wu.reaches.find((a) => ww.reaches.some((q) => q.value === a.value));
          if (!meet) {
            const why = (w: typeof wu) => w.stop ?? `stops at ${w.reaches[w.reaches.length - 1].value}`;
            return { reaches: [r], stop: `residual Add ${nm(p)}: its branches are not pointwise linear maps of one tensor (${why(wu)}; ${why(ww)})` };
          }
          const other = ww.reaches.find((q) => q.value === meet.value)!;
          const rest: Walk = walk({
            value: meet.value, C: meet.C,
            A: meet.A.map((a, i) => a + other.A[i]),
            b: r.b.map((v0, n) => v0 + meet.b[n] + other.b[n]),
            nodes: new Set([...meet.nodes, ...other.nodes]),
            ops: [...r.ops, `residual Add ${nm(p)} of (${meet.ops.join(', ') || 'identity'}) and (${other.ops.join(', ') || 'identity'})`],
          });
          return { ...rest, reaches: [r, ...rest.reaches] };
        }
        const s = stepThrough(g, ctx, p, r, N, producers, consumers);
        if (s === undefined) return { reaches: [r] };
        if (typeof s === 'string') return { reaches: [r], stop: s, stopAt: p };
        const rest = walk({ value: s.input, C: s.C, A: s.A, b: s.b, nodes, ops: [...r.ops, s.op] });
        return { ...rest, reaches: [r, ...rest.reaches] };
      };

      const w = walk({ value: pool.inputs[0], C: L.K, A: L.A, b: new Float64Array(N), nodes: new Set([pool]), ops: [] });
      const what = `GlobalAveragePool ${nm(pool)} → ${dn.opType} ${nm(dn)}`;
      if (w.reaches.length === 1) {
        if (w.stop) out.push({ what, nodes: [nm(pool), nm(dn)], refused: w.stop });
        continue;
      }
      // Where to cut. Everything walked can go behind the pool, but when the walk ends at a conv that cannot
      // pass (k×k, strided), merge-conv will merge the pointwise convs left before the pool into it, and that
      // conv then outputs as many channels as the pool sees: cut where the fewest channels flow (the deepest
      // such point on a tie). E.g. fixtures/mobilenetv2_small linearized, last block dw3×3 (96) → project 1×1
      // (32) → head 1×1 (64) → pool: moving the head conv alone leaves expand∘dw∘project → one 3×3 conv 24→32
      // (5.46 M MACs in all); moving both would leave a 3×3 conv 24→96 (6.34 M). Otherwise (the walk ends at a
      // nonlinearity, a value read elsewhere, an input) the deepest.
      const mergeable = w.stopAt?.opType === 'Conv' && typeof readConv(g, w.stopAt, ctx, false, producers, consumers) !== 'string';
      const pick = mergeable
        ? w.reaches.reduce((a, r) => (r.C <= a.C ? r : a))
        : w.reaches[w.reaches.length - 1];
      if (pick === w.reaches[0]) continue;
      const best = pick;
      const absorbed = [...best.nodes].filter((n) => n !== pool);
      const rows = L.biasRows;
      const hasBias = L.hasBias || best.b.some((v) => v !== 0);
      const plan: DensePlan = {
        A: best.A, K: best.C, N, transA: false, gemm: true,
        bias: hasBias ? L.bias.map((v, i) => v + best.b[i % N]) : undefined,
        biasDims: hasBias ? (rows > 1 ? [rows, N] : [N]) : undefined,
      };
      out.push({
        what: `${what}: ${best.ops.join(', ')} moved behind the pool → ${hasBias ? 'Gemm' : 'MatMul'} ${best.C}×${N} (was ${L.K}×${N})`,
        nodes: [nm(pool), nm(flat), nm(dn), ...absorbed.map(nm)],
        apply: () => {
          const batch = xs[0];
          const outShape = ctx.shapeOf(L.output);
          const gp = makeNode(g, 'GlobalAveragePool', [best.value], [g.uniqueName(`${best.value}_pooled`)], {}, `${pool.name || 'pool'}_folded`);
          const fl = makeNode(g, 'Flatten', [gp.outputs[0]], [g.uniqueName(`${best.value}_pooled_flat`)], { axis: int(1) }, `${flat.name || 'flatten'}_folded`);
          insertBefore(g, dn, gp, fl);
          const dense = emitDense(g, fl.outputs[0], L.output, plan, [L.core, ...(L.add ? [L.add] : [])], `${dn.name || 'dense'}_pooled`);
          removeNodes(g, pool, flat, ...absorbed);
          ctx.setShape(gp.outputs[0], [batch, best.C, ...xs.slice(2).map(() => 1)]);
          ctx.setShape(fl.outputs[0], [batch, best.C]);
          if (outShape) for (const n of dense) ctx.setShape(n.outputs[0], outShape);
        },
      });
    }
    return out;
  },
};

export function foldThroughPool(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(foldThroughPoolPass, g, ctx);
}
