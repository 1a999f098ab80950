// NumPy .npy / .npz reading. Arrays are read lazily by row from disk, so data larger than memory streams.
import { product } from '../import/shape-math.js';
import { closeSync, openSync, readSync, fstatSync, readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { LinfoldError } from '../errors.js';

export type NpyDtype = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'int8' | 'bool';
const DESCR: Record<string, NpyDtype> = {
  '<f4': 'float32', '<f8': 'float64', '<i8': 'int64', '<i4': 'int32', '|u1': 'uint8', '<u1': 'uint8', '|i1': 'int8', '|b1': 'bool',
};
const ITEM: Record<NpyDtype, number> = { float32: 4, float64: 8, int64: 8, int32: 4, uint8: 1, int8: 1, bool: 1 };

/** A row-addressable array: rows along the first axis, read on demand. */
export interface RowSource {
  dtype: NpyDtype;
  shape: number[];
  /** Copies rows `index` (any order) into a float64-compatible number array view. */
  rows(index: ArrayLike<number>): Float64Array;
}

interface Header { dtype: NpyDtype; shape: number[]; dataOffset: number }

function parseHeader(bytes: Uint8Array, label: string): Header {
  if (bytes.length < 10 || String.fromCharCode(...bytes.subarray(1, 6)) !== 'NUMPY' || bytes[0] !== 0x93)
    throw new LinfoldError(`${label}: not a .npy file (bad magic)`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const text = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(text)?.[1];
  const fortran = /'fortran_order':\s*True/.test(text);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1];
  if (!descr || shapeText === undefined) throw new LinfoldError(`${label}: unreadable .npy header`);
  const dtype = DESCR[descr];
  if (!dtype) throw new LinfoldError(`${label}: dtype '${descr}' is not supported (use float32, float64, int64, int32, uint8)`);
  if (fortran) throw new LinfoldError(`${label}: Fortran-ordered arrays are not supported (save with np.ascontiguousarray)`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  return { dtype, shape, dataOffset: start + headerLen };
}

function decodeRows(dtype: NpyDtype, bytes: Uint8Array, out: Float64Array, at: number): void {
  const n = bytes.byteLength / ITEM[dtype];
  const src = bytes.byteOffset % ITEM[dtype] === 0 ? bytes : new Uint8Array(bytes);
  const b = src.buffer, o = src.byteOffset;
  const arr =
    dtype === 'float32' ? new Float32Array(b, o, n) : dtype === 'float64' ? new Float64Array(b, o, n)
    : dtype === 'int32' ? new Int32Array(b, o, n) : dtype === 'int8' ? new Int8Array(b, o, n)
    : dtype === 'int64' ? new BigInt64Array(b, o, n) : new Uint8Array(b, o, n);
  for (let i = 0; i < n; i++) out[at + i] = Number(arr[i]);
}

class NpyFileRows implements RowSource {
  private constructor(readonly dtype: NpyDtype, readonly shape: number[], private fd: number, private offset: number, private label: string) {}

  static open(path: string): NpyFileRows {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      throw new LinfoldError(`${path}: cannot open`);
    }
    const head = new Uint8Array(4096);
    readSync(fd, head, 0, head.length, 0);
    const h = parseHeader(head, path);
    const want = h.dataOffset + product(h.shape) * ITEM[h.dtype];
    if (fstatSync(fd).size < want) throw new LinfoldError(`${path}: truncated (${fstatSync(fd).size} of ${want} bytes)`);
    return new NpyFileRows(h.dtype, h.shape, fd, h.dataOffset, path);
  }

  rows(index: ArrayLike<number>): Float64Array {
    const rowElems = product(this.shape.slice(1));
    const rowBytes = rowElems * ITEM[this.dtype];
    const out = new Float64Array(index.length * rowElems);
    const buf = new Uint8Array(rowBytes);
    for (let k = 0; k < index.length; k++) {
      const r = index[k];
      if (!(r >= 0 && r < this.shape[0])) throw new LinfoldError(`${this.label}: row ${r} out of range`);
      readSync(this.fd, buf, 0, rowBytes, this.offset + r * rowBytes);
      decodeRows(this.dtype, buf, out, k * rowElems);
    }
    return out;
  }

  close(): void {
    closeSync(this.fd);
  }
}

class MemoryRows implements RowSource {
  constructor(readonly dtype: NpyDtype, readonly shape: number[], private bytes: Uint8Array) {}
  rows(index: ArrayLike<number>): Float64Array {
    const rowElems = product(this.shape.slice(1));
    const rowBytes = rowElems * ITEM[this.dtype];
    const out = new Float64Array(index.length * rowElems);
    for (let k = 0; k < index.length; k++)
      decodeRows(this.dtype, this.bytes.subarray(index[k] * rowBytes, (index[k] + 1) * rowBytes), out, k * rowElems);
    return out;
  }
}

export function openNpy(path: string): RowSource {
  return NpyFileRows.open(path);
}

/** The arrays of an .npz archive (stored or deflated entries), decompressed into memory. */
export function readNpz(path: string): Map<string, RowSource> {
  let zip: Buffer;
  try {
    zip = readFileSync(path);
  } catch {
    throw new LinfoldError(`${path}: cannot open`);
  }
  const out = new Map<string, RowSource>();
  // walk the central directory (end record is in the last 64 KiB + 22 bytes)
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65558); i--) if (zip.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) throw new LinfoldError(`${path}: not an .npz (zip) file`);
  let p = zip.readUInt32LE(eocd + 16);
  const count = zip.readUInt16LE(eocd + 10);
  for (let e = 0; e < count; e++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new LinfoldError(`${path}: corrupt zip directory`);
    const method = zip.readUInt16LE(p + 10);
    let csize = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28), extraLen = zip.readUInt16LE(p + 30), commentLen = zip.readUInt16LE(p + 32);
    let local = zip.readUInt32LE(p + 42);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLen);
    // zip64 sizes/offsets (numpy writes them for large arrays)
    if (csize === 0xffffffff || local === 0xffffffff) {
      const extra = zip.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
      for (let q = 0; q + 4 <= extra.length; ) {
        const id = extra.readUInt16LE(q), len = extra.readUInt16LE(q + 2);
        if (id === 1) {
          let r = q + 4;
          if (zip.readUInt32LE(p + 24) === 0xffffffff) r += 8;
          if (csize === 0xffffffff) { csize = Number(extra.readBigUInt64LE(r)); r += 8; }
          if (local === 0xffffffff) local = Number(extra.readBigUInt64LE(r));
        }
        q += 4 + len;
      }
    }
    p += 46 + nameLen + extraLen + commentLen;
    const dataStart = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(dataStart, dataStart + csize);
    const bytes = method === 0 ? raw : method === 8 ? inflateRawSync(raw) : undefined;
    if (!bytes) throw new LinfoldError(`${path}: entry '${name}' uses an unsupported compression`);
    const h = parseHeader(bytes, `${path}:${name}`);
    out.set(name.replace(/\.npy$/, ''), new MemoryRows(h.dtype, h.shape, bytes.subarray(h.dataOffset)));
  }
  return out;
}
