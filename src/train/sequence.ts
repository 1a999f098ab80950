// Models with one output row per token (logits [batch, T, V]: a language model, a token classifier): the task
// losses and the agreement are per token (softmax over V at every position); for a language model fed its own
// token ids [batch, T], validation also reports the next-token perplexity (position t predicts token t + 1).
import type { Model } from '../import/ir.js';
import type { Batch, Dataset } from './data.js';

/** V when the model's first output is [batch, T, V] with a known V (per-token logits), else undefined. */
export function tokenWidth(model: Model): number | undefined {
  const s = model.graph.outputs[0]?.shape;
  return s?.length === 3 && typeof s[2] === 'number' ? s[2] : undefined;
}

/** Output rows for a batch: one per token for per-token logits, else one per example. */
export function outputRows(values: ArrayLike<number>, b: Batch, width: number | undefined): number {
  return width ? values.length / width : b.size;
}

/** True when the data are the model's own token ids [batch, T] and its logits are [batch, T, V]: a language model. */
export function isLanguageModel(model: Model, data: Dataset, width: number | undefined): boolean {
  const out = model.graph.outputs[0]?.shape, input = model.graph.feeds[0];
  return Boolean(width) && model.graph.feeds.length === 1 && data.dtype === 'int32' && data.sampleShape.length === 1 &&
    (input.dtype === 'int64' || input.dtype === 'int32') && typeof out?.[1] === 'number' && out[1] === data.sampleShape[0];
}

/** Σ −log p(token t+1 | logits at t) over a batch of token ids [n, T] and logits [n, T, V], and how many terms. */
export function nextTokenNll(logits: ArrayLike<number>, tokens: ArrayLike<number>, n: number, T: number, V: number): { sum: number; count: number } {
  let sum = 0;
  for (let i = 0; i < n; i++)
    for (let t = 0; t + 1 < T; t++) {
      const o = (i * T + t) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, logits[o + v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[o + v] - max);
      sum += max + Math.log(z) - logits[o + tokens[i * T + t + 1]];
    }
  return { sum, count: n * Math.max(0, T - 1) };
}
