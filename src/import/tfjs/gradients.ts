// Conv2D / DepthwiseConv2dNative / BatchMatMul / GatherV2 gradients re-registered in terms of fast ops that
// every backend has. Why:
// - tfjs-backend-wasm registers no Conv2DBackpropFilter, no depthwise backprop kernels and no
//   UnsortedSegmentSum (GatherV2's gradient), so training a conv net or an embedding there fails;
// - its Conv2DBackpropInput (what conv2dTranspose runs) is ~8× slower than a forward conv of the zero-
//   inserted, padded dy with the flipped, transposed kernel, and matMul's transpose flags are 6-12× slower
//   than an explicit transpose (DESIGN.md §3);
// - tfjs' own Conv2D / depthwise gradients reject dilations > 1.
// Each replacement delegates to tfjs' original gradient where that is available and at least as fast
// (checked per backend at call time), so cpu keeps its built-in kernels unless the variant here wins.
import { tf, dims, type TfTensor } from './registry.js';
import { dilateAxes, padCrop } from './conv-util.js';
import { matMul } from './matmul.js';
import { wasmMaxPoolGrad, wasmPreluGrad, im2colTransposed } from './wasm-kernels.js';

type Grads = Record<string, () => TfTensor>;
type GradFunc = (dy: TfTensor | TfTensor[], saved: TfTensor[], attrs: Record<string, unknown>) => Grads;

interface ConvGeom {
  sh: number; sw: number; dh: number; dw: number;
  top: number; bottom: number; left: number; right: number;
  kh: number; kw: number; oh: number; ow: number;
}

function geometry(x: TfTensor, filter: TfTensor, attrs: Record<string, unknown>, depthwise: boolean): ConvGeom {
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    attrs.strides as [number, number], (attrs.dilations ?? [1, 1]) as [number, number],
    attrs.pad as 'valid', attrs.dimRoundingMode as 'floor' | undefined, depthwise, 'channelsLast');
  return {
    sh: info.strideHeight, sw: info.strideWidth, dh: info.dilationHeight, dw: info.dilationWidth,
    top: info.padInfo.top, bottom: info.padInfo.bottom, left: info.padInfo.left, right: info.padInfo.right,
    kh: info.filterHeight, kw: info.filterWidth, oh: info.outHeight, ow: info.outWidth,
  };
}

/** dy zero-inserted by the strides and padded so that a stride-1 conv with the flipped kernel gives dx. */
function paddedDy(dy: TfTensor, x: TfTensor, g: ConvGeom): TfTensor {
  const effH = (g.kh - 1) * g.dh + 1, effW = (g.kw - 1) * g.dw + 1;
  const d = dilateAxes(dy, [1, 2], [g.sh, g.sw]);
  const pt = effH - 1 - g.top, pl = effW - 1 - g.left;
  const pb = dims(x)[1] + effH - 1 - dims(d)[1] - pt;
  const pr = dims(x)[2] + effW - 1 - dims(d)[2] - pl;
  return padCrop(d, [[0, 0], [pt, pb], [pl, pr], [0, 0]]);
}

/** The input window of kernel tap (i, j) for every output position: [N, OH, OW, C]. */
function tap(xp: TfTensor, g: ConvGeom, i: number, j: number): TfTensor {
  const [n, , , c] = xp.shape;
  const begin = [0, i * g.dh, j * g.dw, 0];
  if (g.sh === 1 && g.sw === 1) return tf.slice(xp, begin, [n, g.oh, g.ow, c]);
  const end = [n, i * g.dh + (g.oh - 1) * g.sh + 1, j * g.dw + (g.ow - 1) * g.sw + 1, c];
  return tf.stridedSlice(xp, begin, end, [1, g.sh, g.sw, 1]);
}

/** Padding of x as the forward conv saw it, cut to the rows/columns some output reads (negative = crop). */
function xPads(x: TfTensor, g: ConvGeom): [number, number][] {
  const needH = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const needW = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  return [[g.top, needH - dims(x)[1] - g.top], [g.left, needW - dims(x)[2] - g.left]];
}

