// Kernels linfold adds to (or replaces in) tfjs-backend-wasm, written in JS over the wasm heap: memory-bound
// steps that wasm runs slowly (or wrongly) as a chain of its generic ops, done in one pass over the data.
// - MaxPool's input gradient: dy routed to the first maximum of each window (wasm's MaxPoolGrad picks wrong
//   positions for some geometries; the same through one-hot ops cost ~25 ms for a 64×28×28×24 input).
// - Sum over leading axes (bias gradients: dy [N, H, W, C] → [C]): wasm's Sum reduces innermost axes only and
//   transposes first (~4× the time of one pass).
// - Transposed im2col (filter gradients as one matMul, see conv2dFilterGrad): the alternatives on wasm are a
//   conv with a one-hot filter (kh·kw·C MACs per patch element) or Slice / StridedSlice, which copy element
//   by element (~15 ms for the 9 taps of a 64×14×14×24 input, ~140 ms strided); registered on cpu too, so
//   that both backends share the gradient.
// - PRelu's gradients (dx, and the slope's), each in one pass: tfjs composes them of Greater, two Selects,
//   Multiplies and a Sum, each a pass of its own (~25 % of a linearize step of the MNIST CNN).
// - Identity without a copy (the dataId is shared, as the cpu backend does): tfjs clones every tensor it saves
//   for the backward pass, and wasm's Identity copies each one.
import { product, normAxis } from '../shape-math.js';
import { tf, dims, type TfTensor } from './registry.js';

interface TensorInfo { dataId: object; shape: number[]; dtype: string }
interface WasmBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  incRef(dataId: object): void;
}
type KernelArgs = { inputs: Record<string, TensorInfo>; attrs: Record<string, unknown>; backend: unknown };

export const MAX_POOL_GRAD = 'LinfoldMaxPoolGrad';

/**
 * NHWC x, its max pool y, dy → dx: each dy element added at the first tap (scan order) of its window equal to
 * the window's maximum. Comparing with the saved y and carrying "not routed yet" as a 0/1 integer keeps the
 * loop free of data-dependent branches (random comparisons mispredict; ~2× faster than a running argmax).
 */
function maxPoolGrad({ inputs, attrs, backend }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const { x, y, dy } = inputs;
  const [kh, kw] = attrs.filterSize as [number, number];
  const [sh, sw] = attrs.strides as [number, number];
  const top = attrs.top as number, left = attrs.left as number;
  const [n, h, w, c] = x.shape, [, oh, ow] = dy.shape;
  const out = b.makeOutput(x.shape, 'float32');
  // views after the allocation (a heap growth detaches older views)
  const xv = b.typedArrayFromHeap(x), yv = b.typedArrayFromHeap(y), dv = b.typedArrayFromHeap(dy), o = b.typedArrayFromHeap(out);
  o.fill(0);
  for (let img = 0; img < n; img++) {
    const xBase = img * h * w * c;
    for (let p = 0; p < oh; p++) {
      const r0 = Math.max(0, p * sh - top), r1 = Math.min(h, p * sh - top + kh);
      for (let q = 0; q < ow; q++) {
        const c0 = Math.max(0, q * sw - left), c1 = Math.min(w, q * sw - left + kw);
        const yBase = ((img * oh + p) * ow + q) * c;
        for (let ch = 0; ch < c; ch++) {
          const m = yv[yBase + ch], d = dv[yBase + ch];
          let pending = 1;
          for (let r = r0; r < r1; r++)
            for (let col = c0, at = xBase + (r * w + c0) * c + ch; col < c1; col++, at += c) {
              const hit = +(xv[at] === m) & pending;
              o[at] += hit * d;
              pending ^= hit;
            }
        }
      }
    }
  }
  return out;
}

export const IM2COL_T = 'LinfoldIm2ColT';

/** Geometry of a 2-D window over NHWC input: `top`/`left` padding, window row (i) / column (j) at oh·sh + i·dh − top. */
export interface Im2ColGeom { kh: number; kw: number; sh: number; sw: number; dh: number; dw: number; top: number; left: number; oh: number; ow: number }

/**
 * x [N, H, W, C] → [kh·kw·C, N·OH·OW]: row (i·kw + j)·C + c holds tap (i, j) of channel c for every output
 * position (zero where the tap falls in the padding).
 * Written one image at a time: its input stays in cache, and every row is written in runs of OH·OW (a run per
 * output row would touch kh·kw·C pages per row: ~6× slower).
 */
