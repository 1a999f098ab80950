// Numbers the fold objective and report use.
//  - layer depth: Conv / ConvTranspose / Gemm / MatMul-with-a-constant-operand nodes on the longest
//    input→output path (computed here: it is the fold objective's own measure), and how many layers lie on
//    some longest path ("critical" layers: merging one of them is what shortens the longest path).
//  - params, MACs, APL, NAPL: from src/analyze (audit.ts; the objective's MACs use cost.ts's nodeMacs on the
//    fold's own static shapes, so each candidate costs no shape inference).
import type { Graph, Model, Node } from '../import/ir.js';
import { audit } from '../analyze/audit.js';
import { nodeMacs } from '../analyze/cost.js';
import { constValue } from './graph-utils.js';
import { cloneModel } from '../import/ir-edit.js';
import type { ShapeMap } from './shapes.js';

const LAYER_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'MatMulInteger', 'ConvInteger', 'QLinearConv', 'QLinearMatMul']);

/** A node with weights: a conv, or a Gemm/MatMul one of whose operands is a constant. */
export function isLayer(g: Graph, n: Node, producers?: Map<string, Node>): boolean {
  if (!LAYER_OPS.has(n.opType) || (n.domain && n.domain !== 'ai.onnx')) return false;
  if (n.opType.includes('Conv') || n.opType === 'Gemm') return true;
  return n.inputs.some((i) => !!constValue(g, i, producers));
}

export interface DepthInfo {
  /** layers on the longest path */
  depth: number;
  /** layers lying on at least one longest path */
  critical: number;
  /** all layers */
  layers: number;
}

/** Expects the nodes in topological order (Graph.sortTopologically). */
export function layerDepth(g: Graph): DepthInfo {
  const producers = g.producers();
  const order = [...g.nodes];
  const layer = new Map<Node, number>(order.map((n) => [n, isLayer(g, n, producers) ? 1 : 0]));
  const fwd = new Map<string, number>();
  const nodeF = new Map<Node, number>();
  const inputs = new Set(g.inputs.map((i) => i.name));
  for (const n of order) {
    let d = -Infinity;
    for (const i of n.inputs) {
      if (!i) continue;
      const v = fwd.get(i) ?? (inputs.has(i) && !g.initializers.has(i) ? 0 : -Infinity);
      d = Math.max(d, v);
    }
    // nodes fed only by constants are not on any input→output path
    const f = d === -Infinity ? -Infinity : d + layer.get(n)!;
    nodeF.set(n, f);
    for (const o of n.outputs) if (o) fwd.set(o, f);
  }
  const outputs = new Set(g.outputs.map((o) => o.name));
  const bwdVal = new Map<string, number>();
  const nodeB = new Map<Node, number>();
  const consumers = g.consumers();
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k];
    let b = -Infinity;
    for (const o of n.outputs) {
      if (!o) continue;
      if (outputs.has(o)) b = Math.max(b, 0);
      for (const c of consumers.get(o) ?? []) b = Math.max(b, nodeB.get(c) ?? -Infinity);
    }
    const v = b === -Infinity ? -Infinity : b + layer.get(n)!;
    nodeB.set(n, v);
    for (const i of n.inputs) if (i) bwdVal.set(i, Math.max(bwdVal.get(i) ?? -Infinity, v));
  }
  let depth = 0;
  for (const o of g.outputs) depth = Math.max(depth, fwd.get(o.name) ?? 0);
  let critical = 0, layers = 0;
  for (const n of order) {
    if (!layer.get(n)) continue;
    layers++;
    if (nodeF.get(n)! + nodeB.get(n)! - 1 === depth) critical++;
  }
  return { depth, critical, layers };
}

/** MACs per example (analyze/cost's convention: contractions only) from the fold's static shapes. */
export function graphMacs(g: Graph, shapes: ShapeMap): number {
  const dims = (v: string | undefined): number[] | undefined => {
    if (!v) return undefined;
    const s = shapes.get(v) ?? g.initializers.get(v)?.dims;
    return s ? s.map((d) => (typeof d === 'number' ? d : 1)) : undefined;
  };
  let macs = 0;
  for (const n of g.nodes) {
    try {
      macs += nodeMacs(n, dims) ?? 0;
    } catch {
      // a node whose MACs cannot be computed counts 0, as in analyze/cost
    }
  }
  return macs;
}

export interface AnalyzeMetrics {
  params: number | null;
  macs: number | null;
  apl: number | null;
  napl: number | null;
  warnings: string[];
}

/** params, MACs (batch 1), APL and NAPL from src/analyze's audit. */
export function analyzeMetrics(model: Model, opts: { inputShapes?: Record<string, number[]>; eps?: number } = {}): AnalyzeMetrics {
  try {
    const rep = audit(cloneModel(model), { inputShapes: opts.inputShapes, eps: opts.eps });
    const s = rep.summary;
    return { params: s.params, macs: s.macs, apl: s.apl, napl: s.napl, warnings: rep.warnings };
  } catch (e) {
    return { params: null, macs: null, apl: null, napl: null, warnings: [`audit failed: ${(e as Error).message}`] };
  }
}