/** x padded as the forward conv saw it, cropped to the rows/columns some output reads. */
function paddedX(x: TfTensor, g: ConvGeom): TfTensor {
  return padCrop(x, [[0, 0], ...xPads(x, g), [0, 0]]);
}

type ConvPad = [[0, 0], [number, number], [number, number], [0, 0]];

/** Spatial pads [before, after] of an NHWC tensor split into a crop (negative parts, applied) and conv padding. */
function cropForConv(t: TfTensor, pads: [number, number][]): { t: TfTensor; pad: ConvPad } {
  const crop = pads.map(([a, b]) => [Math.min(a, 0), Math.min(b, 0)] as [number, number]);
  const pad = pads.map(([a, b]) => [Math.max(a, 0), Math.max(b, 0)] as [number, number]);
  return { t: padCrop(t, [[0, 0], ...crop, [0, 0]]), pad: [[0, 0], pad[0], pad[1], [0, 0]] };
}

/**
 * One spatial axis of a convolution's input gradient, split by output phase. Input position q·s + r (r < s)
 * receives dy[q + o]·w[i] from every kernel tap i with (i·d − begin) ≡ r (mod s), o = (r + begin − i·d)/s.
 * Every phase is thus a stride-1 correlation of dy with a sub-kernel: the taps are laid out at
 * u = (o − omin)/cd in a kernel of size U, where cd = d for stride 1 (a dilated conv, no phases) and 1 otherwise.
 */
interface AxisPhases { phases: number; U: number; cd: number; omin: number; omax: number; tapAt: number[][] }

function axisPhases(k: number, s: number, d: number, begin: number): AxisPhases {
  const cd = s === 1 ? d : 1;
  const taps = Array.from({ length: k }, (_, i) => {
    const r = (((i * d - begin) % s) + s) % s;
    return { i, r, o: (r + begin - i * d) / s };
  });
  const omin = Math.min(...taps.map((t) => t.o)), omax = Math.max(...taps.map((t) => t.o));
  const U = (omax - omin) / cd + 1;
  // tapAt[r][u]: the kernel tap at phase r, position u (-1: none)
  const tapAt = Array.from({ length: s }, () => Array<number>(U).fill(-1));
  for (const t of taps) tapAt[t.r][(t.o - omin) / cd] = t.i;
  return { phases: s, U, cd, omin, omax, tapAt };
}

/**
 * dx of a 2-D convolution as one stride-1 convolution of dy: strided convolutions are split into stride²
 * phase sub-kernels stacked on the output channels, then interleaved (no zero-inserted dy: ~s² less work).
 */
