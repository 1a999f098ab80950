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
import { opsetOf, topologicalOrder, type Graph, type Model, type Node, type Shape } from '../import/ir.js';
import { opFacts, type DimsOf } from '../import/ops/index.js';
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
  const shapes = opts.shapes ?? completeShapes(graph, order, new Constants(graph), 'graph' in model ? opsetOf(model) : undefined);
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

/** MACs of one node (batch 1) by its op's rule (src/import/ops/); 0 for ops that do no contraction; undefined when shapes are missing. */
export function nodeMacs(n: Node, dims: DimsOf): number | undefined {
  const rule = opFacts(n.opType, n.domain)?.macs;
  return rule ? rule(n, dims) : 0;
}

export type { Shape };
