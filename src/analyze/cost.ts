// Parameters and multiply-accumulates.
//
// Conventions:
// - Parameters: elements of floating-point initializers, each initializer counted once and attributed to the
//   first node (in topological order) that reads it. Integer initializers (shapes, indices) are not
//   parameters; nor are Constant nodes (exporters use them for scalars). BatchNormalization, LayerNorm and
//   the like therefore count their scale/bias (and BN's running statistics, when present) as parameters.
// - MACs: multiply-accumulates of the contractions only — Conv (groups and dilation included: dilation
//   changes the output size, not the work per output), ConvTranspose, Gemm, MatMul (batched, and attention
//   MatMuls of two activations), Einsum, their quantized forms, and RNN/GRU/LSTM. Normalizations, pools,
//   activations and other elementwise ops are per-element work and count 0 MACs.
// - Batch size 1: every symbolic dimension counts as 1 (listed in `assumptions`); pin them with
//   audit's inputShapes for other sizes.
import { topologicalOrder, type Graph, type Model, type Node, type Shape, attrInt, attrString } from '../import/ir.js';
import { isFloat } from '../import/tensor.js';
import { Constants, completeShapes, isNum } from './shapes.js';

export interface NodeCost {
  node: string;
  opType: string;
  params: number;
  macs: number;
}

export interface CostReport {
  params: number;
  macs: number;
  /** Nodes with parameters or MACs, in topological order. */
  nodes: NodeCost[];
  /** Conventions applied to this model (symbolic dims taken as 1, MACs not computable for a node, …). */
  assumptions: string[];
}

export interface CostOptions {
  /** Shapes to use (e.g. from a propagation); default: valueInfo plus the fallback rules. */
  shapes?: Map<string, Shape | undefined>;
  order?: Node[];
}

export function cost(model: Model | Graph, opts: CostOptions = {}): CostReport {
  const graph = 'graph' in model ? model.graph : model;
  const order = opts.order ?? topologicalOrder(graph);
  const shapes = opts.shapes ?? completeShapes(graph, order, new Constants(graph));
  const symbolic = new Set<string>();
  const assumptions: string[] = [];
  const dims = (v: string | undefined): number[] | undefined => {
    const s = v ? shapes.get(v) ?? graph.initializers.get(v)?.dims : undefined;
    if (!s) return undefined;
    return s.map((d) => {
      if (isNum(d)) return d;
      symbolic.add(String(d));
      return 1;
    });
  };
  const counted = new Set<string>();
  const nodes: NodeCost[] = [];
  let params = 0;
  let macs = 0;
  for (const n of order) {
    let p = 0;
    for (const i of n.inputs) {
      if (!i || counted.has(i)) continue;
      const t = graph.initializers.get(i);
      if (!t || !isFloat(t.dtype)) continue;
      counted.add(i);
      p += t.size;
    }
    let m = 0;
    try {
      const r = nodeMacs(n, dims);
      if (r === undefined) assumptions.push(`${n.name || n.outputs[0]} (${n.opType}): shapes unknown, MACs counted as 0`);
      else m = r;
    } catch {
      assumptions.push(`${n.name || n.outputs[0]} (${n.opType}): MACs not computable, counted as 0`);
    }
    if (p || m) nodes.push({ node: n.name || n.outputs[0], opType: n.opType, params: p, macs: m });
    params += p;
    macs += m;
  }
  const unread = [...graph.initializers.values()].filter((t) => isFloat(t.dtype) && !counted.has(t.name));
  if (unread.length) assumptions.push(`${unread.length} float initializer(s) read by no node are not counted (${unread.reduce((s, t) => s + t.size, 0)} elements)`);
  if (symbolic.size) assumptions.unshift(`symbolic dimensions taken as 1: ${[...symbolic].join(', ')}`);
  return { params, macs, nodes, assumptions };
}

const prod = (a: number[]) => a.reduce((p, d) => p * d, 1);

