// split-partial: a partially linear activation between two dense layers,
//   z = act(x·A1 + b1)·A2 + b2, linear (the identity) on the channels L and not on the channels N,
// splits into a nonlinear core on N and a linear bypass:
//   z = act(x·A1[:,N] + b1[N])·A2[N,:]  +  x·(A1[:,L]·A2[L,:]) + (b1[L]·A2[L,:] + b2).
// The activation is a PRelu (slope 1 = linear), or linfold's blend y = σ(h) + A ⊙ (h − σ(h)) around any
// elementwise σ (GELU as the Erf chain or the tanh approximation, SiLU, …; A = 1 = linear): its nodes stay,
// read the narrowed h, and their per-channel constants (slopes, A) keep the channels N. A transformer FFN
// d→4d→d whose GELU training left partly linear becomes a narrower FFN plus one d×d bypass.
// Proposed only when it lowers MACs per row: K·|N| + |N|·N2 + K·N2 < K·N1 + N1·N2. Under the latency
// objective the pipeline then times the split model against the current one and keeps it only when faster
// (the candidate is speed-judged: more nodes for fewer MACs is not always a gain at batch 1).
import type { Graph, Node } from '../import/ir.js';
import { allOne, blendsFrom, constFloats, constValue, matmul } from './graph-utils.js';
import { addInit, isGraphOutput, makeNode, removeNodes, soleReader } from '../import/ir-edit.js';
import { readDense, type DenseLayer } from './layers.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';

/** Elementwise ops an activation region may hold (their other operands constant scalars or per-channel vectors). */
const ELEMENTWISE = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Erf', 'Tanh', 'Sigmoid', 'Exp', 'Log', 'Sqrt', 'Neg', 'Abs', 'Relu', 'LeakyRelu',
  'PRelu', 'Elu', 'Selu', 'Softplus', 'Clip', 'HardSigmoid', 'HardSwish', 'Gelu', 'Max', 'Min', 'Identity',
]);

/** The activation between fc1's output h and fc2's input y: its nodes and its per-channel linear coefficients. */
interface Activation {
  /** the node that makes it linearizable (the PRelu, or the blend's Add) */
  head: Node;
  /** every node on a path from h to y */
  nodes: Node[];
  h: string;
  y: string;
  /** 1 = the identity on that channel (PRelu slope, blend A): one value per channel on the last axis, or one for all */
  coef: Float64Array;
  coefDims: number[];
}

/** The activations of the graph that could split: PRelus, and blends around an elementwise activation. */
function activations(g: Graph, producers: Map<string, Node>, consumers: Map<string, Node[]>): (Activation | { head: Node; h: string; y: string; refused: string })[] {
  const out: (Activation | { head: Node; h: string; y: string; refused: string })[] = [];
  for (const n of g.nodes) {
    if (n.opType === 'PRelu' && (!n.domain || n.domain === 'ai.onnx')) {
      const slope = constFloats(g, n.inputs[1], producers);
      if (slope) out.push({ head: n, nodes: [n], h: n.inputs[0], y: n.outputs[0], coef: slope.data, coefDims: slope.dims });
    } else if (n.opType === 'Sub') {
      for (const b of blendsFrom(g, n, producers, consumers)) {
        const nodes = regionBetween(g, b.x, b.add.outputs[0], producers);
        if (typeof nodes === 'string') out.push({ head: b.add, h: b.x, y: b.add.outputs[0], refused: nodes });
        else out.push({ head: b.add, nodes, h: b.x, y: b.add.outputs[0], coef: b.A.data, coefDims: b.A.dims });
      }
    }
  }
  return out;
}

/** The nodes on paths from h to y, when they form an elementwise island (read nothing else but constants, read by nothing else). */
function regionBetween(g: Graph, h: string, y: string, producers: Map<string, Node>): Node[] | string {
  const nodes = new Set<Node>();
  const stack = [y];
  const seen = new Set<string>();
  while (stack.length) {
    const v = stack.pop()!;
    if (v === h || seen.has(v)) continue;
    seen.add(v);
    const p = producers.get(v);
    if (!p) return `'${v}' is a graph input`;
    if (!ELEMENTWISE.has(p.opType) || (p.domain && p.domain !== 'ai.onnx')) return `${p.opType} ${nm(p)} is not elementwise`;
    nodes.add(p);
    for (const i of p.inputs) if (i && !constValue(g, i, producers)) stack.push(i);
  }
  return g.nodes.filter((n) => nodes.has(n));
}

