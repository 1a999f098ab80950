// merge-matmul: (Gemm | MatMul [+ constant bias Add]) ∘ (Gemm | MatMul [+ bias Add]) → one layer.
// With y = op(x)·A1 + b1 and z = y·A2 + b2: z = op(x)·(A1·A2) + (b1·A2 + b2). Gemm's alpha, beta, transB
// and a transA on the first layer are folded in; the result is a Gemm when the input is 2-D (first layer a
// Gemm), else MatMul + Add. A transformer FFN d→4d→d with no activation left becomes one d×d MatMul.
import type { Graph, Node } from '../import/ir.js';
import { matmul } from './graph-utils.js';
import { addInit, int, makeNode, removeNodes, soleReader } from '../import/ir-edit.js';
import { readDense, type DenseLayer } from './layers.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';

export interface DensePlan {
  A: Float64Array;
  K: number;
  N: number;
  bias?: Float64Array;
  biasDims?: number[];
  transA: boolean;
  gemm: boolean;
}

/** Why L2∘L1 cannot be one layer (undefined: it can); cheap, no weights touched. */
export function denseMergeRefusal(L1: Pick<DenseLayer, 'kind' | 'N' | 'transA' | 'biasRank'>, L2: Pick<DenseLayer, 'core' | 'K' | 'transA' | 'biasRank'>): string | undefined {
  if (L2.transA) return `${nm(L2.core)} reads its input transposed`;
  if (L1.N !== L2.K) return `sizes differ (${L1.N} → ${L2.K})`;
  const gemm = L1.kind === 'Gemm' && Math.max(L1.biasRank, L2.biasRank) <= 2;
  if (!gemm && L1.transA) return 'transposed input without a 2-D Gemm form';
  return undefined;
}

export function planDenseMerge(L1: DenseLayer, L2: DenseLayer): DensePlan | string {
  const refused = denseMergeRefusal(L1, L2);
  if (refused) return refused;
  const A = matmul(L1.A, L2.A, L1.K, L1.N, L2.N);
  const hasBias = L1.hasBias || L2.hasBias;
  const rows = Math.max(L1.biasRows, L2.biasRows);
  let bias: Float64Array | undefined;
  if (hasBias) {
    const b1 = matmul(L1.bias, L2.A, L1.biasRows, L1.N, L2.N);
    bias = new Float64Array(rows * L2.N);
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < L2.N; j++)
        bias[i * L2.N + j] = b1[(L1.biasRows === 1 ? 0 : i) * L2.N + j] + L2.bias[(L2.biasRows === 1 ? 0 : i) * L2.N + j];
  }
  const biasRank = Math.max(L1.biasRank, L2.biasRank);
  const gemm = L1.kind === 'Gemm' && biasRank <= 2;
  const biasDims = !bias ? undefined : rows > 1 ? [rows, L2.N] : gemm ? [L2.N] : [...Array(Math.max(biasRank, 1) - 1).fill(1), L2.N];
  return { A, K: L1.K, N: L2.N, bias, biasDims, transA: L1.transA, gemm };
}

export function emitDense(g: Graph, input: string, output: string, plan: DensePlan, replace: Node[], base: string): Node[] {
  const at = replace[replace.length - 1];
  const W = addInit(g, `${base}_W`, [plan.K, plan.N], plan.A);
  const nodes: Node[] = [];
  if (plan.gemm && (plan.bias || plan.transA)) {
    // C is always given (it is optional only from opset 11)
    const C = addInit(g, `${base}_B`, plan.bias ? plan.biasDims! : [plan.N], plan.bias ?? new Float64Array(plan.N));
    nodes.push(makeNode(g, 'Gemm', [input, W, C], [output], plan.transA ? { transA: int(1) } : {}, base));
  } else if (plan.bias) {
    const t = g.uniqueName(`${output}_nobias`);
    nodes.push(makeNode(g, 'MatMul', [input, W], [t], {}, base));
    nodes.push(makeNode(g, 'Add', [t, addInit(g, `${base}_B`, plan.biasDims!, plan.bias)], [output], {}, `${base}_bias`));
  } else nodes.push(makeNode(g, 'MatMul', [input, W], [output], {}, base));
  const k = g.nodes.indexOf(at);
  removeNodes(g, ...replace);
  g.nodes.splice(Math.min(k, g.nodes.length), 0, ...nodes);
  return nodes;
}

export const mergeMatmulPass: FoldPass = {
  name: 'merge-matmul',
  kind: 'merge',
  candidates(g: Graph, ctx: PassContext): Candidate[] {
    const out: Candidate[] = [];
    const producers = g.producers();
    const consumers = g.consumers();
    for (const n2 of g.nodes) {
      if (n2.opType !== 'Gemm' && n2.opType !== 'MatMul') continue;
      const src = producers.get(n2.inputs[0]);
      const n1 = src && (src.opType === 'Gemm' || src.opType === 'MatMul') ? src
        : src?.opType === 'Add' ? [producers.get(src.inputs[0]), producers.get(src.inputs[1])].find((p) => p && (p.opType === 'Gemm' || p.opType === 'MatMul')) : undefined;
      if (!n1) continue;
      const L1 = readDense(g, n1, true, producers, consumers);
      if (typeof L1 === 'string' || L1.output !== n2.inputs[0]) continue;
      const L2 = readDense(g, n2, true, producers, consumers);
      if (typeof L2 === 'string') continue;
      const what = `${n2.opType} ${nm(n2)} ∘ ${n1.opType} ${nm(n1)}`;
      const key = [nm(n1), nm(n2)];
      if (!soleReader(g, L1.output, n2, consumers)) {
        out.push({ what, nodes: key, refused: `${nm(n1)}'s output has other readers` });
        continue;
      }
      const plan = planDenseMerge(L1, L2);
      if (typeof plan === 'string') {
        out.push({ what, nodes: key, refused: plan });
        continue;
      }
      out.push({
        what: `${what} → ${plan.gemm ? 'Gemm' : 'MatMul'} ${plan.K}×${plan.N} (was ${L1.K}×${L1.N}, ${L2.K}×${L2.N})`,
        nodes: key,
        macsDelta: plan.K * plan.N - L1.K * L1.N - L2.K * L2.N,
        apply: () => {
          const s = ctx.shapeOf(L2.output);
          const nodes = emitDense(g, L1.input, L2.output, plan, [L1.core, ...(L1.add ? [L1.add] : []), L2.core, ...(L2.add ? [L2.add] : [])], `${n2.name || 'dense'}_merged`);
          if (s) for (const n of nodes) ctx.setShape(n.outputs[0], s);
        },
      });
    }
    return out;
  },
};

export function mergeMatmul(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(mergeMatmulPass, g, ctx);
}
