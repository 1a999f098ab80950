// merge-conv: Conv B ∘ Conv A → one Conv, when A's output feeds only B.
//
// Geometry, per spatial axis (A: kernel k1, stride s1, dilation d1, pads p1; B: k2, s2, d2, p2): B's tap j
// reads A's output at o·s2 + j·d2 − p2b, which reads x at (o·s2 + j·d2 − p2b)·s1 + l·d1 − p1b. So the merged
// conv has stride s1·s2, taps at j·d2·s1 + l·d1 (dilation g = gcd(d1, d2·s1), kernel ((k1−1)d1 + (k2−1)d2·s1)/g + 1)
// and begin pad p1b + p2b·s1. Weights: K[o,i,m] = Σ_c Σ_{(j,l)→m} B[o,c,j]·A[c,i,l].
// Groups: A and B with the same group count (depthwise∘depthwise) keep it; any other pairing is dense.
//
// Borders. When B does not pad, B reads only real outputs of A and the merged conv with A's pads is exact.
// When B zero-pads, the original sees zeros on that ring, but the merged conv sees A evaluated there. That
// is exactly expressible only when A, on the ring, reads nothing but padding (then it gives just A's bias,
// which we compensate): i.e. k1-side reach −s1 + (k1−1)·d1 − p1b < 0 at the start and N1·s1 − p1b ≥ X at the
// end (true for a pointwise A without padding, false for 3×3∘3×3 with "same" padding). Then every bias
// (A's bias or bias map, pushed through B with B's own padding, plus B's bias) is computed exactly as a
// constant map [Cout, ...outSpatial] — a per-channel bias when it does not vary over positions, else a
// constant Add after the merged conv. Otherwise the pair is refused, with the reason — unless the pass
// context asks for `borders: 'approximate'`: then the pair merges as in its pad-front form (padFrontLayers:
// merged padding p1 + p2·s1, bias Σ_taps B·b1 + b2), which differs from the original on B's outer output
// ring only, and the candidate is marked `approximate` (the pipeline measures its error instead of holding
// it to the tolerance).
import type { Graph, Node } from '../import/ir.js';
import { gcd } from './graph-utils.js';
import { addInit, ints, int, makeNode, removeNodes, soleReader } from '../import/ir-edit.js';
import { readConv, convMap, expandBias, mapToBias, enumerate, type ConvLayer } from './layers.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';
import { product, convOutSize, rowMajorStrides } from '../import/shape-math.js';

export interface ConvMergePlan {
  W: Float64Array;
  wDims: number[];
  group: number;
  strides: number[];
  dilations: number[];
  pads: number[];
  kernel: number[];
  /** per-channel bias (undefined when a map is needed) */
  bias?: Float64Array;
  /** bias map [Cout, ...outSpatial] */
  map?: Float64Array;
  outSpatial?: number[];
}

/**
 * Plans B∘A; a string is the reason it cannot be done exactly. With `full` false only the geometry is
 * checked and planned (weights and biases are left empty): candidates are listed cheaply, and the weights
 * are computed when a candidate is applied.
 */