export const splitPartialPass: FoldPass = {
  name: 'split-partial',
  kind: 'merge',
  candidates(g: Graph, ctx: PassContext): Candidate[] {
    const out: Candidate[] = [];
    const producers = g.producers();
    const consumers = g.consumers();
    for (const act of activations(g, producers, consumers)) {
      const { h, y } = act;
      const src = producers.get(h);
      const n1 = src && (src.opType === 'Gemm' || src.opType === 'MatMul') ? src
        : src?.opType === 'Add' ? [producers.get(src.inputs[0]), producers.get(src.inputs[1])].find((p) => p && (p.opType === 'Gemm' || p.opType === 'MatMul')) : undefined;
      const rd = consumers.get(y) ?? [];
      const n2 = rd.length === 1 && (rd[0].opType === 'Gemm' || rd[0].opType === 'MatMul') && rd[0].inputs[0] === y ? rd[0] : undefined;
      if (!n1 || !n2) continue;
      const L1 = readDense(g, n1, true, producers, consumers);
      const L2 = readDense(g, n2, true, producers, consumers);
      if (typeof L1 === 'string' || typeof L2 === 'string' || L1.output !== h) continue;
      const what = `partially linear ${act.head.opType === 'PRelu' ? 'PRelu' : 'blend'} ${nm(act.head)} between ${nm(n1)} and ${nm(n2)}`;
      const key = [nm(n1), nm(act.head), nm(n2)];
      if (!('coef' in act)) {
        out.push({ what, nodes: key, refused: act.refused });
        continue;
      }
      const N1 = L1.N;
      // coefficients per channel on the last axis
      const perChannel = (dims: number[], size: number) => size === 1 || (size === N1 && dims.slice(0, -1).every((d) => d === 1));
      if (!perChannel(act.coefDims, act.coef.length)) {
        out.push({ what, nodes: key, refused: `coefficients of shape [${act.coefDims}] are not per channel on the last axis` });
        continue;
      }
      const sl = (c: number) => act.coef[act.coef.length === 1 ? 0 : c];
      const lin: number[] = [], non: number[] = [];
      for (let c = 0; c < N1; c++) (allOne([sl(c)], ctx.eps) ? lin : non).push(c);
      if (!lin.length || !non.length) continue; // fully nonlinear: nothing to split; fully linear: remove-identity
      const inside = new Set(act.nodes);
      const onlyInside = (v: string) => !isGraphOutput(g, v) && (consumers.get(v) ?? []).every((r) => inside.has(r));
      const badConst = act.nodes.flatMap((n) => n.inputs).find((i) => {
        const c = i && constValue(g, i, producers);
        return c && !(c.dtype === 'float32' ? perChannel(c.dims, c.size) : c.size === 1);
      });
      if (!soleReader(g, L1.output, act.nodes[0], consumers) && !onlyInside(L1.output) || act.nodes.some((n) => n.outputs.some((o) => o !== y && !onlyInside(o)))
        || !soleReader(g, y, n2, consumers) || L2.transA || L2.K !== N1) {
        out.push({ what, nodes: key, refused: 'layers have other readers or do not chain' });
        continue;
      }
      if (badConst) {
        out.push({ what, nodes: key, refused: `constant '${badConst}' in the activation is not per channel on the last axis` });
        continue;
      }
      const K = L1.K, N2 = L2.N;
      const before = K * N1 + N1 * N2, after = K * non.length + non.length * N2 + K * N2;
      if (after >= before) {
        out.push({ what, nodes: key, refused: `splitting would not lower MACs (${before} → ${after} per row; ${lin.length} of ${N1} channels linear)` });
        continue;
      }
      out.push({
        what: `${what}: ${lin.length} of ${N1} channels linear → bypass ${K}×${N2}, core width ${non.length}`,
        nodes: key,
        macsDelta: after - before,
        // under latency the pipeline times the split model against the current one (see the header)
        ...(ctx.objective === 'latency' ? { speedOnly: true } : {}),
        apply: () => applySplit(g, ctx, L1, act, L2, lin, non),
      });
    }
    return out;
  },
};

