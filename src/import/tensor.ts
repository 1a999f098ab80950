import { readSync, writeSync, openSync, closeSync } from 'node:fs';
import { LinfoldError } from '../errors.js';

/** Element types, named as tfjs/numpy do; the ONNX TensorProto.DataType code is in DTYPE_CODE. */
export type DType =
  | 'float32' | 'uint8' | 'int8' | 'uint16' | 'int16' | 'int32' | 'int64' | 'string' | 'bool'
  | 'float16' | 'float64' | 'uint32' | 'uint64' | 'complex64' | 'complex128' | 'bfloat16'
  | 'float8e4m3fn' | 'float8e4m3fnuz' | 'float8e5m2' | 'float8e5m2fnuz' | 'uint4' | 'int4' | 'float4e2m1';

export const DTYPE_CODE: Record<DType, number> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9, float16: 10,
  float64: 11, uint32: 12, uint64: 13, complex64: 14, complex128: 15, bfloat16: 16, float8e4m3fn: 17,
  float8e4m3fnuz: 18, float8e5m2: 19, float8e5m2fnuz: 20, uint4: 21, int4: 22, float4e2m1: 23,
};
const CODE_DTYPE = new Map<number, DType>(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));

export function dtypeFromCode(code: number): DType {
  const d = CODE_DTYPE.get(code);
  if (!d) throw new LinfoldError(`unknown ONNX data type code ${code}`);
  return d;
}

/** Bits per element (sub-byte types pack two per byte). */
const ELEMENT_BITS: Record<DType, number> = {
  float32: 32, uint8: 8, int8: 8, uint16: 16, int16: 16, int32: 32, int64: 64, string: 0, bool: 8, float16: 16,
  float64: 64, uint32: 32, uint64: 64, complex64: 64, complex128: 128, bfloat16: 16, float8e4m3fn: 8,
  float8e4m3fnuz: 8, float8e5m2: 8, float8e5m2fnuz: 8, uint4: 4, int4: 4, float4e2m1: 4,
};

export function byteLength(dtype: DType, size: number): number {
  return Math.ceil((ELEMENT_BITS[dtype] * size) / 8);
}

export const isFloat = (d: DType | undefined): boolean =>
  d === 'float32' || d === 'float16' || d === 'float64' || d === 'bfloat16';

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;

/** Typed-array view per dtype; types without a JS array (float16, bfloat16, 8/4-bit floats) stay as raw bits. */
function arrayFromBytes(dtype: DType, bytes: Uint8Array, size: number): TypedArray {
  // copy (Buffer.slice would return a view) when the bytes sit at an offset the typed array cannot start at
  const aligned = (n: number) => (bytes.byteOffset % n === 0 ? bytes : new Uint8Array(bytes));
  switch (dtype) {
    case 'float32': { const b = aligned(4); return new Float32Array(b.buffer, b.byteOffset, size); }
    case 'float64': { const b = aligned(8); return new Float64Array(b.buffer, b.byteOffset, size); }
    case 'int32': { const b = aligned(4); return new Int32Array(b.buffer, b.byteOffset, size); }
    case 'uint32': { const b = aligned(4); return new Uint32Array(b.buffer, b.byteOffset, size); }
    case 'int64': { const b = aligned(8); return new BigInt64Array(b.buffer, b.byteOffset, size); }
    case 'uint64': { const b = aligned(8); return new BigUint64Array(b.buffer, b.byteOffset, size); }
    case 'int16': { const b = aligned(2); return new Int16Array(b.buffer, b.byteOffset, size); }
    case 'uint16': case 'float16': case 'bfloat16': {
      const b = aligned(2); return new Uint16Array(b.buffer, b.byteOffset, size);
    }
    case 'int8': return new Int8Array(bytes.buffer, bytes.byteOffset, size);
    default: return new Uint8Array(bytes.buffer, bytes.byteOffset, byteLength(dtype, size));
  }
}

export function allocArray(dtype: DType, size: number): TypedArray {
  return arrayFromBytes(dtype, new Uint8Array(byteLength(dtype, size)), size);
}

/** Where an initializer's bytes live in an external data file. */
export interface ExternalRef { file: string; offset: number; length: number }