export function planConvMerge(A: ConvLayer, B: ConvLayer, full = true): ConvMergePlan | string {
  const r = A.kernel.length;
  if (B.kernel.length !== r) return 'different spatial ranks';
  if (B.cin !== A.cout) return `channel counts differ (${A.cout} → ${B.cin})`;
  const strides: number[] = [], dilations: number[] = [], kernel: number[] = [], pb: number[] = [], pe: number[] = [];
  const pads2 = B.pads.some((p) => p !== 0);
  if (pads2 && !A.inSpatial) return `${nm(B.conv)} zero-pads its input and the static input shape is unknown`;
  for (let a = 0; a < r; a++) {
    const [k1, s1, d1] = [A.kernel[a], A.strides[a], A.dilations[a]];
    const [k2, s2, d2] = [B.kernel[a], B.strides[a], B.dilations[a]];
    const g = gcd(d1, d2 * s1);
    const ext = (k1 - 1) * d1 + (k2 - 1) * d2 * s1 + 1;
    strides.push(s1 * s2);
    dilations.push(g);
    kernel.push((ext - 1) / g + 1);
    const [p1b, p1e, p2b, p2e] = [A.pads[a], A.pads[a + r], B.pads[a], B.pads[a + r]];
    if (p2b === 0 && p2e === 0) {
      pb.push(p1b);
      pe.push(p1e);
      continue;
    }
    const X = A.inSpatial![a], N1 = A.outSpatial![a], N2 = B.outSpatial![a];
    if (p2b > 0 && -s1 + (k1 - 1) * d1 - p1b >= 0)
      return `${nm(B.conv)} zero-pads its input (pad ${p2b}) and ${nm(A.conv)}, evaluated on that padding ring, reads real input pixels (reach ${(k1 - 1) * d1} ≥ stride ${s1} + pad ${p1b}): no single conv reproduces the border`;
    // B's end padding may go unread (its last window ends inside A's output): then it does not matter
    const endUsed = (N2 - 1) * s2 + (k2 - 1) * d2 - p2b - (N1 - 1) > 0;
    if (p2e > 0 && endUsed && N1 * s1 - p1b < X)
      return `${nm(B.conv)} zero-pads its input (end pad ${p2e}) and ${nm(A.conv)}, evaluated one step past its last output, reads input pixel ${N1 * s1 - p1b} < ${X}: no single conv reproduces the border`;
    const Pb = p1b + p2b * s1;
    const Pe = (N2 - 1) * s1 * s2 + ext - X - Pb;
    if (Pe < 0 || convOutSize(X, kernel[a], strides[a], g, Pb, Pe) !== N2) return 'merged padding would have to crop the input';
    pb.push(Pb);
    pe.push(Pe);
  }
  const staticShapes = !!(A.inSpatial && A.outSpatial && B.outSpatial);
  if (!staticShapes && (A.map || B.map || pads2)) return 'bias maps need static shapes';
  const sameGroups = A.group === B.group;
  const group = sameGroups ? A.group : 1;
  const cinM = A.cin / group; // input channels per group of the merged conv
  const kM = product(kernel);
  if (!full) return { W: new Float64Array(0), wDims: [B.cout, cinM, ...kernel], group, strides, dilations, kernel, pads: [...pb, ...pe], outSpatial: B.outSpatial };
  // weights
  const W = new Float64Array(B.cout * cinM * kM);
  const k1Pos = enumerate(A.kernel), k2Pos = enumerate(B.kernel);
  const kStr = rowMajorStrides(kernel);
  // merged tap of (j, l)
  const tap = k2Pos.map((j) => k1Pos.map((l) => {
    let m = 0;
    for (let a = 0; a < r; a++) m += ((j[a] * B.dilations[a] * A.strides[a] + l[a] * A.dilations[a]) / dilations[a]) * kStr[a];
    return m;
  }));
  const cinA = A.cin / A.group, coutA = A.cout / A.group, cinB = B.cin / B.group, coutB = B.cout / B.group;
  const k1n = k1Pos.length, k2n = k2Pos.length;
  for (let o = 0; o < B.cout; o++) {
    const gB = Math.floor(o / coutB);
    for (let cl = 0; cl < cinB; cl++) {
      const c = gB * cinB + cl;
      const gA = Math.floor(c / coutA);
      for (let il = 0; il < cinA; il++) {
        const i = gA * cinA + il;
        const iM = sameGroups ? i - Math.floor(o / (B.cout / group)) * cinM : i;
        const outBase = (o * cinM + iM) * kM;
        const aBase = (c * cinA + il) * k1n;
        const bBase = (o * cinB + cl) * k2n;
        for (let j = 0; j < k2n; j++) {
          const wb = B.W[bBase + j];
          if (wb === 0) continue;
          const tj = tap[j];
          for (let l = 0; l < k1n; l++) W[outBase + tj[l]] += wb * A.W[aBase + l];
        }
      }
    }
  }
  const plan: ConvMergePlan = { W, wDims: [B.cout, cinM, ...kernel], group, strides, dilations, kernel, pads: [...pb, ...pe], outSpatial: B.outSpatial };
  // biases
  if (staticShapes) {
    const beta1 = A.map ?? expandBias(A.bias, A.outSpatial!);
    const m = convMap(beta1, A.outSpatial!, B);
    const own = B.map ?? expandBias(B.bias, B.outSpatial!);
    for (let k = 0; k < m.data.length; k++) m.data[k] += own[k];
    const b = mapToBias(m.data, B.cout);
    if (b) plan.bias = b;
    else plan.map = m.data;
  } else {
    const b = B.bias.slice();
    const k2n2 = product(B.kernel);
    for (let o = 0; o < B.cout; o++) {
      const gB = Math.floor(o / coutB);
      for (let cl = 0; cl < cinB; cl++) {
        let s = 0;
        for (let j = 0; j < k2n2; j++) s += B.W[(o * cinB + cl) * k2n2 + j];
        b[o] += s * A.bias[gB * cinB + cl];
      }
    }
    plan.bias = b;
  }
  return plan;
}

/** A and B in the pad-front form (A padded p1 + p2·s1 per side, B unpadded; see pad-front.ts), or why not. */
export function padFrontLayers(A: ConvLayer, B: ConvLayer): [ConvLayer, ConvLayer] | string {
  const r = A.kernel.length;
  if (B.kernel.length !== r) return 'different spatial ranks';
  if (A.map) return `${nm(A.conv)} has a position-dependent bias map`;
  const pads = A.pads.map((p, k) => p + B.pads[k] * A.strides[k % r]);
  const outSpatial = A.inSpatial?.map((x, a) => convOutSize(x, A.kernel[a], A.strides[a], A.dilations[a], pads[a], pads[a + r]));
  return [{ ...A, pads, outSpatial }, { ...B, pads: B.pads.map(() => 0), inSpatial: outSpatial }];
}

