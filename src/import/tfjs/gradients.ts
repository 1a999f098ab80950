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

/** x padded as the forward conv saw it, cropped to the rows/columns some output reads. */
function paddedX(x: TfTensor, g: ConvGeom): TfTensor {
  const needH = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const needW = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  return padCrop(x, [[0, 0], [g.top, needH - dims(x)[1] - g.top], [g.left, needW - dims(x)[2] - g.left], [0, 0]]);
}

export function conv2dInputGrad(x: TfTensor, filter: TfTensor, dy: TfTensor, attrs: Record<string, unknown>): TfTensor {
  return tf.tidy(() => {
    const g = geometry(x, filter, attrs, false);
    const w = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
    return tf.conv2d(paddedDy(dy, x, g) as tf.Tensor4D, w, 1, 'valid', 'NHWC', [g.dh, g.dw]);
  });
}

/** dW[i,j] = Σ x_tap(i,j)ᵀ·dy: one matMul of dyᵀ [M, N·OH·OW] with the im2col patches [N·OH·OW, kh·kw·C]. */
export function conv2dFilterGrad(x: TfTensor, filter: TfTensor, dy: TfTensor, attrs: Record<string, unknown>): TfTensor {
  return tf.tidy(() => {
    const g = geometry(x, filter, attrs, false);
    const [kh, kw, c, m] = filter.shape;
    const xp = paddedX(x, g);
    const rows = x.shape[0] * g.oh * g.ow;
    const taps: TfTensor[] = [];
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) taps.push(tap(xp, g, i, j));
    const patches = tf.reshape((taps.length === 1 ? taps[0] : tf.concat(taps, 3)), [rows, kh * kw * c]);
    const dyT = tf.transpose(tf.reshape(dy, [rows, m]));
    return tf.transpose(tf.reshape(tf.matMul(dyT, patches), [m, kh, kw, c]), [1, 2, 3, 0]);
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

export function depthwiseFilterGrad(x: TfTensor, filter: TfTensor, dy: TfTensor, attrs: Record<string, unknown>): TfTensor {
  return tf.tidy(() => {
    const g = geometry(x, filter, attrs, true);
    const [kh, kw, c, mult] = filter.shape;
    const xp = paddedX(x, g);
    const rows = x.shape[0] * g.oh * g.ow;
    const dy3 = tf.reshape(dy, [rows, c, mult]);
    const out: TfTensor[] = [];
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++) {
        const t = tf.reshape(tap(xp, g, i, j), [rows, c, 1]);
        out.push(tf.sum(tf.mul(t, dy3), 0));
      }
    return tf.reshape(tf.stack(out), [kh, kw, c, mult]);
  });
}

// ---- choosing per backend ----
const hasKernel = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;
const dilated = (attrs: Record<string, unknown>) => {
  const d = attrs.dilations;
  return d !== undefined && d !== null && (Array.isArray(d) ? d.some((v) => v !== 1) : d !== 1);
};
const nchwFormat = (attrs: Record<string, unknown>) => attrs.dataFormat === 'NCHW';

/**
 * Where linfold's variant is used. 'native' backends (tfjs-node) keep tfjs' gradients unless a kernel is
 * missing; on cpu the measured winners are used (see bench/ and test/gradients.test.ts); on wasm the
 * replacements always (the backprop kernels do not exist there or are slower).
 */
export const gradientPolicy = {
  conv2dInput: { wasm: true, cpu: true } as Record<string, boolean>,
  conv2dFilter: { wasm: true, cpu: false } as Record<string, boolean>,
  depthwiseInput: { wasm: true, cpu: true } as Record<string, boolean>,
  depthwiseFilter: { wasm: true, cpu: false } as Record<string, boolean>,
  matMulExplicitTranspose: { wasm: true } as Record<string, boolean>,
};

function want(kind: keyof typeof gradientPolicy, kernel: string, attrs: Record<string, unknown>): boolean {
  if (nchwFormat(attrs)) return false;
  if (dilated(attrs) && kind !== 'matMulExplicitTranspose') return true;
  if (!hasKernel(kernel)) return true;
  return gradientPolicy[kind][tf.getBackend()] ?? false;
}

let registered = false;
export function registerGradients(): void {
  if (registered) return;
  registered = true;
  const orig = (name: string) => tf.getGradient(name)?.gradFunc as GradFunc | undefined;
  const conv = orig('Conv2D');
  const depthwise = orig('DepthwiseConv2dNative');
  const batchMatMul = orig('BatchMatMul');
  const gather = orig('GatherV2');

  tf.registerGradient({
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved;
      const a = attrs as Record<string, unknown>;
      const base = conv && !dilated(a) ? conv(dy, saved, a) : undefined;
      const d = dy as TfTensor;
      return {
        x: want('conv2dInput', 'Conv2DBackpropInput', a) || !base ? () => conv2dInputGrad(x, filter, d, a) : base.x,
        filter: want('conv2dFilter', 'Conv2DBackpropFilter', a) || !base ? () => conv2dFilterGrad(x, filter, d, a) : base.filter,
      };
    },
  });
  tf.registerGradient({
    kernelName: 'DepthwiseConv2dNative',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved;
      const a = attrs as Record<string, unknown>;
      const base = depthwise && !dilated(a) ? depthwise(dy, saved, a) : undefined;
      const d = dy as TfTensor;
      return {
        x: want('depthwiseInput', 'DepthwiseConv2dNativeBackpropInput', a) || !base ? () => depthwiseInputGrad(x, filter, d, a) : base.x,
        filter: want('depthwiseFilter', 'DepthwiseConv2dNativeBackpropFilter', a) || !base ? () => depthwiseFilterGrad(x, filter, d, a) : base.filter,
      };
    },
  });
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
        if (hasKernel('UnsortedSegmentSum') || (a.batchDims ?? 0) !== 0) return gather(dy, saved, a as unknown as Record<string, unknown>);
        const [x, indices] = saved;
        return { x: () => gatherGrad(x, indices, dy as TfTensor, a.axis), indices: () => indices };
      },
    });
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
