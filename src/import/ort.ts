// onnxruntime-node as the reference runtime: IR tensors in, IR tensors out.
import * as ort from 'onnxruntime-node';
import { LinfoldError, oneLine } from '../errors.js';
import { Tensor, type DType, type TypedArray } from './tensor.js';
import type { Model } from './ir.js';
import { encodeModel } from './onnx-io.js';

ort.env.logLevel = 'fatal';

export type OrtSession = ort.InferenceSession;

const ORT_TYPES: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32', float64: 'float64', int8: 'int8', uint8: 'uint8', int16: 'int16', uint16: 'uint16',
  int32: 'int32', uint32: 'uint32', int64: 'int64', uint64: 'uint64', bool: 'bool', float16: 'float16', string: 'string',
};

export async function ortSession(model: Model | Uint8Array | string, label = 'model', options: ort.InferenceSession.SessionOptions = {}): Promise<OrtSession> {
  const src = typeof model === 'string' || model instanceof Uint8Array ? model : encodeModel(model);
  try {
    return await ort.InferenceSession.create(src as Uint8Array, { logSeverityLevel: 3, graphOptimizationLevel: 'all', ...options });
  } catch (e) {
    throw new LinfoldError(`${label}: onnxruntime cannot load it (${oneLine((e as Error).message)})`);
  }
}

export function toOrt(t: Tensor): ort.Tensor {
  const type = ORT_TYPES[t.dtype];
  if (!type) throw new LinfoldError(`tensor '${t.name}': onnxruntime-node cannot take ${t.dtype} inputs`);
  if (t.dtype === 'string') return new ort.Tensor('string', t.strings.map((s) => new TextDecoder().decode(s)), t.dims);
  if (t.dtype === 'bool') return new ort.Tensor('bool', Uint8Array.from(t.data as Uint8Array), t.dims);
  return new ort.Tensor(type, t.data as ort.Tensor.DataTypeMap[typeof type], t.dims);
}

export function fromOrt(name: string, t: ort.Tensor): Tensor {
  const dims = [...t.dims];
  const dtype = (Object.entries(ORT_TYPES).find(([, v]) => v === t.type)?.[0] ?? 'float32') as DType;
  if (dtype === 'string') return Tensor.fromStrings(name, dims, (t.data as string[]).map((s) => new TextEncoder().encode(s)));
  const data = t.data as TypedArray;
  const copy = data.slice() as TypedArray;
  return dtype === 'bool' || dtype === 'float16'
    ? Tensor.fromBytes(name, dtype, dims, new Uint8Array(copy.buffer))
    : Tensor.fromArray(name, dtype, dims, copy);
}

export async function runOrt(session: OrtSession, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const inputs: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) inputs[k] = toOrt(v);
  let out: ort.InferenceSession.ReturnType;
  try {
    out = await session.run(inputs);
  } catch (e) {
    throw new LinfoldError(`onnxruntime failed to run the model (${oneLine((e as Error).message)})`);
  }
  const res: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(out)) {
    res[k] = fromOrt(k, v);
    v.dispose?.();
  }
  return res;
}