/** Replaces the layer nodes of A and B by the merged conv (and its bias-map Add). */
export function emitConv(g: Graph, input: string, output: string, plan: ConvMergePlan, replace: Node[], base: string): Node[] {
  const at = replace[replace.length - 1];
  const W = addInit(g, `${base}_W`, plan.wDims, plan.W);
  const hasBias = plan.bias && plan.bias.some((v) => v !== 0);
  const inputs = [input, W, ...(hasBias ? [addInit(g, `${base}_B`, [plan.bias!.length], plan.bias!)] : [])];
  const convOut = plan.map ? g.uniqueName(`${output}_nobias`) : output;
  const conv = makeNode(g, 'Conv', inputs, [convOut], {
    kernel_shape: ints(plan.kernel), strides: ints(plan.strides), pads: ints(plan.pads), dilations: ints(plan.dilations), group: int(plan.group),
  }, base);
  const nodes = [conv];
  if (plan.map) nodes.push(makeNode(g, 'Add', [convOut, addInit(g, `${base}_bias_map`, [plan.wDims[0], ...plan.outSpatial!], plan.map)], [output], {}, `${base}_bias_map_add`));
  const k = g.nodes.indexOf(at);
  removeNodes(g, ...replace);
  g.nodes.splice(Math.min(k, g.nodes.length), 0, ...nodes);
  return nodes;
}

export const mergeConvPass: FoldPass = {
  name: 'merge-conv',
  kind: 'merge',
  candidates(g: Graph, ctx: PassContext): Candidate[] {
    const out: Candidate[] = [];
    const producers = g.producers();
    const consumers = g.consumers();
    for (const nB of g.nodes) {
      if (nB.opType !== 'Conv') continue;
      const src = producers.get(nB.inputs[0]);
      // the producer of B's input is A's conv, or A's constant Add
      const nA = src?.opType === 'Conv' ? src : src?.opType === 'Add' ? [producers.get(src.inputs[0]), producers.get(src.inputs[1])].find((p) => p?.opType === 'Conv') : undefined;
      if (!nA) continue;
      const A = readConv(g, nA, ctx, true, producers, consumers);
      if (typeof A === 'string' || A.output !== nB.inputs[0]) continue;
      const key = [nm(nA), nm(nB)];
      const what = `Conv ${nm(nB)} ∘ Conv ${nm(nA)}`;
      if (!soleReader(g, A.output, nB, consumers)) {
        out.push({ what, nodes: key, refused: `${nm(nA)}'s output has other readers` });
        continue;
      }
      const B = readConv(g, nB, ctx, true, producers, consumers);
      if (typeof B === 'string') {
        out.push({ what, nodes: key, refused: B });
        continue;
      }
      let plan = planConvMerge(A, B, false);
      // borders 'approximate': a pair refused at the borders merges in its pad-front form (B reading A on the
      // ring instead of zeros), which differs from the original only on B's outer ring of outputs
      let layers: [ConvLayer, ConvLayer] = [A, B];
      const approximate = typeof plan === 'string' && ctx.borders === 'approximate' && B.pads.some((p) => p !== 0);
      if (approximate) {
        const pf = padFrontLayers(A, B);
        const p2 = typeof pf === 'string' ? pf : planConvMerge(pf[0], pf[1], false);
        if (typeof p2 === 'string') plan = `${plan}; approximate merge impossible too: ${p2}`;
        else [plan, layers] = [p2, pf as [ConvLayer, ConvLayer]];
      }
      if (typeof plan === 'string') {
        out.push({ what, nodes: key, refused: plan });
        continue;
      }
      const desc = `${what} → Conv ${plan.kernel.join('×')} stride ${plan.strides.join('×')}${plan.group > 1 ? ` group ${plan.group}` : ''}${approximate ? ' (approximate at the borders)' : ''}`;
      out.push({
        what: desc,
        nodes: key,
        ...(approximate ? { approximate: true } : {}),
        apply: () => {
          const s = ctx.shapeOf(B.output);
          const full = planConvMerge(...layers) as ConvMergePlan;
          const nodes = emitConv(g, A.input, B.output, full, [A.conv, ...(A.add ? [A.add] : []), B.conv, ...(B.add ? [B.add] : [])], `${nB.name || 'conv'}_merged`);
          if (s) for (const n of nodes) ctx.setShape(n.outputs[0], s);
        },
      });
    }
    return out;
  },
};

export function mergeConv(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(mergeConvPass, g, ctx);
}
