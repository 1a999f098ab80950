// split-partial: a partially linear PRelu between two dense layers,
//   z = act(x·A1 + b1)·A2 + b2, with slope 1 on the channels L and other slopes on N,
// splits into a nonlinear core on N and a linear bypass:
//   z = act(x·A1[:,N] + b1[N])·A2[N,:]  +  x·(A1[:,L]·A2[L,:]) + (b1[L]·A2[L,:] + b2).
// Taken only when it lowers MACs per row: K·|N| + |N|·N2 + K·N2 < K·N1 + N1·N2.
import type { Graph, Node } from '../import/ir.js';
import { allOne, constFloats, matmul } from './graph-utils.js';
import { addInit, makeNode, removeNodes, soleReader } from '../import/ir-edit.js';
import { readDense, type DenseLayer } from './layers.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';

export const splitPartialPass: FoldPass = {
  name: 'split-partial',
  kind: 'merge',
  candidates(g: Graph, ctx: PassContext): Candidate[] {
    const out: Candidate[] = [];
    const producers = g.producers();
    const consumers = g.consumers();
    for (const act of g.nodes) {
      if (act.opType !== 'PRelu') continue;
      const slope = constFloats(g, act.inputs[1], producers);
      if (!slope) continue;
      const src = producers.get(act.inputs[0]);
      const n1 = src && (src.opType === 'Gemm' || src.opType === 'MatMul') ? src
        : src?.opType === 'Add' ? [producers.get(src.inputs[0]), producers.get(src.inputs[1])].find((p) => p && (p.opType === 'Gemm' || p.opType === 'MatMul')) : undefined;
      const rd = consumers.get(act.outputs[0]) ?? [];
      const n2 = rd.length === 1 && (rd[0].opType === 'Gemm' || rd[0].opType === 'MatMul') && rd[0].inputs[0] === act.outputs[0] ? rd[0] : undefined;
      if (!n1 || !n2) continue;
      const L1 = readDense(g, n1, true, producers, consumers);
      const L2 = readDense(g, n2, true, producers, consumers);
      if (typeof L1 === 'string' || typeof L2 === 'string' || L1.output !== act.inputs[0]) continue;
      const what = `partially linear PRelu ${nm(act)} between ${nm(n1)} and ${nm(n2)}`;
      const key = [nm(n1), nm(act), nm(n2)];
      const N1 = L1.N;
      // slopes per channel on the last axis
      const sdims = slope.dims.filter((d, i) => !(d === 1 && i < slope.dims.length - 1));
      if (!(slope.data.length === N1 && sdims.length === 1) && slope.data.length !== 1) {
        out.push({ what, nodes: key, refused: `slope of shape [${slope.dims}] is not per channel on the last axis` });
        continue;
      }
      const sl = (c: number) => slope.data[slope.data.length === 1 ? 0 : c];
      const lin: number[] = [], non: number[] = [];
      for (let c = 0; c < N1; c++) (allOne([sl(c)], ctx.eps) ? lin : non).push(c);
      if (!lin.length || !non.length) continue; // fully nonlinear: nothing to split; fully linear: remove-identity
      if (!soleReader(g, L1.output, act, consumers) || !soleReader(g, act.outputs[0], n2, consumers) || L2.transA || L2.K !== N1) {
        out.push({ what, nodes: key, refused: 'layers have other readers or do not chain' });
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
        apply: () => applySplit(g, ctx, L1, act, L2, lin, non, sl),
      });
    }
    return out;
  },
};

function applySplit(g: Graph, ctx: PassContext, L1: DenseLayer, act: Node, L2: DenseLayer, lin: number[], non: number[], sl: (c: number) => number): void {
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
  const base = `${act.name || 'prelu'}_split`;
  const x = L1.input, z = L2.output;
  const gemm = L1.kind === 'Gemm' && !L1.transA && L1.biasRank <= 2 && L2.biasRank <= 2;
  const h = g.uniqueName(`${base}_h`), a = g.uniqueName(`${base}_a`), zn = g.uniqueName(`${base}_core`), zl = g.uniqueName(`${base}_bypass`);
  const nodes: Node[] = [];
  const bDims = (n: number, r: number, rank: number) => (r > 1 ? [r, n] : [...Array(Math.max(rank, 1) - 1).fill(1), n]);
  // core: x·A1N + b1N → PRelu → ·A2N
  if (gemm) nodes.push(makeNode(g, 'Gemm', [x, addInit(g, `${base}_W1`, [K, non.length], A1N), addInit(g, `${base}_B1`, bDims(non.length, L1.biasRows, 1), b1N)], [h], {}, `${base}_fc1`));
  else {
    const t = g.uniqueName(`${base}_h0`);
    nodes.push(makeNode(g, 'MatMul', [x, addInit(g, `${base}_W1`, [K, non.length], A1N)], [t], {}, `${base}_fc1`));
    nodes.push(makeNode(g, 'Add', [t, addInit(g, `${base}_B1`, bDims(non.length, L1.biasRows, L1.biasRank), b1N)], [h], {}, `${base}_fc1_bias`));
  }
  nodes.push(makeNode(g, 'PRelu', [h, addInit(g, `${base}_slope`, [non.length], non.map(sl))], [a], {}, `${base}_act`));
  // bypass: x·AL + bL
  if (gemm) {
    // (the bypass could be fc2's C input, saving the Add, but that would put it in series with fc2)
    nodes.push(makeNode(g, 'Gemm', [x, addInit(g, `${base}_WL`, [K, N2], AL), addInit(g, `${base}_BL`, bDims(N2, rows, 1), bL)], [zl], {}, `${base}_bypass`));
    nodes.push(makeNode(g, 'MatMul', [a, addInit(g, `${base}_W2`, [non.length, N2], A2N)], [zn], {}, `${base}_fc2`));
    nodes.push(makeNode(g, 'Add', [zn, zl], [z], {}, `${base}_sum`));
  } else {
    const t = g.uniqueName(`${base}_bypass0`);
    nodes.push(makeNode(g, 'MatMul', [x, addInit(g, `${base}_WL`, [K, N2], AL)], [t], {}, `${base}_bypass`));
    nodes.push(makeNode(g, 'Add', [t, addInit(g, `${base}_BL`, bDims(N2, rows, Math.max(L1.biasRank, L2.biasRank)), bL)], [zl], {}, `${base}_bypass_bias`));
    nodes.push(makeNode(g, 'MatMul', [a, addInit(g, `${base}_W2`, [non.length, N2], A2N)], [zn], {}, `${base}_fc2`));
    nodes.push(makeNode(g, 'Add', [zn, zl], [z], {}, `${base}_sum`));
  }
  const at = L2.add ?? L2.core;
  const k = g.nodes.indexOf(at);
  removeNodes(g, L1.core, L1.add, act, L2.core, L2.add);
  g.nodes.splice(Math.min(k, g.nodes.length), 0, ...nodes);
  const s = ctx.shapeOf(z);
  if (s) ctx.setShape(z, s);
}

export function splitPartial(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(splitPartialPass, g, ctx);
}
