// Verification and timing with onnxruntime-node: output comparison, latency.
import { LinfoldError } from '../errors.js';
import type { Model } from '../import/ir.js';
import { Tensor, compareValues } from '../import/tensor.js';
export { randomFeeds, type FeedOptions } from '../import/random.js';
import { ortSession, runOrt, type OrtSession } from '../import/ort.js';
import { encodeModel } from '../import/onnx-io.js';


/** Runs a model (IR or bytes) on feeds. */
export async function runModel(model: Model | Uint8Array | OrtSession, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = 'run' in model ? model : await ortSession(model);
  return runOrt(session, feeds);
}

/** Outputs of `model` (onnxruntime-node, one session) on each feed set. */
export async function outputsOn(model: Model | Uint8Array, feedSets: Record<string, Tensor>[], label = 'model'): Promise<Record<string, Tensor>[]> {
  const s = await ortSession(model instanceof Uint8Array ? model : encodeModel(model), label);
  const out: Record<string, Tensor>[] = [];
  for (const f of feedSets) out.push(await runOrt(s, f));
  await s.release?.();
  return out;
}

export interface Comparison {
  /** max over outputs of max-abs error / max |reference| (absolute error where the reference is all zeros) */
  maxRelError: number;
  perOutput: Record<string, { maxAbsError: number; maxAbsReference: number; relError: number }>;
}

export function compareOutputs(reference: Record<string, Tensor>, got: Record<string, Tensor>): Comparison {
  const perOutput: Comparison['perOutput'] = {};
  let worst = 0;
  for (const [k, ref] of Object.entries(reference)) {
    const o = got[k];
    if (!o) throw new LinfoldError(`output '${k}' is missing after folding`);
    if (o.dims.join() !== ref.dims.join()) {
      perOutput[k] = { maxAbsError: Infinity, maxAbsReference: 0, relError: Infinity };
      worst = Infinity;
      continue;
    }
    const { maxAbsError, maxAbsReference, maxRelError: rel } = compareValues(o.numbers(), ref.numbers());
    perOutput[k] = { maxAbsError, maxAbsReference, relError: rel };
    worst = Math.max(worst, rel);
  }
  return { maxRelError: worst, perOutput };
}

/**
 * Session options for timing: onnxruntime's intra-op threads spin after each run by default, and a second
 * session run right after steals nothing but their cores (measured: an identical model 5× slower when timed
 * in alternation). Spinning off makes alternating measurements fair.
 */
export const TIMING_OPTIONS = { extra: { session: { intra_op: { allow_spinning: '0' } } } };

/** Median (or fastest) wall time (ms) of `runs` onnxruntime-node runs after `warmup` runs. */
export async function measureLatency(model: Model | Uint8Array, feeds: Record<string, Tensor>, runs = 20, warmup = 3, stat: 'median' | 'min' = 'median', options: Parameters<typeof ortSession>[2] = TIMING_OPTIONS): Promise<number> {
  const session = await ortSession(model instanceof Uint8Array ? model : encodeModel(model), 'model', options);
  try {
    for (let i = 0; i < warmup; i++) await runOrt(session, feeds);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await runOrt(session, feeds);
      times.push(performance.now() - t0);
    }
    return stat === 'min' ? Math.min(...times) : median(times);
  } finally {
    await session.release?.();
  }
}

/**
 * Median latencies (ms) of two models timed in alternation — same warm-up, same thermal and scheduling
 * conditions — so before/after ratios are not skewed by which one ran first.
 */
export async function pairedLatency(a: Model | Uint8Array, b: Model | Uint8Array, feeds: Record<string, Tensor>, runs = 20, warmup = 3): Promise<[number, number]> {
  const [ta, tb] = await alternatingLatency([a, b], feeds, runs, warmup);
  return [ta, tb];
}

/** Median latencies (ms) of several models timed in turn, the order rotating from run to run. */
export async function alternatingLatency(models: (Model | Uint8Array)[], feeds: Record<string, Tensor>, runs = 20, warmup = 3): Promise<number[]> {
  const sessions: OrtSession[] = [];
  try {
    for (const m of models) sessions.push(await ortSession(m instanceof Uint8Array ? m : encodeModel(m), 'model', TIMING_OPTIONS));
    for (let i = 0; i < warmup; i++) for (const s of sessions) await runOrt(s, feeds);
    const times: number[][] = sessions.map(() => []);
    for (let i = 0; i < runs; i++) {
      for (let k = 0; k < sessions.length; k++) {
        const j = (i + k) % sessions.length;
        const t0 = performance.now();
        await runOrt(sessions[j], feeds);
        times[j].push(performance.now() - t0);
      }
    }
    return times.map(median);
  } finally {
    for (const s of sessions) await s.release?.();
  }
}

export function median(v: number[]): number {
  const s = [...v].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Feeds of batch 1 from the verification feeds (first example of each), for latency runs. */
export function firstExample(feeds: Record<string, Tensor>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) {
    if (!t.dims.length || t.dims[0] <= 1) {
      out[k] = t;
      continue;
    }
    const per = t.size / t.dims[0];
    const d = t.data;
    out[k] = Tensor.fromArray(k, t.dtype, [1, ...t.dims.slice(1)], d.slice(0, per) as typeof d);
  }
  return out;
}