function applySplit(g: Graph, ctx: PassContext, L1: DenseLayer, act: Activation, L2: DenseLayer, lin: number[], non: number[]): void {
  const K = L1.K, N1 = L1.N, N2 = L2.N;
  const cols = (A: Float64Array, rows: number, n: number, keep: number[]) => {
    const o = new Float64Array(rows * keep.length);
    for (let i = 0; i < rows; i++) keep.forEach((c, j) => (o[i * keep.length + j] = A[i * n + c]));
    return o;
  };
  const rowsOf = (A: Float64Array, n: number, keep: number[]) => {
    const o = new Float64Array(keep.length * n);
    keep.forEach((r, i) => o.set(A.subarray(r * n, (r + 1) * n), i * n));
    return o;
  };
  const A1N = cols(L1.A, K, N1, non), A1L = cols(L1.A, K, N1, lin);
  const b1N = cols(L1.bias, L1.biasRows, N1, non), b1L = cols(L1.bias, L1.biasRows, N1, lin);
  const A2N = rowsOf(L2.A, N2, non), A2L = rowsOf(L2.A, N2, lin);
  const AL = matmul(A1L, A2L, K, lin.length, N2);
  const bL0 = matmul(b1L, A2L, L1.biasRows, lin.length, N2);
  const rows = Math.max(L1.biasRows, L2.biasRows);
  const bL = new Float64Array(rows * N2);
  for (let i = 0; i < rows; i++) for (let j = 0; j < N2; j++) bL[i * N2 + j] = bL0[(L1.biasRows === 1 ? 0 : i) * N2 + j] + L2.bias[(L2.biasRows === 1 ? 0 : i) * N2 + j];
  const base = `${act.head.name || 'act'}_split`;
  const x = L1.input, z = L2.output;
  const gemm = L1.kind === 'Gemm' && !L1.transA && L1.biasRank <= 2 && L2.biasRank <= 2;
  // the activation's values get new names (they narrow to the channels N); its per-channel constants narrow
  const renamed = new Map<string, string>();
  const narrowed = new Map<string, string>();
  const producers = g.producers();
  for (const n of act.nodes) for (const o of n.outputs) if (o) renamed.set(o, g.uniqueName(`${o}_core`));
  renamed.set(act.h, g.uniqueName(`${base}_h`));
  for (const n of act.nodes) {
    n.inputs = n.inputs.map((i) => {
      if (renamed.has(i)) return renamed.get(i)!;
      const c = i ? constFloats(g, i, producers) : undefined;
      if (!c || c.data.length === 1) return i;
      if (!narrowed.has(i)) narrowed.set(i, addInit(g, `${i}_core`, [...c.dims.slice(0, -1), non.length], cols(c.data, 1, N1, non)));
      return narrowed.get(i)!;
    });
    n.outputs = n.outputs.map((o) => renamed.get(o) ?? o);
  }
  for (const [old, fresh] of renamed) {
    g.valueInfo.delete(old);
    const s = ctx.shapeOf(old);
    if (s) ctx.setShape(fresh, [...s.slice(0, -1), non.length]);
  }
  const hN = renamed.get(act.h)!, yN = renamed.get(act.y)!;
  const zn = g.uniqueName(`${base}_core`), zl = g.uniqueName(`${base}_bypass`);
  const bDims = (n: number, r: number, rank: number) => (r > 1 ? [r, n] : [...Array(Math.max(rank, 1) - 1).fill(1), n]);
  // core fc1: x·A1N + b1N (the activation then reads it)
  const fc1: Node[] = [];
  if (gemm) fc1.push(makeNode(g, 'Gemm', [x, addInit(g, `${base}_W1`, [K, non.length], A1N), addInit(g, `${base}_B1`, bDims(non.length, L1.biasRows, 1), b1N)], [hN], {}, `${base}_fc1`));
  else {
    const t = g.uniqueName(`${base}_h0`);
    fc1.push(makeNode(g, 'MatMul', [x, addInit(g, `${base}_W1`, [K, non.length], A1N)], [t], {}, `${base}_fc1`));
    fc1.push(makeNode(g, 'Add', [t, addInit(g, `${base}_B1`, bDims(non.length, L1.biasRows, L1.biasRank), b1N)], [hN], {}, `${base}_fc1_bias`));
  }
  // bypass x·AL + bL, core fc2, and their sum
  const fc2: Node[] = [];
  if (gemm) {
    // (the bypass could be fc2's C input, saving the Add, but that would put it in series with fc2)
    fc2.push(makeNode(g, 'Gemm', [x, addInit(g, `${base}_WL`, [K, N2], AL), addInit(g, `${base}_BL`, bDims(N2, rows, 1), bL)], [zl], {}, `${base}_bypass`));
  } else {
    const t = g.uniqueName(`${base}_bypass0`);
    fc2.push(makeNode(g, 'MatMul', [x, addInit(g, `${base}_WL`, [K, N2], AL)], [t], {}, `${base}_bypass`));
    fc2.push(makeNode(g, 'Add', [t, addInit(g, `${base}_BL`, bDims(N2, rows, Math.max(L1.biasRank, L2.biasRank)), bL)], [zl], {}, `${base}_bypass_bias`));
  }
  fc2.push(makeNode(g, 'MatMul', [yN, addInit(g, `${base}_W2`, [non.length, N2], A2N)], [zn], {}, `${base}_fc2`));
  fc2.push(makeNode(g, 'Add', [zn, zl], [z], {}, `${base}_sum`));
  g.nodes.splice(g.nodes.indexOf(L1.core), 0, ...fc1);
  g.nodes.splice(g.nodes.indexOf(L2.add ?? L2.core) + 1, 0, ...fc2);
  removeNodes(g, L1.core, L1.add, L2.core, L2.add);
  const s = ctx.shapeOf(z);
  if (s) ctx.setShape(z, s);
}

export function splitPartial(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(splitPartialPass, g, ctx);
}