type Source =
  | { kind: 'array'; array: TypedArray }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'external'; ref: ExternalRef }
  | { kind: 'strings'; strings: Uint8Array[] };

/**
 * A constant tensor (initializer or attribute value). Bytes are decoded lazily, so auditing a model never
 * copies its weights; external data is read from disk only when `data` or `bytes` is asked for.
 */
export class Tensor {
  private source: Source;
  private cached?: TypedArray;

  private constructor(readonly name: string, readonly dtype: DType, readonly dims: number[], source: Source) {
    this.source = source;
  }

  static fromArray(name: string, dtype: DType, dims: number[], array: TypedArray): Tensor {
    const t = new Tensor(name, dtype, dims, { kind: 'array', array });
    if (array.length !== t.size && !(array instanceof Uint8Array && dtype !== 'uint8' && dtype !== 'bool'))
      throw new LinfoldError(`tensor '${name}': ${array.length} values for shape [${dims}]`);
    return t;
  }
  static fromBytes(name: string, dtype: DType, dims: number[], bytes: Uint8Array): Tensor {
    const t = new Tensor(name, dtype, dims, { kind: 'bytes', bytes });
    const want = byteLength(dtype, t.size);
    if (bytes.byteLength !== want)
      throw new LinfoldError(`tensor '${name}': ${bytes.byteLength} bytes of data, shape [${dims}] of ${dtype} needs ${want}`);
    return t;
  }
  static fromExternal(name: string, dtype: DType, dims: number[], ref: ExternalRef): Tensor {
    return new Tensor(name, dtype, dims, { kind: 'external', ref });
  }
  static fromStrings(name: string, dims: number[], strings: Uint8Array[]): Tensor {
    return new Tensor(name, 'string', dims, { kind: 'strings', strings });
  }
  /** Float32 / int64 helpers for building graphs in code. */
  static f32(name: string, dims: number[], values: ArrayLike<number>): Tensor {
    return Tensor.fromArray(name, 'float32', dims, Float32Array.from(values));
  }
  static i64(name: string, dims: number[], values: ArrayLike<number | bigint>): Tensor {
    return Tensor.fromArray(name, 'int64', dims, BigInt64Array.from(Array.from(values, (v) => BigInt(v))));
  }

  get size(): number {
    let n = 1;
    for (const d of this.dims) n *= d;
    return n;
  }
  get byteLength(): number {
    return this.source.kind === 'external' ? this.source.ref.length : byteLength(this.dtype, this.size);
  }
  get isExternal(): boolean {
    return this.source.kind === 'external';
  }
  get externalRef(): ExternalRef | undefined {
    return this.source.kind === 'external' ? this.source.ref : undefined;
  }

  /** The values as a typed array (raw bits for float16/bfloat16/8-bit floats, packed bytes for 4-bit types). */
  get data(): TypedArray {
    if (this.cached) return this.cached;
    const s = this.source;
    if (s.kind === 'strings') throw new LinfoldError(`tensor '${this.name}' holds strings, not numbers`);
    this.cached = s.kind === 'array' ? s.array : arrayFromBytes(this.dtype, this.bytes, this.size);
    return this.cached;
  }

  get strings(): Uint8Array[] {
    if (this.source.kind !== 'strings') throw new LinfoldError(`tensor '${this.name}' does not hold strings`);
    return this.source.strings;
  }

  /** Little-endian raw bytes, as ONNX's raw_data stores them. */
  get bytes(): Uint8Array {
    const s = this.source;
    switch (s.kind) {
      case 'bytes': return s.bytes;
      case 'array': return new Uint8Array(s.array.buffer, s.array.byteOffset, s.array.byteLength);
      case 'external': return readExternal(this.name, s.ref);
      case 'strings': throw new LinfoldError(`tensor '${this.name}' holds strings, not bytes`);
    }
  }

  /** Appends the raw bytes to an open file, streaming external data in chunks (no 2 GiB copy in memory). */
  writeBytesTo(fd: number): number {
    const s = this.source;
    if (s.kind !== 'external') return writeAll(fd, this.bytes);
    const src = openExternal(this.name, s.ref);
    try {
      const chunk = new Uint8Array(Math.min(CHUNK, s.ref.length));
      for (let done = 0; done < s.ref.length; ) {
        const n = readChunk(src, this.name, s.ref, chunk, done);
        writeAll(fd, chunk.subarray(0, n));
        done += n;
      }
    } finally {
      closeSync(src);
    }
    return s.ref.length;
  }

