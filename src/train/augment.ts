// Training-time augmentation of NCHW image batches: random translations (edge pixels repeated) and
// horizontal flips, drawn from a seeded source so a resumed run sees the same batches as an unbroken one.
import { LinfoldError, option } from '../errors.js';
import { seededRandom } from '../import/random.js';
import type { Batch } from './data.js';

export interface Augmentation {
  /** largest translation in pixels along each spatial axis */
  shift: number;
  flip: boolean;
}

export const NO_AUGMENTATION: Augmentation = { shift: 0, flip: false };

/** `shift:2`, `flip`, `shift:4,flip`, or `none`. */
export function parseAugmentation(spec: string): Augmentation {
  const out = { ...NO_AUGMENTATION };
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, arg] = part.split(':');
    if (name === 'none' && arg === undefined) continue;
    if (name === 'flip' && arg === undefined) out.flip = true;
    else if (name === 'shift' && arg !== undefined && /^\d+$/.test(arg)) out.shift = Number(arg);
    else throw new LinfoldError(`${option('augment')}: cannot read '${part}' (expected shift:<pixels>, flip or none)`);
  }
  return out;
}

export const isAugmenting = (a: Augmentation) => a.shift > 0 || a.flip;

/** A new batch with every sample translated by up to ±shift pixels and, if asked, mirrored left–right. */
export function augmentBatch(b: Batch, a: Augmentation, seed: number): Batch {
  if (!isAugmenting(a)) return b;
  if (!(b.x instanceof Float32Array) || b.shape.length !== 4)
    throw new LinfoldError(`${option('augment')} works on image batches [N, C, H, W]; this data has samples of shape [${b.shape.slice(1).join(', ')}]`);
  const [n, c, h, w] = b.shape;
  const rnd = seededRandom(seed);
  const x = b.x, out = new Float32Array(x.length);
  const clamp = (v: number, hi: number) => (v < 0 ? 0 : v > hi ? hi : v);
  for (let s = 0; s < n; s++) {
    const dy = Math.round((2 * rnd() - 1) * a.shift), dx = Math.round((2 * rnd() - 1) * a.shift);
    const mirror = a.flip && rnd() < 0.5;
    for (let ch = 0; ch < c; ch++) {
      const base = (s * c + ch) * h * w;
      for (let i = 0; i < h; i++) {
        const row = base + clamp(i - dy, h - 1) * w, dst = base + i * w;
        for (let j = 0; j < w; j++) {
          const jj = clamp(j - dx, w - 1);
          out[dst + j] = x[row + (mirror ? w - 1 - jj : jj)];
        }
      }
    }
  }
  return { ...b, x: out };
}