export function conv2dInputGrad(x: TfTensor, filter: TfTensor, dy: TfTensor, attrs: Record<string, unknown>): TfTensor {
  return tf.tidy(() => {
    const g = geometry(x, filter, attrs, false);
    const [n, h, w, c] = dims(x);
    const [kh, kw, , m] = dims(filter);
    const ph = axisPhases(kh, g.sh, g.dh, g.top), pw = axisPhases(kw, g.sw, g.dw, g.left);
    const Q = Math.ceil(h / g.sh), P = Math.ceil(w / g.sw);
    const S = g.sh * g.sw;
    // sub-kernels [U_h, U_w, M, (r_h, r_w, C)]: the taps of [kh·kw, M·C] picked by a one-hot matrix (wasm's
    // Gather and Reverse cost ~0.5 ms even on a small filter; a one-hot matMul is exact and ~10× faster)
    const R = ph.U * pw.U * S;
    const pick = new Float32Array(R * kh * kw);
    for (let uh = 0, row = 0; uh < ph.U; uh++)
      for (let uw = 0; uw < pw.U; uw++)
        for (let rh = 0; rh < g.sh; rh++)
          for (let rw = 0; rw < g.sw; rw++, row++) {
            const i = ph.tapAt[rh][uh], j = pw.tapAt[rw][uw];
            if (i >= 0 && j >= 0) pick[row * kh * kw + i * kw + j] = 1;
          }
    const taps = tf.reshape(tf.transpose(filter, [0, 1, 3, 2]), [kh * kw, m * c]);
    let sub = tf.matMul(tf.tensor2d(pick, [R, kh * kw]), taps);
    if (S > 1) sub = tf.transpose(tf.reshape(sub, [ph.U * pw.U, S, m, c]), [0, 2, 1, 3]);
    const f = tf.reshape(sub, [ph.U, pw.U, m, S * c]) as tf.Tensor4D;
    // rows q + omin .. q + omax of dy for q < Q: pad (in the conv) or crop
    const [, oh, ow] = dims(dy);
    const { t: dyc, pad } = cropForConv(dy, [[-ph.omin, Q + ph.omax - oh], [-pw.omin, P + pw.omax - ow]]);
    let dx = tf.conv2d(dyc as tf.Tensor4D, f, 1, pad, 'NHWC', [ph.cd, pw.cd]);
    if (S > 1) dx = tf.reshape(tf.transpose(tf.reshape(dx, [n * Q, P, g.sh, g.sw * c]), [0, 2, 1, 3]), [n, Q * g.sh, P * g.sw, c]);
    return Q * g.sh === h && P * g.sw === w ? dx : tf.slice(dx, [0, 0, 0, 0], [n, h, w, c]);
  });
}

/**
 * dW[i,j,c,m] = Σ_{n,oh,ow} xpad[n, oh·s + i·d, ow·s + j·d, c] · dy[n, oh, ow, m].
 * - Few patch columns (kh·kw·C ≤ M: a stem on 1-3 channels, 1×1 convs), or strides and dilations together
 *   (tfjs convs take one or the other): one matMul of the transposed patches [kh·kw·C, N·OH·OW] (built in one
 *   pass, wasm-kernels.ts) with dy as it comes, [N·OH·OW, M]; the result is in filter layout.
 * - Otherwise a convolution in which the channels play the batch, the batch plays the channels and dy is the
 *   filter (stride d, dilation s). On wasm the patches cost ~kh·kw/M of the matMul's time, measured ~1.6× the
 *   matMul for 3×3, 24→24, but only ~1× for 48→48.
 */
export function conv2dFilterGrad(x: TfTensor, filter: TfTensor, dy: TfTensor, attrs: Record<string, unknown>): TfTensor {
  return tf.tidy(() => {
    const g = geometry(x, filter, attrs, false);
    const [kh, kw, c, m] = dims(filter);
    if (kh * kw * c <= m || ((g.sh > 1 || g.sw > 1) && (g.dh > 1 || g.dw > 1))) {
      const rows = dims(x)[0] * g.oh * g.ow;
      return tf.reshape(tf.matMul(im2colTransposed(x, g), tf.reshape(dy, [rows, m])), [kh, kw, c, m]);
    }
    // rows/columns of x no output reads are left to the conv (cropping x would cost a copy)
    const [[top, bottom], [left, right]] = xPads(x, g);
    const pad: ConvPad = [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]];
    const xs = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D; // [C, H, W, N]
    const ds = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [OH, OW, N, M]
    let out = tf.conv2d(xs, ds, [g.dh, g.dw], pad, 'NHWC', [g.sh, g.sw]); // [C, ≥kh, ≥kw, M]
    if (dims(out)[1] !== kh || dims(out)[2] !== kw) out = tf.slice(out, [0, 0, 0, 0], [c, kh, kw, m]);
    return tf.transpose(out, [1, 2, 0, 3]);
  });
}

