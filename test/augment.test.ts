import { test } from 'node:test';
import assert from 'node:assert/strict';
import { augmentBatch, parseAugmentation } from '../src/train/augment.js';
import { LinfoldError } from '../src/errors.js';
import type { Batch } from '../src/train/data.js';

/** Reference: sample s of an [n, c, h, w] array translated by (dy, dx), edges repeated, optionally mirrored. */
function translated(x: Float32Array, shape: number[], s: number, dy: number, dx: number, mirror: boolean): Float32Array {
  const [, c, h, w] = shape;
  const out = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const si = Math.min(h - 1, Math.max(0, i - dy));
        const sj0 = Math.min(w - 1, Math.max(0, j - dx));
        const sj = mirror ? w - 1 - sj0 : sj0;
        out[(ch * h + i) * w + j] = x[((s * c + ch) * h + si) * w + sj];
      }
  return out;
}

function batch(n: number, c: number, h: number, w: number): Batch {
  // distinct values so any misplaced pixel shows
  return { x: Float32Array.from({ length: n * c * h * w }, (_, k) => k * 0.5 + 1), shape: [n, c, h, w], size: n, y: new Int32Array(n) };
}

test('augmentation: each sample is one translation (and maybe mirror) of its input, all offsets occur', () => {
  const b = batch(64, 2, 5, 6);
  const out = augmentBatch(b, parseAugmentation('shift:2,flip'), 7);
  const seen = new Set<string>();
  for (let s = 0; s < b.size; s++) {
    const got = out.x.slice(s * 60, (s + 1) * 60);
    let match: string | undefined;
    for (let dy = -2; dy <= 2 && !match; dy++)
      for (let dx = -2; dx <= 2 && !match; dx++)
        for (const mirror of [false, true])
          if (translated(b.x as Float32Array, b.shape, s, dy, dx, mirror).every((v, k) => v === got[k])) match = `${dy},${dx},${mirror}`;
    assert.ok(match, `sample ${s} is not a translation of its input`);
    seen.add(match);
  }
  assert.ok(seen.size > 20, `only ${seen.size} distinct augmentations in 64 samples`);
  assert.deepEqual(out.y, b.y);
  assert.deepEqual(out.shape, b.shape);
});

test('augmentation: same seed, same batch; other seed, other batch; none leaves the batch alone', () => {
  const b = batch(8, 1, 7, 7);
  const a = parseAugmentation('shift:3');
  assert.deepEqual(augmentBatch(b, a, 1).x, augmentBatch(b, a, 1).x);
  assert.notDeepEqual(augmentBatch(b, a, 1).x, augmentBatch(b, a, 2).x);
  assert.equal(augmentBatch(b, parseAugmentation('none'), 1), b);
});

test('augmentation: bad specs and non-image data are named errors', () => {
  for (const spec of ['shift', 'shift:-1', 'rotate:10', 'flip:1'])
    assert.throws(() => parseAugmentation(spec), (e: unknown) => e instanceof LinfoldError && e.message.includes(spec.split(',')[0]));
  const tokens: Batch = { x: new Int32Array(8), shape: [2, 4], size: 2 };
  assert.throws(() => augmentBatch(tokens, parseAugmentation('shift:1'), 0), /\[N, C, H, W\].*\[4\]/);
});
