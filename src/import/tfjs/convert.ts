// IR tensors ⇄ tfjs tensors. tfjs has no int64 (nor float64, int8, ...): integers run as int32, floats as
// float32. int64 values outside the int32 range saturate (INT64_MAX/INT64_MIN, used by Slice as "to the end",
// stay "very large"); converting back, a value declared int64 in the model is widened again.
import { tf, type TfTensor, tfDType } from './registry.js';
import { Tensor, type DType, halfToFloat, bfloatToFloat } from '../tensor.js';
import { LinfoldError } from '../../errors.js';

const I32_MAX = 2147483647;
const I32_MIN = -2147483648;

/** Whether tfjs can hold values of this ONNX dtype (after the int/float narrowing above). */
export function tfjsCanHold(d: DType): boolean {
  return !['string', 'complex64', 'complex128', 'uint4', 'int4', 'float4e2m1', 'float8e4m3fn', 'float8e4m3fnuz',
    'float8e5m2', 'float8e5m2fnuz'].includes(d);
}

/** A host array of the values of an IR tensor in the tfjs dtype it runs as. */
export function hostValues(t: Tensor): Float32Array | Int32Array | Uint8Array {
  const d = t.dtype;
  if (!tfjsCanHold(d)) throw new LinfoldError(`tensor '${t.name}': ${d} values cannot run in TensorFlow.js`);
  const kind = tfDType(d);
  if (kind === 'bool') return Uint8Array.from(t.data as Uint8Array, (v) => (v ? 1 : 0));
  if (kind === 'float32') {
    if (d === 'float32') return t.data as Float32Array;
    if (d === 'float16') return Float32Array.from(t.data as Uint16Array, halfToFloat);
    if (d === 'bfloat16') return Float32Array.from(t.data as Uint16Array, bfloatToFloat);
    return Float32Array.from(t.data as Float64Array);
  }
  if (d === 'int32') return t.data as Int32Array;
  const src = t.data as ArrayLike<number | bigint>;
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = Number(src[i]);
    out[i] = v > I32_MAX ? I32_MAX : v < I32_MIN ? I32_MIN : v;
  }
  return out;
}

export function toTf(t: Tensor): TfTensor {
  const kind = tfDType(t.dtype);
  return tf.tensor(hostValues(t), t.dims.slice(), kind);
}

/** A tfjs tensor back to an IR tensor of ONNX dtype `dtype` (default: float32, int32 or bool as held). */
export function fromTf(name: string, t: TfTensor, dtype?: DType): Tensor {
  const dims = t.shape.slice();
  const v = t.dataSync();
  const want: DType = dtype ?? (t.dtype === 'bool' ? 'bool' : t.dtype === 'int32' ? 'int32' : 'float32');
  switch (want) {
    case 'float32': return Tensor.fromArray(name, 'float32', dims, Float32Array.from(v as ArrayLike<number>));
    case 'float64': return Tensor.fromArray(name, 'float64', dims, Float64Array.from(v as ArrayLike<number>));
    case 'int32': return Tensor.fromArray(name, 'int32', dims, Int32Array.from(v as ArrayLike<number>));
    case 'int64': return Tensor.fromArray(name, 'int64', dims, BigInt64Array.from(v as ArrayLike<number>, (x) => BigInt(Math.trunc(x))));
    case 'uint64': return Tensor.fromArray(name, 'uint64', dims, BigUint64Array.from(v as ArrayLike<number>, (x) => BigInt(Math.trunc(x))));
    case 'bool': return Tensor.fromBytes(name, 'bool', dims, Uint8Array.from(v as ArrayLike<number>, (x) => (x ? 1 : 0)));
    case 'int8': return Tensor.fromArray(name, 'int8', dims, Int8Array.from(v as ArrayLike<number>));
    case 'uint8': return Tensor.fromArray(name, 'uint8', dims, Uint8Array.from(v as ArrayLike<number>));
    case 'int16': return Tensor.fromArray(name, 'int16', dims, Int16Array.from(v as ArrayLike<number>));
    case 'uint16': return Tensor.fromArray(name, 'uint16', dims, Uint16Array.from(v as ArrayLike<number>));
    case 'uint32': return Tensor.fromArray(name, 'uint32', dims, Uint32Array.from(v as ArrayLike<number>));
    case 'bfloat16': {
      const f = Float32Array.from(v as ArrayLike<number>);
      const u = new Uint32Array(f.buffer);
      return Tensor.fromBytes(name, 'bfloat16', dims, new Uint8Array(Uint16Array.from(u, (b) => ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff).buffer));
    }
    case 'float16': return Tensor.fromBytes(name, 'float16', dims, new Uint8Array(Uint16Array.from(v as ArrayLike<number>, floatToHalf).buffer));
    default: throw new LinfoldError(`tensor '${name}': cannot write ${want} values from TensorFlow.js`);
  }
}

export function floatToHalf(val: number): number {
  const f = new Float32Array([val]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  let e = ((x >>> 23) & 0xff) - 127 + 15;
  let m = x & 0x7fffff;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m = (m | 0x800000) >> (1 - e);
    return sign | ((m + 0x1000) >> 13);
  }
  const h = sign | (e << 10) | (m >> 13);
  return m & 0x1000 ? h + 1 : h;
}
