import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { arrays, mnist, permutation } from '../src/train/data.js';
import { LinfoldError } from '../src/errors.js';

// values written by NumPy (fixtures/make_data.py): the independent reference for the readers
const row3 = readFileSync('fixtures/data/x_row3.txt', 'utf8').trim().split('\n').map(Number);

function firstBatch(ds: ReturnType<typeof arrays>, split: 'train' | 'validation', n: number) {
  return ds[split].batches(n).next().value!;
}

test('.npy and .npz (stored and deflated) read the values NumPy wrote', () => {
  for (const [inputs, labels] of [['fixtures/data/x.npy', 'fixtures/data/y.npy'], ['fixtures/data/xy.npz', undefined], ['fixtures/data/xy_compressed.npz', undefined]] as const) {
    const ds = arrays(inputs, { labels, valFraction: 0.2 });
    assert.deepEqual(ds.sampleShape, [1, 4, 4]);
    assert.equal(ds.hasLabels, true);
    assert.equal(ds.numClasses, 3);
    // rows 4 and 9 are validation (every 5th), so train row index 3 is file row 3
    assert.equal(ds.train.size, 8);
    assert.equal(ds.validation.size, 2);
    const b = firstBatch(ds, 'train', 8);
    assert.deepEqual(b.shape, [8, 1, 4, 4]);
    Array.from(b.x.subarray(3 * 16, 4 * 16) as Float32Array).forEach((v: number, i: number) => assert.ok(Math.abs(v - row3[i]) < 1e-6, `${inputs}[3][${i}]`));
    assert.deepEqual(Array.from(b.y!), [0, 1, 2, 0, 2, 0, 1, 2]);
    assert.deepEqual(Array.from(firstBatch(ds, 'validation', 8).y!), [1, 0]);
  }
});

test('token arrays come out as int32 ids', () => {
  const ds = arrays('fixtures/data/tokens.npy');
  assert.equal(ds.dtype, 'int32');
  assert.equal(ds.hasLabels, false);
  const b = firstBatch(ds, 'train', 2);
  assert.ok(b.x instanceof Int32Array);
  assert.ok(Array.from(b.x as Int32Array).every((v: number) => v >= 0 && v < 100));
});

test('shuffling is a seeded permutation, different per epoch, batches cover the split once', () => {
  const p = permutation(100, 3);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assert.deepEqual(permutation(100, 3), p);
  assert.notDeepEqual(permutation(100, 4), p);
  const ds = mnist({ limit: 500 });
  const seen = (epoch: number) => [...ds.train.batches(64, { shuffle: true, seed: 1, epoch })].map((b) => b.x[300]);
  assert.notDeepEqual(seen(0), seen(1));
  assert.deepEqual(seen(0), seen(0));
  const total = [...ds.train.batches(64, { shuffle: true, seed: 1 })].reduce((s, b) => s + b.size, 0);
  assert.equal(total, ds.train.size);
});

test('mnist: 10 000 digits split 4:1 per class, normalised as the fixture was trained', () => {
  const ds = mnist();
  assert.equal(ds.train.size + ds.validation.size, 10000 - (10000 - ds.train.size - ds.validation.size));
  assert.ok(Math.abs(ds.validation.size / (ds.train.size + ds.validation.size) - 0.2) < 0.01);
  const b = ds.validation.batches(10000).next().value!;
  const counts = new Array(10).fill(0);
  b.y!.forEach((c: number) => counts[c]++);
  assert.ok(counts.every((c) => c >= 150), `every class in validation: ${counts}`);
  let min = Infinity, max = -Infinity;
  for (const v of b.x) { min = Math.min(min, v); max = Math.max(max, v); }
  assert.ok(Math.abs(min - (0 - 0.1307) / 0.3081) < 1e-5 && Math.abs(max - (1 - 0.1307) / 0.3081) < 1e-2);
});

test('bad data files fail with a clear message', () => {
  assert.throws(() => arrays('fixtures/data/x_row3.txt'), (e: Error) => e instanceof LinfoldError && /not a \.npy file/.test(e.message));
  assert.throws(() => arrays('fixtures/data/x.npy', { labels: 'fixtures/data/tokens.npy' }), /6 labels for 10 inputs/);
  assert.throws(() => arrays('fixtures/data/nope.npy'), /cannot open/);
});
