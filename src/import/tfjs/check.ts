// `linfold check`: runs the TensorFlow.js import and onnxruntime-node on the same seeded random inputs and
// reports, per output, max |tfjs - ort| / max |ort|.
import type { Model, ValueInfo } from '../ir.js';
import { Tensor } from '../tensor.js';
import { LinfoldError } from '../../errors.js';
import { ortSession, runOrt } from '../ort.js';
import { tf, useBackend, currentBackend, type BackendName } from '../../train/backends.js';
import { lookupKernel } from './kernels.js';
import { compile, feedsToTf, outputsToIR } from './executor.js';
import { opsetOf } from '../ir.js';

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
  outputs: { name: string; maxRelError: number; maxAbsError: number }[];
  ok: boolean;
  /** Why the comparison could not run (unsupported ops, a failing kernel, onnxruntime refusing the model). */
  error?: string;
}

export async function checkModel(model: Model, opts: CheckOptions = {}): Promise<CheckResult> {
  const tolerance = opts.tolerance ?? 1e-4;
  const counts = new Map<string, { op: string; count: number; supported: boolean }>();
  for (const n of model.graph.nodes) {
    const name = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    const e = counts.get(name);
    if (e) e.count++;
    else counts.set(name, { op: name, count: 1, supported: !!lookupKernel(n.opType, n.domain, opsetOf(model, n.domain) ?? 1) });
  }
  const ops = [...counts.values()].sort((a, b) => b.count - a.count || a.op.localeCompare(b.op));
  const backend = opts.backend ? await useBackend(opts.backend) : await currentBackend();
  const result: CheckResult = { ops, backend, outputs: [], ok: false };
  const missing = ops.filter((o) => !o.supported);
  if (missing.length) {
    result.error = `no TensorFlow.js kernel for ${missing.map((o) => o.op).join(', ')}`;
    return result;
  }
  const feeds = randomFeeds(model, opts.inputShapes ?? {}, opts.seed ?? 0);
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

/** max |a - b| and that over max |b| (max |a - b| itself when b is all zeros). Shapes must agree. */
export function compareTensors(a: Tensor, b: Tensor): { maxRelError: number; maxAbsError: number } {
  if (a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i]))
    return { maxRelError: Infinity, maxAbsError: Infinity };
  const x = a.numbers(), y = b.numbers();
  let err = 0, scale = 0;
  for (let i = 0; i < y.length; i++) {
    const bothNaN = Number.isNaN(x[i]) && Number.isNaN(y[i]);
    const d = bothNaN || x[i] === y[i] ? 0 : Math.abs(x[i] - y[i]);
    err = Math.max(err, Number.isNaN(d) ? Infinity : d);
    if (Number.isFinite(y[i])) scale = Math.max(scale, Math.abs(y[i]));
  }
  return { maxAbsError: err, maxRelError: scale > 0 ? err / scale : err };
}

/** Seeded inputs: normal floats, small non-negative integer ids (below the vocabulary of a Gather they index). */
export function randomFeeds(model: Model, shapes: Record<string, number[]>, seed = 0): Record<string, Tensor> {
  const rand = mulberry32(seed);
  const out: Record<string, Tensor> = {};
  for (const info of model.graph.feeds) {
    const shape = shapes[info.name] ?? concreteShape(info);
    const size = shape.reduce((a, b) => a * b, 1);
    const d = info.dtype ?? 'float32';
    if (d === 'float16') throw new LinfoldError(`input '${info.name}': float16 inputs are not supported by check`);
    if (d === 'float32' || d === 'float64') {
      const v = new Float32Array(size);
      for (let i = 0; i < size; i += 2) {
        // Box-Muller
        const u = Math.max(rand(), 1e-12), w = rand();
        const r = Math.sqrt(-2 * Math.log(u));
        v[i] = r * Math.cos(2 * Math.PI * w);
        if (i + 1 < size) v[i + 1] = r * Math.sin(2 * Math.PI * w);
      }
      out[info.name] = d === 'float32' ? Tensor.fromArray(info.name, 'float32', shape, v) : Tensor.fromArray(info.name, 'float64', shape, Float64Array.from(v));
    } else if (d === 'bool') {
      out[info.name] = Tensor.fromBytes(info.name, 'bool', shape, Uint8Array.from({ length: size }, () => (rand() < 0.5 ? 1 : 0)));
    } else {
      const limit = idLimit(model, info.name);
      const vals = Array.from({ length: size }, () => Math.floor(rand() * limit));
      if (d === 'int64') out[info.name] = Tensor.i64(info.name, shape, vals);
      else if (d === 'int32') out[info.name] = Tensor.fromArray(info.name, 'int32', shape, Int32Array.from(vals));
      else throw new LinfoldError(`input '${info.name}': ${d} inputs are not supported by check`);
    }
  }
  return out;
}

function concreteShape(info: ValueInfo): number[] {
  if (!info.shape) throw new LinfoldError(`input '${info.name}' has no declared shape; give it with --input-shape ${info.name}=...`);
  return info.shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? 2 : 8));
}

/** Ids stay below the first dimension of an embedding table the input indexes, and below 10 otherwise. */
function idLimit(model: Model, name: string): number {
  let limit = 10;
  for (const n of model.graph.nodes) {
    if (n.opType === 'Gather' && n.inputs[1] === name) {
      const data = model.graph.initializers.get(n.inputs[0]);
      const axisAttr = n.attrs.axis;
      const axis = axisAttr && axisAttr.type === 'int' ? axisAttr.value : 0;
      if (data) limit = Math.min(limit === 10 ? Infinity : limit, data.dims[axis < 0 ? axis + data.dims.length : axis]);
    }
  }
  return Number.isFinite(limit) ? limit : 10;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