export function depthwiseInputGrad(x: TfTensor, filter: TfTensor, dy: TfTensor, attrs: Record<string, unknown>): TfTensor {
  return tf.tidy(() => {
    const g = geometry(x, filter, attrs, true);
    const [, , c, mult] = filter.shape;
    const dyp = paddedDy(dy, x, g);
    const flipped = tf.reverse(filter, [0, 1]);
    if (mult === 1) return tf.depthwiseConv2d(dyp as tf.Tensor4D, flipped as tf.Tensor4D, 1, 'valid', 'NHWC', [g.dh, g.dw]);
    const [n, h, w] = dyp.shape;
    const dy5 = tf.reshape(dyp, [n, h, w, c, mult]);
    let acc: TfTensor | undefined;
    for (let k = 0; k < mult; k++) {
      const part = tf.reshape(tf.slice(dy5, [0, 0, 0, 0, k], [n, h, w, c, 1]), [n, h, w, c]);
      const fk = tf.slice(flipped, [0, 0, 0, k], [g.kh, g.kw, c, 1]);
      const y = tf.depthwiseConv2d(part as tf.Tensor4D, fk as tf.Tensor4D, 1, 'valid', 'NHWC', [g.dh, g.dw]);
      acc = acc ? tf.add(acc, y) : y;
    }
    return acc!;
  });
}

/**
 * dW[i,j,c,k] = Σ_{n,oh,ow} xpad[n, oh·s + i·d, ow·s + j·d, c] · dy[n, oh, ow, c·mult + k]: a depthwise conv
 * over the N·C channels of one "image" whose filter is dy, summed over the batch afterwards.
 */
export function depthwiseFilterGrad(x: TfTensor, filter: TfTensor, dy: TfTensor, attrs: Record<string, unknown>): TfTensor {
  return tf.tidy(() => {
    const g = geometry(x, filter, attrs, true);
    const [kh, kw, c, mult] = dims(filter);
    const n = dims(x)[0];
    const xp = paddedX(x, g);
    const [, hp, wp] = dims(xp);
    if ((g.sh === 1 && g.sw === 1) || (g.dh === 1 && g.dw === 1)) {
      const xs = tf.reshape(tf.transpose(xp, [1, 2, 0, 3]), [1, hp, wp, n * c]);
      const ds = tf.reshape(tf.transpose(tf.reshape(dy, [n, g.oh, g.ow, c * mult]), [1, 2, 0, 3]), [g.oh, g.ow, n * c, mult]);
      const out = tf.depthwiseConv2d(xs as tf.Tensor4D, ds as tf.Tensor4D, [g.dh, g.dw], 'valid', 'NHWC', [g.sh, g.sw]);
      return tf.sum(tf.reshape(out, [kh, kw, n, c, mult]), 2);
    }
    const rows = n * g.oh * g.ow;
    const dy3 = tf.reshape(dy, [rows, c, mult]);
    const out: TfTensor[] = [];
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++) out.push(tf.sum(tf.mul(tf.reshape(tap(xp, g, i, j), [rows, c, 1]), dy3), 0));
    return tf.reshape(tf.stack(out), [kh, kw, c, mult]);
  });
}

// ---- MaxPool ----
export interface PoolTaps {
  /** Input padded with the lowest float (not -Infinity: taps are taken by convolution, and 0·-Inf = NaN). */
  xp: TfTensor;
  y: TfTensor;
  /** Per output, the window tap (i·kw + j, scanning order) of its first maximum. */
  first: TfTensor;
  kh: number; kw: number; sh: number; sw: number; top: number; left: number; oh: number; ow: number;
  /** The taps of every window: [N, OH, OW, C, kh·kw]. */
  taps: TfTensor;
}

export const LOWEST = -3.4028234663852886e38;

/** One-hot depthwise filter [kh, kw, C, kh·kw] that copies tap t into output channel c·K + t. */
function tapFilter(kh: number, kw: number, c: number): TfTensor {
  const K = kh * kw;
  const v = new Float32Array(K * c * K);
  for (let t = 0; t < K; t++) for (let ch = 0; ch < c; ch++) v[(t * c + ch) * K + t] = 1;
  return tf.tensor4d(v, [kh, kw, c, K]);
}

