// shape-chains: the Shape → Gather → Unsqueeze → Concat → Reshape chains that torch.onnx.export writes for a
// dynamic batch (nn.MultiheadAttention's [seq, batch·heads, head_dim] and friends) become constant targets
// with -1 where the batch goes, as in a fixed-batch export freed by makeBatchSymbolic. At batch 1 these chains
// are most of a small transformer's nodes (a 4-block ViT from torch: 466 nodes → 141) and a fifth of its
// onnxruntime latency, which onnxruntime cannot fold itself (the batch is symbolic).
// How: specialize the model to batch 1 (other symbolic dims to the given shapes), fold the small int
// constants (shape vectors only: at most 16 elements, so a class token's Expand stays a node), then free the
// batch again with makeBatchSymbolic (verified there: a batch of 3 vs one example at a time), and check the
// result against the input on a random batch of 3. Any failure leaves the model as it was, with the reason.
import type { Model } from '../import/ir.js';
import { option } from '../errors.js';
import { foldConstants } from '../import/constant-folding.js';
import { makeBatchSymbolic } from '../import/batch.js';
import { cloneModel } from '../import/ir-edit.js';
import { compareOutputs, randomFeeds, runModel } from './verify.js';

export interface ShapeChainResult {
  model: Model;
  /** one line for the report: what was done, or why not */
  note?: string;
}

/** Returns a copy of `input` with its batch-dependent shape chains constant (or a plain copy, and why not). */
export async function foldShapeChains(input: Model, opts: { inputShapes?: Record<string, number[]>; tolerance?: number } = {}): Promise<ShapeChainResult> {
  const g = input.graph;
  const producers = g.producers();
  const shapeOps = g.nodes.filter((n) => n.opType === 'Shape' && producers.get(n.inputs[0])?.opType !== 'Constant').length;
  const symbolicBatch = g.feeds.some((f) => f.shape && f.shape.length >= 2 && typeof f.shape[0] === 'string');
  if (!shapeOps || !symbolicBatch) return { model: cloneModel(input) };
  const c = cloneModel(input);
  const shapes: Record<string, number[]> = {};
  for (const f of c.graph.feeds) {
    const given = opts.inputShapes?.[f.name];
    if (!f.shape) return { model: cloneModel(input), note: `shape chains kept: input '${f.name}' has no shape` };
    const s = f.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 1 : given?.[i]));
    if (s.some((d) => d === undefined)) return { model: cloneModel(input), note: `shape chains kept: input '${f.name}' has symbolic dims other than the batch (give ${option('inputShapes')})` };
    shapes[f.name] = s as number[];
  }
  const nodesBefore = g.nodes.length;
  try {
    foldConstants(c, { inputShapes: shapes, maxElements: 16 });
    const r = await makeBatchSymbolic(c);
    if (!r.changed) return { model: cloneModel(input), note: `shape chains kept: ${r.reason ?? 'the batch could not be freed again'}` };
    const feeds = randomFeeds(g, { seed: 17, batch: 3, inputShapes: opts.inputShapes });
    const rel = compareOutputs(await runModel(input, feeds), await runModel(r.model, feeds)).maxRelError;
    if (!(rel < (opts.tolerance ?? 1e-5))) return { model: cloneModel(input), note: `shape chains kept: the constant form differs (relative error ${rel.toExponential(2)})` };
    r.model.path = input.path;
    return { model: r.model, note: `shape chains: ${shapeOps} Shape ops on batch-dependent values made constant (-1 for the batch), ${nodesBefore} → ${r.model.graph.nodes.length} nodes (relative error ${rel.toExponential(1)} at batch 3)` };
  } catch (e) {
    return { model: cloneModel(input), note: `shape chains kept: ${(e as Error).message.split('\n')[0]}` };
  }
}