function im2colT(xv: Float32Array, [n, h, w, c]: number[], g: Im2ColGeom, o: Float32Array): void {
  // locals: attribute objects can be in dictionary mode, slow to read in the loops
  const { kh, kw, sh, sw, dh, dw, top, left, oh, ow } = g;
  const cols = n * oh * ow;
  // per kernel column j: the output columns whose tap lies inside the input
  const lo: number[] = [], hi: number[] = [];
  for (let j = 0; j < kw; j++) {
    const off = j * dw - left;
    lo.push(Math.min(ow, Math.max(0, Math.ceil(-off / sw))));
    hi.push(Math.max(lo[j], Math.min(ow, Math.floor((w - 1 - off) / sw) + 1)));
  }
  for (let img = 0; img < n; img++)
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++)
        for (let ch = 0; ch < c; ch++) {
          const rowStart = ((i * kw + j) * c + ch) * cols + img * oh * ow;
          for (let p = 0; p < oh; p++) {
            const ih = p * sh + i * dh - top;
            const inside = ih >= 0 && ih < h;
            const a = inside ? lo[j] : 0, b = inside ? hi[j] : 0;
            const dst = rowStart + p * ow;
            for (let q = 0; q < a; q++) o[dst + q] = 0;
            for (let q = a, src = ((img * h + ih) * w + j * dw - left + a * sw) * c + ch; q < b; q++, src += sw * c) o[dst + q] = xv[src];
            for (let q = b; q < ow; q++) o[dst + q] = 0;
          }
        }
}

function im2colShape(x: TensorInfo, attrs: Record<string, unknown>): number[] {
  const g = attrs as unknown as Im2ColGeom;
  return [g.kh * g.kw * x.shape[3], x.shape[0] * g.oh * g.ow];
}

function im2colWasm({ inputs, attrs, backend }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const out = b.makeOutput(im2colShape(inputs.x, attrs), 'float32');
  im2colT(b.typedArrayFromHeap(inputs.x), inputs.x.shape, attrs as unknown as Im2ColGeom, b.typedArrayFromHeap(out));
  return out;
}

interface CpuBackend {
  data: { get(dataId: object): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): TensorInfo;
}

function im2colCpu({ inputs, attrs, backend }: KernelArgs): TensorInfo {
  const b = backend as CpuBackend;
  const shape = im2colShape(inputs.x, attrs);
  const o = new Float32Array(shape[0] * shape[1]);
  im2colT(b.data.get(inputs.x.dataId).values, inputs.x.shape, attrs as unknown as Im2ColGeom, o);
  return b.makeTensorInfo(shape, 'float32', o);
}

/** The transposed patches of NHWC x (see im2colT); wasm and cpu backends. */
export function im2colTransposed(x: TfTensor, g: Im2ColGeom): TfTensor {
  return tf.engine().runKernel(IM2COL_T, { x }, { ...g } as unknown as tf.NamedAttrMap);
}

