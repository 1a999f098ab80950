// Constant folding: with concrete input shapes, every node whose outputs shape inference knows as (small)
// constants becomes an initializer, and whatever nobody reads any more is dropped. This collapses the
// Shape → Gather → Unsqueeze → Concat → Reshape chains exporters emit into a constant target shape.
import type { Model, Node } from './ir.js';
import type { Proto } from './onnx-schema.js';
import { inferShapes, type ShapeInferenceResult } from './shape-inference.js';

export interface FoldOptions {
  /** Concrete input shapes: the folded model is specialized to them (its inputs declare them). */
  inputShapes?: Record<string, number[]>;
  /** Largest constant (in elements) folded into an initializer; default 100 000, so weights are not duplicated. */
  maxElements?: number;
}

export interface FoldResult {
  /** Nodes replaced by initializers. */
  foldedNodes: number;
  /** Nodes dropped because nothing read their outputs any more (folded ones not counted). */
  removedNodes: number;
  removedInitializers: number;
  inference: ShapeInferenceResult;
}

/** Folds constant subgraphs of `model` in place. */
export function foldConstants(model: Model, opts: FoldOptions = {}): FoldResult {
  const maxElements = opts.maxElements ?? 1e5;
  const inference = inferShapes(model, { inputShapes: opts.inputShapes, maxEvalElements: maxElements });
  const g = model.graph;
  // an initializer that is also a graph input is only a default: the caller may feed another value
  const overridable = new Set(g.inputs.filter((i) => g.initializers.has(i.name)).map((i) => i.name));
  const folded = new Set<Node>();
  for (const n of g.nodes) {
    const outs = n.outputs.filter(Boolean);
    if (n.inputs.some((i) => overridable.has(i))) {
      outs.forEach((o) => overridable.add(o));
      continue;
    }
    const values = outs.map((o) => inference.constants.get(o));
    if (!outs.length || values.some((t) => !t || t.size > maxElements)) continue;
    folded.add(n);
    outs.forEach((o, k) => {
      g.initializers.set(o, values[k]!);
      g.valueInfo.delete(o);
    });
  }
  const before = g.nodes.length;
  g.nodes = g.nodes.filter((n) => !folded.has(n));

  // drop what nobody reads: nodes (backwards), then initializers
  const read = new Set<string>(g.outputs.map((o) => o.name));
  const live: Node[] = [];
  for (const n of [...g.nodes].reverse()) {
    if (!n.outputs.some((o) => o && read.has(o))) continue;
    live.push(n);
    for (const i of [...n.inputs, ...subgraphReads(n)]) if (i) read.add(i);
  }
  g.nodes = live.reverse();
  // initializers that are graph inputs stay: they are part of the model's interface
  const inputNames = new Set(g.inputs.map((i) => i.name));
  const foldedNames = new Set([...folded].flatMap((n) => n.outputs));
  let removedInitializers = 0;
  for (const name of [...g.initializers.keys()])
    if (!read.has(name) && !inputNames.has(name)) {
      g.initializers.delete(name);
      if (!foldedNames.has(name)) removedInitializers++;
    }
  const produced = new Set(g.nodes.flatMap((n) => n.outputs));
  for (const name of [...g.valueInfo.keys()]) if (!produced.has(name)) g.valueInfo.delete(name);
  return { foldedNodes: folded.size, removedNodes: before - folded.size - g.nodes.length, removedInitializers, inference };
}

/** Names a node's subgraphs (If/Loop/Scan bodies) read from the enclosing scope, over-approximated. */
function subgraphReads(n: Node): string[] {
  const out: string[] = [];
  const walkGraph = (g: Proto | undefined) => {
    for (const node of g?.node ?? []) {
      out.push(...(node.input ?? []));
      for (const a of node.attribute ?? []) walkAttr(a);
    }
  };
  const walkAttr = (a: Proto) => {
    walkGraph(a.g);
    for (const sg of a.graphs ?? []) walkGraph(sg);
  };
  for (const a of Object.values(n.attrs)) if (a.type === 'opaque') walkAttr(a.proto);
  return out;
}
