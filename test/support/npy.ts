// Writes .npy files for tests (little-endian, C order), and MNIST subsets as .npy inputs.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mnist } from '../../src/train/data.js';

export function writeNpy(path: string, data: Float32Array | Int32Array | BigInt64Array, shape: number[]): void {
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : '<i8';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  writeFileSync(path, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
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