function identity({ inputs, backend }: KernelArgs): TensorInfo {
  const { x } = inputs;
  (backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Sum over axes 0..k-1 of a float32 tensor, one pass in row order; undefined when the axes are not leading. */
function sumLeading({ inputs, attrs, backend }: KernelArgs): TensorInfo | undefined {
  const { x } = inputs;
  const rank = x.shape.length;
  const raw = attrs.axis as number | number[];
  const axes = [...new Set((Array.isArray(raw) ? raw : [raw]).map((a) => normAxis(a, rank)))].sort((a, b) => a - b);
  const k = axes.length;
  if (x.dtype !== 'float32' || k === 0 || k === rank || axes.some((a, i) => a !== i)) return undefined;
  const b = backend as WasmBackend;
  const rows = product(x.shape.slice(0, k));
  const rest = x.shape.slice(k);
  const cols = product(rest);
  const out = b.makeOutput(attrs.keepDims ? [...Array(k).fill(1), ...rest] : rest, 'float32');
  const xv = b.typedArrayFromHeap(x), o = b.typedArrayFromHeap(out);
  const acc = new Float64Array(cols);
  // four rows per accumulator update: ~2.5× faster than one (the read-modify-write of acc is the bottleneck)
  let r = 0;
  for (; r + 4 <= rows; r += 4)
    for (let j = 0, at = r * cols; j < cols; j++, at++) acc[j] += xv[at] + xv[at + cols] + (xv[at + 2 * cols] + xv[at + 3 * cols]);
  for (let at = r * cols; r < rows; r++) for (let j = 0; j < cols; j++, at++) acc[j] += xv[at];
  o.set(acc);
  return out;
}

export const PRELU_GRAD = 'LinfoldPreluGrad';

/**
 * x [..., C], slope [C], dy → attrs.of 'x': dx = dy where x > 0, slope·dy elsewhere; 'slope': dslope[c] = Σ dy·x
 * over the x ≤ 0 of channel c (tfjs's gradient, x = 0 on the slope side). Two kernels, not one with two
 * outputs: backprop asks for each input's gradient in a tidy of its own, which would dispose the other.
 */
function preluGrad({ inputs, attrs, backend }: KernelArgs): TensorInfo {
  const b = backend as WasmBackend;
  const { x, alpha, dy } = inputs;
  const c = alpha.shape[0];
  const xv = b.typedArrayFromHeap(x), av = b.typedArrayFromHeap(alpha), dv = b.typedArrayFromHeap(dy);
  // branch-free below: signs are random, a branch mispredicts
  if (attrs.of === 'x') {
    const dx = b.makeOutput(x.shape, 'float32');
    const o = b.typedArrayFromHeap(dx);
    for (let at = 0; at < xv.length; at += c)
      for (let ch = 0, k = at; ch < c; ch++, k++) o[k] = dv[k] * (1 + +!(xv[k] > 0) * (av[ch] - 1));
    return dx;
  }
  // min(v, 0) as (v − |v|)/2 for finite v (Math.min and a ternary are ~4× slower); four rows per accumulator
  // update, as in sumLeading
  const acc = new Float64Array(c);
  const n = xv.length;
  let at = 0;
  for (; at + 4 * c <= n; at += 4 * c)
    for (let ch = 0; ch < c; ch++) {
      const k0 = at + ch, k1 = k0 + c, k2 = k1 + c, k3 = k2 + c;
      const v0 = xv[k0], v1 = xv[k1], v2 = xv[k2], v3 = xv[k3];
      acc[ch] += (v0 - Math.abs(v0)) * dv[k0] + (v1 - Math.abs(v1)) * dv[k1] + ((v2 - Math.abs(v2)) * dv[k2] + (v3 - Math.abs(v3)) * dv[k3]);
    }
  for (; at < n; at += c) for (let ch = 0, k = at; ch < c; ch++, k++) acc[ch] += (xv[k] - Math.abs(xv[k])) * dv[k];
  for (let ch = 0; ch < c; ch++) acc[ch] *= 0.5;
  const dSlope = b.makeOutput([c], 'float32');
  b.typedArrayFromHeap(dSlope).set(acc);
  return dSlope;
}

/** PRelu's gradient on wasm with respect to x or to the slope ([C], over the last axis of x). */
export function wasmPreluGrad(x: TfTensor, alpha: TfTensor, dy: TfTensor, of: 'x' | 'slope'): TfTensor {
  return tf.engine().runKernel(PRELU_GRAD, { x, alpha, dy }, { of } as unknown as tf.NamedAttrMap) as TfTensor;
}

let registered = false;
export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({ kernelName: MAX_POOL_GRAD, backendName: 'wasm', kernelFunc: maxPoolGrad as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: IM2COL_T, backendName: 'wasm', kernelFunc: im2colWasm as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: PRELU_GRAD, backendName: 'wasm', kernelFunc: preluGrad as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: IM2COL_T, backendName: 'cpu', kernelFunc: im2colCpu as unknown as tf.KernelFunc });
  replace('Identity', (args) => (args.inputs.x.dtype === 'string' ? undefined : identity(args)));
  replace('Sum', sumLeading);
}

/** Re-registers a wasm kernel so that `f` runs first; the original runs when `f` declines (undefined). */
function replace(kernelName: string, f: (args: KernelArgs) => TensorInfo | undefined): void {
  const original = tf.getKernel(kernelName, 'wasm');
  if (!original) return;
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ ...original, kernelFunc: ((args: KernelArgs) => f(args) ?? original.kernelFunc(args as never)) as unknown as tf.KernelFunc });
}

/** MaxPool's input gradient on wasm (NHWC), geometry as tfjs' MaxPool attributes give it. */
export function wasmMaxPoolGrad(x: TfTensor, y: TfTensor, dy: TfTensor, attrs: Record<string, unknown>): TfTensor {
  const fs = attrs.filterSize as number | [number, number], st = attrs.strides as number | [number, number];
  const info = tf.backend_util.computePool2DInfo(dims(x) as [number, number, number, number], fs, st, 1, attrs.pad as 'valid', attrs.dimRoundingMode as 'floor' | undefined);
  return tf.engine().runKernel(MAX_POOL_GRAD, { x, y, dy }, {
    filterSize: [info.filterHeight, info.filterWidth], strides: [info.strideHeight, info.strideWidth], top: info.padInfo.top, left: info.padInfo.left,
  } as unknown as tf.NamedAttrMap);
}

registerWasmKernels();
