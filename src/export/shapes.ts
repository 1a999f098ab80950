// Static shapes for the fold passes: src/import/shape-inference.ts with the verification feeds' concrete
// input shapes; values it leaves unresolved are probed with onnxruntime-node (every intermediate value made
// a graph output for one run). The shapes are kept aside (the model's value_info is not touched).
import type { Model } from '../import/ir.js';
import type { Tensor } from '../import/tensor.js';
import { inferShapes } from '../import/shape-inference.js';
import { ortSession, runOrt } from '../import/ort.js';
import { numericDims } from './graph-utils.js';
import { cloneModel } from '../import/ir-edit.js';

export type ShapeMap = Map<string, (number | string)[]>;

export async function staticShapes(model: Model, feeds: Record<string, Tensor>): Promise<ShapeMap> {
  const shapes: ShapeMap = new Map();
  const g = model.graph;
  for (const [k, t] of Object.entries(feeds)) shapes.set(k, [...t.dims]);
  for (const [k, t] of g.initializers) shapes.set(k, [...t.dims]);
  try {
    const m = cloneModel(model);
    const inputShapes: Record<string, number[]> = {};
    for (const [k, t] of Object.entries(feeds)) inputShapes[k] = [...t.dims];
    inferShapes(m, { inputShapes });
    for (const [k, v] of m.graph.valueInfo) if (numericDims(v.shape)) shapes.set(k, v.shape!);
  } catch {
    // fall through to probing
  }
  const missing = g.nodes.flatMap((n) => n.outputs).filter((o) => o && !shapes.has(o));
  if (missing.length) await probe(model, feeds, missing, shapes);
  return shapes;
}

/** Runs the model once with `names` exposed as outputs and records their shapes. */
async function probe(model: Model, feeds: Record<string, Tensor>, names: string[], shapes: ShapeMap): Promise<void> {
  const m = cloneModel(model);
  const have = new Set(m.graph.outputs.map((o) => o.name));
  for (const n of names) if (!have.has(n)) m.graph.outputs.push({ name: n });
  try {
    const out = await runOrt(await ortSession(m), feeds);
    for (const [k, t] of Object.entries(out)) shapes.set(k, [...t.dims]);
  } catch {
    // shapes stay unknown; passes needing them refuse
  }
}