/**
 * The windows of a 2-D max pool (NHWC) and, per output, the tap of its first maximum. tfjs-backend-wasm's
 * MaxPoolWithArgmax picks wrong positions for some geometries (2×2 / stride 2 over several channels), so
 * MaxPool's Indices output is built on this. Windows come from a reshape
 * when they tile the input (kernel = stride), else from one depthwise conv with a one-hot filter (strided
 * slices are slow on wasm).
 */
export function maxPoolTaps(x: TfTensor, filterSize: [number, number], strides: [number, number], pad: unknown, rounding?: unknown): PoolTaps {
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad as 'valid', rounding as 'floor' | undefined);
  const { top, left, bottom, right } = info.padInfo;
  const kh = info.filterHeight, kw = info.filterWidth, sh = info.strideHeight, sw = info.strideWidth, oh = info.outHeight, ow = info.outWidth;
  const [n, , , c] = dims(x);
  const K = kh * kw;
  const needH = (oh - 1) * sh + kh, needW = (ow - 1) * sw + kw;
  const xp = padCrop(x, [[0, 0], [top, Math.min(bottom, needH - dims(x)[1] - top)], [left, Math.min(right, needW - dims(x)[2] - left)], [0, 0]], LOWEST);
  let taps: TfTensor;
  if (kh === sh && kw === sw) {
    const [, hp, wp] = dims(xp);
    const xt = hp === oh * kh && wp === ow * kw ? xp : tf.slice(xp, [0, 0, 0, 0], [n, oh * kh, ow * kw, c]);
    taps = tf.reshape(tf.transpose(tf.reshape(xt, [n, oh, kh, ow, kw, c]), [0, 1, 3, 5, 2, 4]), [n, oh, ow, c, K]);
  } else {
    const finite = tf.maximum(xp, LOWEST); // -Infinity inputs would turn the one-hot products into NaN
    taps = tf.reshape(tf.depthwiseConv2d(finite as tf.Tensor4D, tapFilter(kh, kw, c) as tf.Tensor4D, [sh, sw], 'valid'), [n, oh, ow, c, K]);
  }
  const y = tf.max(taps, 4);
  // argMax returns the first maximum (a broadcast Equal against y is ~20× slower on wasm)
  const first = tf.argMax(taps, 4);
  return { xp, y, first, kh, kw, sh, sw, top, left, oh, ow, taps };
}

// ---- choosing per backend ----
const hasKernel = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;
const dilated = (attrs: Record<string, unknown>) => {
  const d = attrs.dilations;
  return d !== undefined && d !== null && (Array.isArray(d) ? d.some((v) => v !== 1) : d !== 1);
};
const nchwFormat = (attrs: Record<string, unknown>) => attrs.dataFormat === 'NCHW';

/**
 * Where linfold's variant is used (besides dilations > 1, where tfjs' gradients refuse, and backends lacking
 * the kernel). Measured on this machine, batch 64 (wasm) / 8 (cpu), 28×28, 3×3 kernels:
 *   wasm  conv 32→32: input 49 ms vs Conv2DBackpropInput 435; filter 75 (no kernel); s2 32→64: 110 vs 314
 *         depthwise 32: input 19 ms, filter ~60 ms (no kernels)
 *   cpu   conv 32→32: input 345 ms vs 260 builtin; filter 333 vs 17 262 builtin; s2: input 1377 vs 141
 *         depthwise 32: input 30 vs 17 builtin; filter 73 vs 335 builtin; s2: filter 37 vs 82
 * tfjs-node ('tensorflow') keeps its native kernels.
 */