/** MACs of one node (batch 1); 0 for ops that do no contraction; undefined when shapes are missing. */
export function nodeMacs(n: Node, dims: (v: string | undefined) => number[] | undefined): number | undefined {
  const dflt = n.domain === '' || n.domain === 'ai.onnx' || n.domain === 'com.microsoft';
  if (!dflt) return 0;
  switch (n.opType) {
    case 'Conv': case 'ConvInteger': case 'QLinearConv': case 'FusedConv': {
      const w = dims(n.inputs[n.opType === 'QLinearConv' ? 3 : 1]);
      const y = dims(n.outputs[0]);
      if (!w || !y) return undefined;
      // each output element: (C/g)·prod(kernel) MACs; w = [M, C/g, k...]
      return prod(y) * prod(w.slice(1));
    }
    case 'ConvTranspose': {
      const x = dims(n.inputs[0]);
      const w = dims(n.inputs[1]);
      if (!x || !w) return undefined;
      // each input element is scattered to (M/g)·prod(kernel) outputs; w = [C, M/g, k...]
      return prod(x) * prod(w.slice(1));
    }
    case 'Gemm': {
      const a = dims(n.inputs[0]);
      const b = dims(n.inputs[1]);
      if (!a || !b) return undefined;
      const [M, K] = attrInt(n, 'transA', 0) ? [a[1], a[0]] : [a[0], a[1]];
      const N = attrInt(n, 'transB', 0) ? b[0] : b[1];
      return M * K * N;
    }
    case 'MatMul': case 'MatMulInteger': case 'QLinearMatMul': case 'FusedMatMul': {
      const a = dims(n.inputs[0]);
      const b = dims(n.inputs[n.opType === 'QLinearMatMul' ? 3 : 1]);
      const y = dims(n.outputs[0]);
      if (!a || !b) return undefined;
      const K = n.opType === 'FusedMatMul' && attrInt(n, 'transA', 0) ? a[a.length - 2] ?? a[0] : a[a.length - 1];
      // output elements × the contracted length
      if (y) return prod(y) * K;
      const a2 = a.length === 1 ? [1, a[0]] : a;
      const b2 = b.length === 1 ? [b[0], 1] : b;
      const batch = Math.max(prod(a2.slice(0, -2)), prod(b2.slice(0, -2)));
      return batch * a2[a2.length - 2] * K * b2[b2.length - 1];
    }
    case 'Einsum': {
      if (n.inputs.length < 2) return 0;
      const eq = attrString(n, 'equation', '').replace(/\s+/g, '');
      const terms = eq.split('->')[0].split(',');
      const size = new Map<string, number>();
      for (let k = 0; k < terms.length; k++) {
        const d = dims(n.inputs[k]);
        if (!d) return undefined;
        const t = terms[k];
        const [pre, post] = t.includes('...') ? t.split('...') : [t, ''];
        const ell = d.length - pre.length - post.length;
        [...pre].forEach((l, i) => size.set(l, d[i]));
        for (let e = 0; e < ell; e++) size.set(`.${e}`, Math.max(size.get(`.${e}`) ?? 1, d[pre.length + e]));
        [...post].forEach((l, i) => size.set(l, d[pre.length + ell + i]));
      }
      // one multiply-accumulate per point of the joint index space (pairwise products for > 2 operands)
      return prod([...size.values()]) * (terms.length - 1);
    }
    case 'RNN': case 'GRU': case 'LSTM': {
      const x = dims(n.inputs[0]);
      if (!x) return undefined;
      const H = attrInt(n, 'hidden_size', 0);
      const dirs = attrString(n, 'direction', 'forward') === 'bidirectional' ? 2 : 1;
      const gates = n.opType === 'LSTM' ? 4 : n.opType === 'GRU' ? 3 : 1;
      const [seq, batch, input] = attrInt(n, 'layout', 0) ? [x[1], x[0], x[2]] : [x[0], x[1], x[2]];
      return seq * batch * dirs * gates * H * (input + H);
    }
    default:
      return 0;
  }
}

export type { Shape };
