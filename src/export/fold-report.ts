// The fold report: metrics of the input, folded and original models, what was left undone, and the verdict
// in words.
import type { Graph, Model } from '../import/ir.js';
import type { Tensor } from '../import/tensor.js';
import { candidateKey, type FoldPass, type PassContext } from './pass.js';
import { analyzeMetrics, layerDepth } from './metrics.js';
import type { FoldEvent, FoldMetrics } from './pipeline.js';

/** Depth, params, MACs, APL and op counts of a model (latency is filled in by the caller). */
export function staticMetrics(m: Model, feeds: Record<string, Tensor>, eps: number, notes: string[]): FoldMetrics {
  const g = m.graph;
  const d = layerDepth(g);
  const opCounts: Record<string, number> = {};
  for (const n of g.nodes) opCounts[n.opType] = (opCounts[n.opType] ?? 0) + 1;
  // batch-1 shapes of the latency feeds: params/MACs per example
  const inputShapes = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, [...t.dims]]));
  const a = analyzeMetrics(m, { inputShapes, eps });
  for (const w of a.warnings) notes.push(`audit: ${w}`);
  return { nodes: g.nodes.length, layers: d.layers, depth: d.depth, params: a.params, macs: a.macs, apl: a.apl, napl: a.napl, latencyMs: null, opCounts };
}

/**
 * What is left undone, as of the final graph: its refusals, and the applicable rewrites that lost on the
 * objective; every rewrite undone by verification is listed whatever happened later.
 */
export function leftUndone(g: Graph, ctx: PassContext, passes: FoldPass[], rejected: Map<string, FoldEvent>, failedVerification: FoldEvent[]): FoldEvent[] {
  const out: FoldEvent[] = [];
  for (const pass of passes) {
    for (const c of pass.candidates(g, ctx)) {
      const key = candidateKey(pass.name, c);
      if (c.refused) out.push({ pass: pass.name, what: c.what, nodes: c.nodes, reason: `not exact: ${c.refused}` });
      else if (rejected.get(key)?.reason?.startsWith('objective')) out.push(rejected.get(key)!);
    }
  }
  return [...out, ...failedVerification];
}

/**
 * A latency change in words. Within 3 % it is "about as fast": alternating medians on a shared machine differ
 * that much between identical models.
 */
export function speedup(beforeMs: number, afterMs: number): string {
  const r = beforeMs / afterMs;
  return r >= 1.03 ? `${r.toFixed(2)}× faster` : r > 1 / 1.03 ? 'about as fast' : `SLOWER: ${(1 / r).toFixed(2)}× the latency`;
}

/**
 * What the fold achieved, in words: depth and latency against the input and, when known, the original. A
 * folded model slower than what it was made from is said so, never left to be read off the numbers.
 */
export function verdict(input: FoldMetrics, folded: FoldMetrics, original?: FoldMetrics & { file?: string }): string[] {
  const out: string[] = [];
  const against = (label: string, ref: FoldMetrics) => {
    const depth = ref.depth === folded.depth ? `as deep (${folded.depth} conv/matmul layers)` : folded.depth < ref.depth ? `shallower (depth ${ref.depth} → ${folded.depth})` : `DEEPER (depth ${ref.depth} → ${folded.depth})`;
    const speed = ref.latencyMs && folded.latencyMs ? `${speedup(ref.latencyMs, folded.latencyMs)} (${ref.latencyMs.toFixed(3)} → ${folded.latencyMs.toFixed(3)} ms)` : 'latency not measured';
    out.push(`against ${label}: ${depth}, ${speed}`);
  };
  against('its input', input);
  if (original) against(`the original${original.file ? ` (${original.file})` : ''}`, original);
  return out;
}