export const gradientPolicy = {
  conv2dInput: { wasm: true, cpu: false } as Record<string, boolean>,
  conv2dFilter: { wasm: true, cpu: true } as Record<string, boolean>,
  depthwiseInput: { wasm: true, cpu: false } as Record<string, boolean>,
  depthwiseFilter: { wasm: true, cpu: true } as Record<string, boolean>,
  matMulExplicitTranspose: { wasm: true } as Record<string, boolean>,
  /** wasm's MaxPoolGrad routes gradients to wrong positions for some geometries: linfold's kernel (wasm-kernels.ts). */
  maxPool: { wasm: true } as Record<string, boolean>,
  /** one pass instead of tfjs's five (wasm-kernels.ts). */
  prelu: { wasm: true } as Record<string, boolean>,
};

type Policy = keyof typeof gradientPolicy;
function want(kind: Policy, kernel: string, attrs: Record<string, unknown>): boolean {
  if (nchwFormat(attrs)) return false;
  if (dilated(attrs) && kind !== 'matMulExplicitTranspose') return true;
  if (!hasKernel(kernel)) return true;
  return gradientPolicy[kind][tf.getBackend()] ?? false;
}

const originals = new Map<string, GradFunc | undefined>();

/** tfjs' own gradient function of a kernel, as registered before linfold replaced it (for tests). */
export function originalGradient(kernel: string): GradFunc | undefined {
  return originals.get(kernel);
}

