// Seeded randomness shared by data shuffling, initialisation and verification inputs.
import { product, normAxis } from './shape-math.js';
import { LinfoldError, option } from '../errors.js';
import type { Graph, Node } from './ir.js';
import { Tensor, allocArray, type DType } from './tensor.js';

/** mulberry32: a small seeded generator of uniforms in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box–Muller). */
export function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12), v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export interface FeedOptions {
  /** Value for symbolic leading dims (default 2). */
  batch?: number;
  seed?: number;
  /** Concrete shapes per input (replacing symbolic dims); '*' names the only input. */
  inputShapes?: Record<string, number[]>;
  /** Value for symbolic dims after the first; by default such a dim is an error asking for inputShapes. */
  otherDims?: number;
}

/**
 * Seeded random inputs for every graph feed: N(0, 1) floats; integers uniform in [0, bound), where bound is
 * the size of the table a Gather reads with them (token ids), else 2; booleans 0/1.
 */
export function randomFeeds(g: Graph, opts: FeedOptions = {}): Record<string, Tensor> {
  const rand = seededRandom(opts.seed ?? 1234);
  const batch = opts.batch ?? 2;
  const consumers = g.consumers();
  const feeds: Record<string, Tensor> = {};
  for (const v of g.feeds) {
    const given = opts.inputShapes?.[v.name] ?? (g.feeds.length === 1 ? opts.inputShapes?.['*'] : undefined);
    if (!v.shape && !given) throw new LinfoldError(`input '${v.name}' has no shape: give it with ${option('inputShapes')}`);
    const shape = given ?? v.shape!.map((d, i) => {
      if (typeof d === 'number' && d >= 0) return d;
      if (i === 0) return batch;
      if (opts.otherDims !== undefined) return opts.otherDims;
      throw new LinfoldError(`input '${v.name}' has symbolic dim '${d}' at axis ${i}: give its shape with ${option('inputShapes')}`);
    });
    const dtype: DType = v.dtype ?? 'float32';
    if (dtype === 'float16' || dtype === 'bfloat16') throw new LinfoldError(`input '${v.name}': ${dtype} inputs are not generated; pass data`);
    const size = product(shape);
    const arr = allocArray(dtype, size);
    if (dtype === 'float32' || dtype === 'float64') for (let i = 0; i < size; i++) (arr as Float32Array)[i] = gaussian(rand);
    else if (dtype === 'bool') for (let i = 0; i < size; i++) (arr as Uint8Array)[i] = rand() < 0.5 ? 1 : 0;
    else {
      const bound = intBound(g, v.name, consumers.get(v.name) ?? []);
      for (let i = 0; i < size; i++) {
        const k = Math.floor(rand() * bound);
        if (arr instanceof BigInt64Array || arr instanceof BigUint64Array) arr[i] = BigInt(k);
        else (arr as Int32Array)[i] = k;
      }
    }
    feeds[v.name] = Tensor.fromArray(v.name, dtype, shape, arr);
  }
  return feeds;
}

/** Ops that pass integer ids through unchanged (besides their shape or type). */
const ID_PRESERVING = new Set(['Cast', 'Identity', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Expand']);

/**
 * Token ids stay below the first dimension of every embedding table a Gather reads them with (directly or
 * through Cast/Reshape/…); 2 when none does.
 */
function intBound(g: Graph, name: string, readers: Node[]): number {
  const consumers = g.consumers();
  let bound = Infinity;
  const seen = new Set<string>();
  const visit = (value: string, rs: Node[]) => {
    if (seen.has(value)) return;
    seen.add(value);
    for (const r of rs) {
      if (r.opType === 'Gather' && r.inputs[1] === value) {
        const table = g.initializers.get(r.inputs[0]);
        const axis = r.attrs.axis?.type === 'int' ? r.attrs.axis.value : 0;
        if (table) bound = Math.min(bound, table.dims[normAxis(axis, table.dims.length)]);
      } else if (ID_PRESERVING.has(r.opType) && r.inputs[0] === value && r.outputs[0]) visit(r.outputs[0], consumers.get(r.outputs[0]) ?? []);
    }
  };
  visit(name, readers);
  return Number.isFinite(bound) ? bound : 2;
}
