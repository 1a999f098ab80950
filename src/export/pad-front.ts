// The pad-front rewrite (Kim et al. ICML 2023; LayerMerge ICML 2024, `adjust_padding` in their code): for two
// convolutions A → (linear activation) → B where B zero-pads, move B's padding onto A — A's pads become
// p1 + p2·s1 per side and B reads unpadded — so B sees A evaluated on the ring instead of zeros. Per axis
// A's output grows by exactly p2b + p2e (the extra s1·(p2b + p2e) input positions add p2b + p2e windows) and
// B's output keeps its size, so nothing downstream changes shape; only the intermediate tensor, read by the
// activation and B alone, is larger (no skip connection can read it, so none needs padding or cropping).
// The function changes on B's outer ring of outputs; in this form the merge B∘A is exact (merge-conv plans
// it with B unpadded), biases included. A run of more convs repeats it: the padding moves to the first.
//
// Two uses: `padFront(model)` rewrites a graph being trained (linearize --merge-ready) at every linear
// activation between two convs; `padFrontLayers(A, B)` is the same geometry on two read layers, which
// merge-conv uses for its border-approximate merge (fold --borders approximate).
import type { Model } from '../import/ir.js';
import { inferShapes } from '../import/shape-inference.js';
import { census } from '../analyze/census.js';
import { ints } from '../import/ir-edit.js';
import { readConv } from './layers.js';
import { planConvMerge, padFrontLayers } from './merge-conv.js';
import { passContext, nm } from './pass.js';

export interface PadFrontRewrite {
  /** the conv that now pads (A) and the one that no longer does (B) */
  first: string;
  second: string;
  /** the activation between them (linear) */
  activation: string;
  /** A's pads before → after */
  padsBefore: number[];
  padsAfter: number[];
}

/**
 * Rewrites `model` in place to the pad-front form at every activation layer that is linear on all its
 * channels (slopes exactly 1, or within `eps`) and sits between a conv A, read only by it, and a conv B,
 * the sole reader of its output, when B zero-pads and the pair cannot already merge exactly. Repeats until
 * nothing changes (runs of convs: the padding moves to the first). Returns the rewrites, in order.
 */
export function padFront(model: Model, opts: { eps?: number } = {}): PadFrontRewrite[] {
  const g = model.graph;
  const done: PadFrontRewrite[] = [];
  inferShapes(model);
  for (let guard = 0; guard < 1000; guard++) {
    const shapes = passContext({ shapeOf: (n) => g.info(n)?.shape as (number | string)[] | undefined });
    const producers = g.producers(), consumers = g.consumers();
    let rewrite: PadFrontRewrite | undefined;
    // last pair first, so that along a run the padding ends on the first conv
    for (const layer of census(model, { eps: opts.eps ?? 0 }).layers.reverse()) {
      if (layer.linearChannels !== layer.channels || layer.channels === 0) continue;
      const nA = producers.get(layer.input);
      const readersB = consumers.get(layer.output) ?? [];
      if (!nA || readersB.length !== 1 || g.outputs.some((o) => o.name === layer.output || o.name === layer.input)) continue;
      // A may be a conv with its constant bias Add
      const convA = nA.opType === 'Conv' ? nA : nA.opType === 'Add' ? nA.inputs.map((i) => producers.get(i)).find((p) => p?.opType === 'Conv') : undefined;
      const nB = readersB[0];
      if (!convA || nB.opType !== 'Conv' || nB.inputs[0] !== layer.output || nB.inputs.slice(1).includes(layer.output)) continue;
      const A = readConv(g, convA, shapes, true, producers, consumers);
      const B = readConv(g, nB, shapes, true, producers, consumers);
      if (typeof A === 'string' || typeof B === 'string' || A.output !== layer.input || B.pads.every((p) => p === 0)) continue;
      // the activation's nodes are the only readers of A's output
      const inside = new Set(layer.nodes);
      if (!(consumers.get(A.output) ?? []).every((n) => inside.has(n.name || n.outputs[0]))) continue;
      if (typeof planConvMerge(A, B, false) !== 'string') continue; // merges exactly as it is
      const pf = padFrontLayers(A, B);
      if (typeof pf === 'string' || typeof planConvMerge(pf[0], pf[1], false) === 'string') continue;
      rewrite = { first: nm(A.conv), second: nm(B.conv), activation: layer.name, padsBefore: A.pads, padsAfter: pf[0].pads };
      for (const n of [A.conv, B.conv]) delete n.attrs.auto_pad;
      A.conv.attrs.pads = ints(pf[0].pads);
      B.conv.attrs.pads = ints(pf[1].pads);
      // the shapes of A's output and of the activation's values change: infer them again
      for (const n of g.nodes) if (n === A.conv || n === A.add || inside.has(n.name || n.outputs[0])) for (const o of n.outputs) g.valueInfo.delete(o);
      inferShapes(model);
      break;
    }
    if (!rewrite) break;
    done.push(rewrite);
  }
  return done;
}
