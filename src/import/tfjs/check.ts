// `linfold check`: runs the TensorFlow.js import and onnxruntime-node on the same seeded random inputs and
// reports, per output, max |tfjs - ort| / max |ort|.
import { randomFeeds } from '../random.js';
import type { Model } from '../ir.js';
import { Tensor, compareValues } from '../tensor.js';
import { ortSession, runOrt } from '../ort.js';
import { tf, useBackend, currentBackend, wasmThreads, type BackendName } from './backends.js';
import { lookupKernel } from './kernels.js';
import { compile, feedsToTf, outputsToIR } from './executor.js';
import { opsetOf } from '../ir.js';
import { makeBatchSymbolic, describeBatch } from '../batch.js';

export interface CheckOptions {
  /** Shapes of the inputs, by name; symbolic dimensions default to 2 (first axis) or 8 (others). */
  inputShapes?: Record<string, number[]>;
  /** Largest accepted relative error (default 1e-4). */
  tolerance?: number;
  backend?: BackendName | 'auto';
  /** Seed of the random inputs (default 0). */
  seed?: number;
}

export interface CheckResult {
  ops: { op: string; count: number; supported: boolean }[];
  backend: string;
  /** wasm: its thread count. */
  threads?: number;
  outputs: { name: string; maxRelError: number; maxAbsError: number }[];
  ok: boolean;
  /** Why the comparison could not run (unsupported ops, a failing kernel, onnxruntime refusing the model). */
  error?: string;
  /** How a batch fixed at 1 was freed (the comparison then runs on the freed model at batch 2), or why not. */
  batch?: string;
}

export async function checkModel(fixed: Model, opts: CheckOptions = {}): Promise<CheckResult> {
  const tolerance = opts.tolerance ?? 1e-4;
  const freed = await makeBatchSymbolic(fixed);
  const model = freed.model;
  const counts = new Map<string, { op: string; count: number; supported: boolean }>();
  for (const n of model.graph.nodes) {
    const name = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    const e = counts.get(name);
    if (e) e.count++;
    else counts.set(name, { op: name, count: 1, supported: !!lookupKernel(n.opType, n.domain, opsetOf(model, n.domain) ?? 1) });
  }
  const ops = [...counts.values()].sort((a, b) => b.count - a.count || a.op.localeCompare(b.op));
  const backend = opts.backend ? await useBackend(opts.backend) : await currentBackend();
  const result: CheckResult = { ops, backend, ...(backend === 'wasm' ? { threads: wasmThreads() } : {}), outputs: [], ok: false };
  if (freed.changed) result.batch = describeBatch(freed);
  if (freed.reason) result.batch = `batch: kept fixed at 1 (${freed.reason}); linearize runs it one example at a time`;
  const missing = ops.filter((o) => !o.supported);
  if (missing.length) {
    result.error = `no TensorFlow.js kernel for ${missing.map((o) => o.op).join(', ')}`;
    return result;
  }
  const feeds = randomFeeds(model.graph, { inputShapes: opts.inputShapes, seed: opts.seed ?? 0, otherDims: 8 });
  let reference: Record<string, Tensor>;
  try {
    reference = await runOrt(await ortSession(model, model.path ?? 'model'), feeds);
  } catch (e) {
    result.error = (e as Error).message;
    return result;
  }
  const exe = compile(model);
  try {
    const tfFeeds = feedsToTf(feeds);
    let got: Record<string, Tensor>;
    try {
      const out = exe.run(tfFeeds);
      got = outputsToIR(exe, out);
      tf.dispose(Object.values(out));
    } finally {
      tf.dispose(Object.values(tfFeeds));
    }
    for (const o of model.graph.outputs) {
      const ref = reference[o.name], mine = got[o.name];
      if (!ref || !mine) continue;
      result.outputs.push({ name: o.name, ...compareTensors(mine, ref) });
    }
    result.ok = result.outputs.length > 0 && result.outputs.every((o) => o.maxRelError <= tolerance);
  } catch (e) {
    result.error = (e as Error).message;
  } finally {
    exe.dispose();
  }
  return result;
}

/** max |a - b| and that over max |b| (max |a - b| itself when b is all zeros); an infinite error when shapes differ. */
export function compareTensors(a: Tensor, b: Tensor): { maxRelError: number; maxAbsError: number } {
  if (a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i]))
    return { maxRelError: Infinity, maxAbsError: Infinity };
  const { maxRelError, maxAbsError } = compareValues(a.numbers(), b.numbers());
  return { maxRelError, maxAbsError };
}
