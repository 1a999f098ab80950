// Training a model whose batch cannot be freed (src/import/batch.ts): the batch runs one example at a time on
// the tfjs executor and in onnxruntime (the teacher). The loss over the batch is then built from per-example
// outputs on one gradient tape: the gradients of the examples are summed (gradient accumulation) and the
// optimizer steps once per batch, as with a batched model.
import * as ort from 'onnxruntime-node';
import type { Model } from '../import/ir.js';
import { allocArray, type TypedArray } from '../import/tensor.js';
import type { OrtSession } from '../import/ort.js';
import type { Executable } from '../import/tfjs/executor.js';
import { describeBatch, makeBatchSymbolic } from '../import/batch.js';
import { tf } from '../import/tfjs/backends.js';

/**
 * For training (linearize): the model with its batch freed, or, when the batch cannot be freed, the model as
 * it is with `perSample` naming the inputs fixed at 1: the caller then runs it one example at a time
 * (perSampleExecutable, perSampleSession), which for a loss over the batch is gradient accumulation.
 */
export async function trainableBatch(model: Model, log?: (msg: string) => void): Promise<{ model: Model; perSample?: string[] }> {
  const r = await makeBatchSymbolic(model);
  if (r.changed) log?.(describeBatch(r));
  if (!r.reason) return { model: r.model };
  log?.(`batch: kept fixed at 1 (${r.reason}); training runs one example at a time and sums the gradients`);
  return { model, perSample: r.inputs };
}

/** Per-example outputs joined into a batch: along axis 0 when they keep a leading 1, stacked otherwise. */
const joinOutputs = <T>(outs: Record<string, T>[], dims: (t: T) => readonly number[], cat: (ts: T[]) => T, stack: (ts: T[]) => T): Record<string, T> =>
  Object.fromEntries(Object.keys(outs[0]).map((k) => {
    const ts = outs.map((o) => o[k]);
    return [k, dims(ts[0])[0] === 1 ? cat(ts) : stack(ts)];
  }));

/** `exe` running the batch one example at a time when `perSample` names the inputs fixed at 1 (else `exe` itself). */
export function perSampleExecutable(exe: Executable, perSample: string[] | undefined): Executable {
  if (!perSample?.length) return exe;
  const run = exe.run.bind(exe);
  exe.run = (feeds, opts) => {
    const n = feeds[perSample[0]].shape[0];
    const outs: Record<string, tf.Tensor>[] = [];
    for (let k = 0; k < n; k++) {
      const one = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, perSample.includes(name) ? tf.slice(t, k, 1) : t]));
      outs.push(run(one, opts));
      for (const name of perSample) one[name].dispose();
    }
    const joined = joinOutputs(outs, (t) => t.shape, (ts) => tf.concat(ts, 0), (ts) => tf.stack(ts));
    for (const o of outs) tf.dispose(Object.values(o));
    return joined;
  };
  return exe;
}

/** An onnxruntime session that runs the batch one example at a time (the session itself when `perSample` is empty). */
export function perSampleSession(session: OrtSession, perSample: string[] | undefined): OrtSession {
  if (!perSample?.length) return session;
  const run = async (feeds: Record<string, ort.Tensor>) => {
    const n = feeds[perSample[0]].dims[0];
    const outs: Record<string, ort.Tensor>[] = [];
    for (let k = 0; k < n; k++) {
      const one = Object.fromEntries(Object.entries(feeds).map(([name, t]) => {
        if (!perSample.includes(name)) return [name, t];
        const size = t.size / n;
        return [name, new ort.Tensor(t.type, (t.data as TypedArray).subarray(k * size, (k + 1) * size) as Float32Array, [1, ...t.dims.slice(1)])];
      }));
      outs.push(await session.run(one));
    }
    const join = (ts: ort.Tensor[], dims: number[]) => {
      const out = allocArray(ts[0].type as never, ts[0].size * ts.length) as unknown as { set(a: TypedArray, o: number): void };
      ts.forEach((t, k) => out.set(t.data as TypedArray, k * t.size));
      return new ort.Tensor(ts[0].type, out as unknown as Float32Array, dims);
    };
    const joined = joinOutputs(outs, (t) => t.dims, (ts) => join(ts, [ts.length * ts[0].dims[0], ...ts[0].dims.slice(1)]), (ts) => join(ts, [ts.length, ...ts[0].dims]));
    for (const o of outs) for (const t of Object.values(o)) t.dispose?.();
    return joined;
  };
  return { run, release: () => session.release(), inputNames: session.inputNames, outputNames: session.outputNames } as unknown as OrtSession;
}
