// Writes .npy and .npz files for tests (little-endian, C order), and MNIST subsets as .npy inputs.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { mnist } from '../../src/train/data.js';

type NpyData = Float32Array | Int32Array | BigInt64Array;

function npyBytes(data: NpyData, shape: number[]): Buffer {
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : '<i8';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

export function writeNpy(path: string, data: NpyData, shape: number[]): void {
  writeFileSync(path, npyBytes(data, shape));
}

/** An uncompressed .npz (what np.savez writes): a zip with one <name>.npy entry per array. */
export function writeNpz(path: string, arrays: Record<string, { data: NpyData; shape: number[] }>): void {
  const locals: Buffer[] = [], central: Buffer[] = [];
  let offset = 0;
  for (const [key, a] of Object.entries(arrays)) {
    const name = Buffer.from(`${key}.npy`, 'utf8'), body = npyBytes(a.data, a.shape), crc = crc32(body);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(body.length, 22);
    local.writeUInt16LE(name.length, 26);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(20, 4);
    dir.writeUInt16LE(20, 6);
    dir.writeUInt32LE(crc, 16);
    dir.writeUInt32LE(body.length, 20);
    dir.writeUInt32LE(body.length, 24);
    dir.writeUInt16LE(name.length, 28);
    dir.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    central.push(dir, name);
    offset += local.length + name.length + body.length;
  }
  const dirBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(arrays).length, 8);
  end.writeUInt16LE(Object.keys(arrays).length, 10);
  end.writeUInt32LE(dirBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  writeFileSync(path, Buffer.concat([...locals, dirBytes, end]));
}

/**
 * The first n bundled MNIST digits (seeded shuffle, already normalised) as x<n>.npy (float32 [n, 1, 28, 28])
 * and y<n>.npy (int64 labels) in `dir`.
 */
export function mnistNpy(dir: string, n: number, seed = 5): { x: string; y: string } {
  const b = mnist().train.batches(n, { shuffle: true, seed }).next().value!;
  const x = join(dir, `x${n}.npy`), y = join(dir, `y${n}.npy`);
  writeNpy(x, b.x as Float32Array, b.shape);
  writeNpy(y, BigInt64Array.from(b.y!, (v: number) => BigInt(v)), [n]);
  return { x, y };
}