  /** Values as JS numbers (int64 converted, float16/bfloat16 decoded). */
  numbers(): number[] {
    const d = this.data;
    if (this.dtype === 'float16') return Array.from(d as Uint16Array, halfToFloat);
    if (this.dtype === 'bfloat16') return Array.from(d as Uint16Array, bfloatToFloat);
    if (this.dtype === 'bool') return Array.from(d as Uint8Array, (v) => (v ? 1 : 0));
    return Array.from(d as ArrayLike<number | bigint>, Number);
  }

  /** Float32 copy of a floating tensor (any width). */
  float32(): Float32Array {
    if (this.dtype === 'float32') return this.data as Float32Array;
    return Float32Array.from(this.numbers());
  }

  withName(name: string): Tensor {
    return new Tensor(name, this.dtype, this.dims, this.source);
  }
}

/** fs reads and writes take at most 2 GiB per call. */
const CHUNK = 64 * 2 ** 20;

function openExternal(name: string, ref: ExternalRef): number {
  try {
    return openSync(ref.file, 'r');
  } catch (e) {
    throw new LinfoldError(`${ref.file}: external data file of tensor '${name}' cannot be read (${(e as NodeJS.ErrnoException).code})`);
  }
}

/** Reads the next piece of an external tensor (starting `done` bytes in) into `into`; returns the byte count. */
function readChunk(fd: number, name: string, ref: ExternalRef, into: Uint8Array, done: number): number {
  const want = Math.min(into.byteLength, ref.length - done);
  let got = 0;
  while (got < want) {
    const n = readSync(fd, into, got, want - got, ref.offset + done + got);
    if (n === 0) throw new LinfoldError(`${ref.file}: external data of tensor '${name}' is truncated (wanted ${ref.length} bytes at offset ${ref.offset})`);
    got += n;
  }
  return got;
}

function readExternal(name: string, ref: ExternalRef): Uint8Array {
  const fd = openExternal(name, ref);
  try {
    const out = new Uint8Array(ref.length);
    for (let done = 0; done < ref.length; ) done += readChunk(fd, name, ref, out.subarray(done, done + CHUNK), done);
    return out;
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): number {
  for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, Math.min(CHUNK, bytes.byteLength - done));
  return bytes.byteLength;
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export function bfloatToFloat(b: number): number {
  const buf = new Float32Array(1);
  new Uint32Array(buf.buffer)[0] = b << 16;
  return buf[0];
}

export interface ValueComparison {
  maxAbsError: number;
  /** max |ref| over its finite values */
  maxAbsReference: number;
  /** maxAbsError / maxAbsReference (maxAbsError itself where the reference is all zeros) */
  maxRelError: number;
}

/**
 * How far `got` is from `ref`, element by element: NaN against NaN counts as equal, NaN against a number as an
 * infinite error; arrays of different lengths differ infinitely.
 */
export function compareValues(got: ArrayLike<number>, ref: ArrayLike<number>): ValueComparison {
  if (got.length !== ref.length) return { maxAbsError: Infinity, maxAbsReference: 0, maxRelError: Infinity };
  let err = 0, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = got[i], b = ref[i];
    const d = a === b || (Number.isNaN(a) && Number.isNaN(b)) ? 0 : Math.abs(a - b);
    err = Math.max(err, Number.isNaN(d) ? Infinity : d);
    if (Number.isFinite(b)) scale = Math.max(scale, Math.abs(b));
  }
  return { maxAbsError: err, maxAbsReference: scale, maxRelError: scale > 0 ? err / scale : err };
}

/** The index of the largest value in each of `rows` equal rows of `v` (class predictions from logits). */
export function argmaxRows(v: ArrayLike<number>, rows: number): number[] {
  const c = v.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let j = 1; j < c; j++) if (v[r * c + j] > v[r * c + best]) best = j;
    return best;
  });
}