let registered = false;
export function registerGradients(): void {
  if (registered) return;
  registered = true;
  const orig = (name: string) => {
    const g = tf.getGradient(name)?.gradFunc as GradFunc | undefined;
    originals.set(name, g);
    return g;
  };
  const conv = orig('Conv2D');
  const depthwise = orig('DepthwiseConv2dNative');
  const batchMatMul = orig('BatchMatMul');
  const gather = orig('GatherV2');
  const maxPool = orig('MaxPool');
  const prelu = orig('Prelu');

  // Conv2D and depthwise: tfjs's own rules where they are right (no dilation), ours where asked or needed
  const convGradient = (kernelName: string, base: GradFunc | undefined, [inputKey, inputKernel, filterKey, filterKernel]: [Policy, string, Policy, string], inputGrad: typeof conv2dInputGrad, filterGrad: typeof conv2dFilterGrad) =>
    tf.registerGradient({
      kernelName,
      inputsToSave: ['x', 'filter'],
      gradFunc: (dy, saved, attrs) => {
        const [x, filter] = saved;
        const a = attrs as Record<string, unknown>;
        const theirs = base && !dilated(a) ? base(dy, saved, a) : undefined;
        const d = dy as TfTensor;
        return {
          x: want(inputKey, inputKernel, a) || !theirs ? () => inputGrad(x, filter, d, a) : theirs.x,
          filter: want(filterKey, filterKernel, a) || !theirs ? () => filterGrad(x, filter, d, a) : theirs.filter,
        };
      },
    });
  convGradient('Conv2D', conv, ['conv2dInput', 'Conv2DBackpropInput', 'conv2dFilter', 'Conv2DBackpropFilter'], conv2dInputGrad, conv2dFilterGrad);
  convGradient('DepthwiseConv2dNative', depthwise, ['depthwiseInput', 'DepthwiseConv2dNativeBackpropInput', 'depthwiseFilter', 'DepthwiseConv2dNativeBackpropFilter'], depthwiseInputGrad, depthwiseFilterGrad);
  if (batchMatMul)
    tf.registerGradient({
      kernelName: 'BatchMatMul',
      inputsToSave: ['a', 'b'],
      gradFunc: (dy, saved, attrs) => {
        if (!gradientPolicy.matMulExplicitTranspose[tf.getBackend()]) return batchMatMul(dy, saved, attrs as Record<string, unknown>);
        const [a, b] = saved;
        const d = dy as TfTensor;
        const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
        if (!transposeA && !transposeB) return { a: () => matMul(d, b, false, true), b: () => matMul(a, d, true, false) };
        if (!transposeA && transposeB) return { a: () => matMul(d, b), b: () => matMul(d, a, true, false) };
        if (transposeA && !transposeB) return { a: () => matMul(b, d, false, true), b: () => matMul(a, d) };
        return { a: () => matMul(b, d, true, true), b: () => matMul(d, a, true, true) };
      },
    });
  if (gather)
    tf.registerGradient({
      kernelName: 'GatherV2',
      inputsToSave: ['x', 'indices'],
      gradFunc: (dy, saved, attrs) => {
        const a = attrs as { axis: number; batchDims: number };
        const [x, indices] = saved;
        // indices get a float zero gradient: tfjs checks gradient dtypes, and ids computed from a float tensor
        // (Cast → Gather) would otherwise stop backpropagation with an error
        const zero = () => tf.zeros(indices.shape, 'float32');
        if (hasKernel('UnsortedSegmentSum') || (a.batchDims ?? 0) !== 0)
          return { x: gather(dy, saved, a as unknown as Record<string, unknown>).x, indices: zero };
        return { x: () => gatherGrad(x, indices, dy as TfTensor, a.axis), indices: zero };
      },
    });
  tf.registerGradient({
    kernelName: 'MaxPool',
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const a = attrs as Record<string, unknown>;
      if (maxPool && !gradientPolicy.maxPool[tf.getBackend()]) return maxPool(dy, saved, a);
      const [x, y] = saved;
      return { x: () => wasmMaxPoolGrad(x, y, dy as TfTensor, a) };
    },
  });
  if (prelu)
    tf.registerGradient({
      kernelName: 'Prelu',
      inputsToSave: ['x', 'alpha'],
      gradFunc: (dy, saved, attrs) => {
        const [x, alpha] = saved;
        const d = dy as TfTensor;
        const fused = gradientPolicy.prelu[tf.getBackend()] && x.dtype === 'float32' && alpha.rank === 1 && alpha.shape[0] === x.shape[x.rank - 1];
        if (!fused) return prelu(dy, saved, attrs as Record<string, unknown>);
        return { x: () => wasmPreluGrad(x, alpha, d, 'x'), alpha: () => wasmPreluGrad(x, alpha, d, 'slope') };
      },
    });
  // comparisons and logic have no gradient in tfjs; a Where mask computed from a differentiated tensor would
  // stop backpropagation with "gradient function not found": they are constant almost everywhere (zero)
  for (const kernelName of ['Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual', 'LogicalAnd', 'LogicalOr', 'LogicalNot', 'LogicalXor']) {
    if (tf.getGradient(kernelName)) continue;
    const names = kernelName === 'LogicalNot' ? ['x'] : ['a', 'b'];
    tf.registerGradient({
      kernelName,
      inputsToSave: names,
      gradFunc: (_dy, saved) => Object.fromEntries(saved.map((t, k) => [names[k], () => tf.zeros(t.shape, 'float32')])),
    });
  }
}

/** Gather's gradient without UnsortedSegmentSum: a scatter-add (ScatterNd sums duplicate indices). */
function gatherGrad(x: TfTensor, indices: TfTensor, dy: TfTensor, axisAttr: number): TfTensor {
  return tf.tidy(() => {
    const axis = axisAttr < 0 ? axisAttr + x.rank : axisAttr;
    const outer = x.shape.slice(0, axis), inner = x.shape.slice(axis + 1);
    const n = indices.size;
    // dy [outer, indices..., inner] → [n, outer, inner]
    const values = tf.reshape(dy, [...outer, n, ...inner]);
    const perm = [outer.length, ...outer.map((_, i) => i), ...inner.map((_, i) => outer.length + 1 + i)];
    const moved = tf.transpose(values, perm);
    const target = [x.shape[axis], ...outer, ...inner];
    const scattered = tf.scatterND(tf.cast(tf.reshape(indices, [n, 1]), 'int32'), moved, target);
    const inv = perm.map((_, i) => perm.indexOf(i));
    return tf.transpose(scattered, inv);
  });
}

registerGradients();
