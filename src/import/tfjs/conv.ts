// Convolutions and pooling. tfjs computes these channels-last (NHWC) on wasm and cpu: the NCHW entry
// points transpose in and out; the `nhwc` entry points let the executor keep a chain of conv-family ops
// channels-last (the transposes between them cancel).
import { product, convOutSize } from '../shape-math.js';
import { registerKernels, tf, dims, derived, type Kernel, type KernelContext, type TfTensor, kernelError } from './registry.js';
import { attrInt, attrInts, type Node } from '../ir.js';
import { onnxPads, spatialAttr, padCrop, dilateAxes, stridedTake, taping } from './conv-util.js';
import { maxPoolTaps, LOWEST } from './gradients.js';

const toNHWC = (x: TfTensor) => tf.transpose(x, [0, 2, 3, 1]);
const toNCHW = (x: TfTensor) => tf.transpose(x, [0, 3, 1, 2]);

export interface Conv2DParams {
  strides: [number, number];
  dilations: [number, number];
  /** [top, bottom], [left, right] */
  pads: [[number, number], [number, number]];
  group: number;
}

/** Spatial parameters of a Conv/Pool node for input spatial size `inSize` and kernel `k`. */
function params(node: Node, inSize: number[], k: number[], withDilations = true): { strides: number[]; dilations: number[]; begin: number[]; end: number[] } {
  const n = inSize.length;
  const strides = spatialAttr(node, 'strides', n);
  const dilations = withDilations ? spatialAttr(node, 'dilations', n) : Array(n).fill(1);
  const eff = k.map((kk, i) => (kk - 1) * dilations[i] + 1);
  const { begin, end } = onnxPads(node, inSize, eff, strides);
  return { strides, dilations, begin, end };
}

/** Lifts 1-D parameters to 2-D with a unit first spatial axis. */
function as2d(p: { strides: number[]; dilations: number[]; begin: number[]; end: number[] }): { strides: number[]; dilations: number[]; begin: number[]; end: number[] } {
  if (p.strides.length === 2) return p;
  return { strides: [1, ...p.strides], dilations: [1, ...p.dilations], begin: [0, ...p.begin], end: [0, ...p.end] };
}

/**
 * Conv2D channels-last: x [N,H,W,C], w in ONNX layout [M, C/group, kh, kw], bias [M]. Grouped convolutions
 * other than depthwise are split into `group` convolutions.
 */
export function conv2dNHWC(x: TfTensor, w: TfTensor, bias: TfTensor | undefined, p: Conv2DParams, ctx?: KernelContext): TfTensor {
  const [sh, sw] = p.strides;
  const [dh, dw] = p.dilations;
  if ((sh > 1 || sw > 1) && (dh > 1 || dw > 1)) {
    // tfjs requires strides or dilations to be 1: convolve densely, then sub-sample
    const dense = conv2dNHWC(x, w, bias, { ...p, strides: [1, 1] }, ctx);
    const oh = convOutSize(dims(x)[1], dims(w)[2], sh, dh, p.pads[0][0], p.pads[0][1]);
    const ow = convOutSize(dims(x)[2], dims(w)[3], sw, dw, p.pads[1][0], p.pads[1][1]);
    return stridedTake(stridedTake(dense, 1, 0, sh, oh), 2, 0, sw, ow);
  }
  const C = x.shape[3];
  const M = w.shape[0];
  const g = p.group;
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], p.pads[0], p.pads[1], [0, 0]];
  const fused = !taping() && bias !== undefined;
  if (g === 1) {
    const filter = derived(ctx, w, 'conv2d', () => tf.transpose(w, [2, 3, 1, 0])) as tf.Tensor4D;
    if (fused) return tf.fused.conv2d({ x: x as tf.Tensor4D, filter, strides: p.strides, pad: pad as unknown as number, dataFormat: "NHWC", dilations: p.dilations, bias });
    const y = tf.conv2d(x as tf.Tensor4D, filter, p.strides, pad, 'NHWC', p.dilations);
    return bias ? tf.add(y, bias) : y;
  }
  if (g === C && M % C === 0) {
    const mult = M / C;
    const filter = derived(ctx, w, 'depthwise', () => tf.transpose(tf.reshape(w, [C, mult, dims(w)[2], dims(w)[3]]), [2, 3, 0, 1])) as tf.Tensor4D;
    if (fused) return tf.fused.depthwiseConv2d({ x: x as tf.Tensor4D, filter, strides: p.strides, pad: pad as unknown as number, dataFormat: "NHWC", dilations: p.dilations, bias });
    const y = tf.depthwiseConv2d(x as tf.Tensor4D, filter, p.strides, pad, 'NHWC', p.dilations);
    return bias ? tf.add(y, bias) : y;
  }
  const xs = tf.split(x, g, 3);
  const ws = tf.split(w, g, 0);
  const bs = bias ? tf.split(bias, g, 0) : [];
  const ys = xs.map((xg, i) => conv2dNHWC(xg, ws[i], bias ? bs[i] : undefined, { ...p, group: 1 }));
  return tf.concat(ys, 3);
}

function convParams(node: Node, x: TfTensor, w: TfTensor, channelsLast: boolean): Conv2DParams {
  const spatial = channelsLast ? x.shape.slice(1, -1) : x.shape.slice(2);
  const k = attrInts(node, 'kernel_shape') ?? w.shape.slice(2);
  const p = as2d(params(node, spatial, k));
  return {
    strides: p.strides as [number, number],
    dilations: p.dilations as [number, number],
    pads: [[p.begin[0], p.end[0]], [p.begin[1], p.end[1]]],
    group: attrInt(node, 'group', 1),
  };
}

function checkConvShapes(node: Node, x: TfTensor, w: TfTensor, cAxis: number): void {
  const g = attrInt(node, 'group', 1);
  if (dims(x)[cAxis] !== dims(w)[1] * g)
    throw kernelError(node, `input has ${dims(x)[cAxis]} channels, weight [${w.shape}] with group ${g} expects ${dims(w)[1] * g}`);
}

function convNCHW(inputs: TfTensor[], node: Node, ctx: KernelContext): TfTensor {
  const [x, w, b] = inputs;
  checkConvShapes(node, x, w, 1);
  if (x.rank === 3) {
    const y = conv2dNHWC(toNHWC(tf.expandDims(x, 2)), tf.expandDims(w, 2), b, convParams(node, x, w, false));
    return tf.squeeze(toNCHW(y), [2]);
  }
  if (x.rank === 4) return toNCHW(conv2dNHWC(toNHWC(x), w, b, convParams(node, x, w, false), ctx));
  if (x.rank === 5) return conv3d(x, w, b, node);
  throw kernelError(node, `${x.rank - 2}-D convolution is not supported`);
}

/** 3-D convolution (NCDHW) through tf.conv3d: groups split, strides with dilations densely then sub-sampled. */
function conv3d(x: TfTensor, w: TfTensor, b: TfTensor | undefined, node: Node): TfTensor {
  const g = attrInt(node, 'group', 1);
  const p = params(node, dims(x).slice(2), attrInts(node, 'kernel_shape') ?? dims(w).slice(2));
  const dil = p.dilations as [number, number, number];
  const both = p.strides.some((s0) => s0 > 1) && dil.some((d) => d > 1);
  const xl = padCrop(tf.transpose(x, [0, 2, 3, 4, 1]), [[0, 0], ...p.begin.map((b0, i) => [b0, p.end[i]] as [number, number]), [0, 0]]);
  const one = (xg: TfTensor, wg: TfTensor) =>
    tf.conv3d(xg as tf.Tensor5D, tf.transpose(wg, [2, 3, 4, 1, 0]) as tf.Tensor5D, both ? 1 : (p.strides as [number, number, number]), 'valid', 'NDHWC', dil);
  let y: TfTensor = g === 1 ? one(xl, w) : tf.concat(tf.split(xl, g, 4).map((xg, k) => one(xg, tf.split(w, g, 0)[k])), 4);
  if (both) {
    const k = dims(w).slice(2);
    for (let i = 0; i < 3; i++) {
      const out = convOutSize(dims(xl)[i + 1], k[i], p.strides[i], dil[i], 0, 0);
      y = stridedTake(y, i + 1, 0, p.strides[i], out);
    }
  }
  if (b) y = tf.add(y, b);
  return tf.transpose(y, [0, 4, 1, 2, 3]);
}

// ---- ConvTranspose: a forward conv of the zero-inserted, padded input with the flipped kernel ----
function convTransposeNHWC(x: TfTensor, w: TfTensor, b: TfTensor | undefined, node: Node, spatialRank: number): TfTensor {
  const g = attrInt(node, 'group', 1);
  const inSize = x.shape.slice(1, 3);
  const k = (attrInts(node, 'kernel_shape') ?? w.shape.slice(2)).slice();
  const n = spatialRank;
  const strides = spatialAttr(node, 'strides', n);
  const dil = spatialAttr(node, 'dilations', n);
  const outPad = spatialAttr(node, 'output_padding', n, 0);
  const outShape = attrInts(node, 'output_shape');
  const auto = node.attrs.auto_pad?.type === 'string' ? node.attrs.auto_pad.value : 'NOTSET';
  const lift = (v: number[], d: number) => (n === 1 ? [d, ...v] : v);
  const s2 = lift(strides, 1), d2 = lift(dil, 1), op2 = lift(outPad, 0);
  const k2 = n === 1 ? [1, ...k] : k;
  const eff = k2.map((kk, i) => (kk - 1) * d2[i] + 1);
  let begin: number[], end: number[];
  if (outShape || auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
    const target = outShape ? lift(outShape.slice(-n), 1) : inSize.map((v, i) => v * s2[i]);
    begin = []; end = [];
    for (let i = 0; i < 2; i++) {
      const total = s2[i] * (inSize[i] - 1) + op2[i] + eff[i] - target[i];
      const half = Math.floor(total / 2);
      if (auto === 'SAME_UPPER') { begin.push(half); end.push(total - half); }
      else { begin.push(total - half); end.push(half); }
    }
  } else {
    const p = spatialAttr(node, 'pads', 2 * n, 0);
    begin = lift(p.slice(0, n), 0); end = lift(p.slice(n), 0);
  }
  const xd = dilateAxes(x, [1, 2], s2);
  const xp = padCrop(xd, [[0, 0], [eff[0] - 1 - begin[0], eff[0] - 1 - end[0] + op2[0]], [eff[1] - 1 - begin[1], eff[1] - 1 - end[1] + op2[1]], [0, 0]]);
  const C = x.shape[3];
  // w [C, M/g, kh, kw] → per group a forward-conv weight in ONNX layout [M/g, C/g, kh, kw], flipped
  const wf = tf.reverse(n === 1 ? tf.expandDims(w, 2) : w, [2, 3]);
  const p: Conv2DParams = { strides: [1, 1], dilations: d2 as [number, number], pads: [[0, 0], [0, 0]], group: 1 };
  let y: TfTensor;
  if (g === 1) y = conv2dNHWC(xp, tf.transpose(wf, [1, 0, 2, 3]), b, p);
  else if (g === C && w.shape[1] === 1) y = conv2dNHWC(xp, wf, b, { ...p, group: C });
  else {
    const xs = tf.split(xp, g, 3), ws = tf.split(wf, g, 0), bs = b ? tf.split(b, g, 0) : [];
    y = tf.concat(xs.map((xg, i) => conv2dNHWC(xg, tf.transpose(ws[i], [1, 0, 2, 3]), b ? bs[i] : undefined, p)), 3);
  }
  return y;
}

function convTransposeNCHW(inputs: TfTensor[], node: Node): TfTensor {
  const [x, w, b] = inputs;
  if (x.rank === 3) return tf.squeeze(toNCHW(convTransposeNHWC(toNHWC(tf.expandDims(x, 2)), w, b, node, 1)), [2]);
  if (x.rank === 4) return toNCHW(convTransposeNHWC(toNHWC(x), w, b, node, 2));
  if (x.rank === 5) return convTranspose3d(x, w, b, node);
  throw kernelError(node, `${x.rank - 2}-D ConvTranspose is not supported`);
}

/** 3-D ConvTranspose (group 1, no dilation) as a forward conv3d of the zero-inserted, padded input. */
function convTranspose3d(x: TfTensor, w: TfTensor, b: TfTensor | undefined, node: Node): TfTensor {
  const g = attrInt(node, 'group', 1);
  const n = 3;
  const k = attrInts(node, 'kernel_shape') ?? dims(w).slice(2);
  const strides = spatialAttr(node, 'strides', n), dil = spatialAttr(node, 'dilations', n);
  const outPad = spatialAttr(node, 'output_padding', n, 0);
  if (g !== 1 || dil.some((d) => d !== 1) || attrInts(node, 'output_shape') || (node.attrs.auto_pad && node.attrs.auto_pad.type === 'string' && node.attrs.auto_pad.value !== 'NOTSET'))
    throw kernelError(node, '3-D ConvTranspose with groups, dilations, output_shape or auto_pad is not supported');
  const p = spatialAttr(node, 'pads', 2 * n, 0);
  const xl = tf.transpose(x, [0, 2, 3, 4, 1]);
  const xd = dilateAxes(xl, [1, 2, 3], strides);
  const pads: [number, number][] = [[0, 0], ...k.map((kk, i) => [kk - 1 - p[i], kk - 1 - p[i + n] + outPad[i]] as [number, number]), [0, 0]];
  const filter = tf.transpose(tf.reverse(w, [2, 3, 4]), [2, 3, 4, 0, 1]) as tf.Tensor5D;
  let y = tf.conv3d(padCrop(xd, pads) as tf.Tensor5D, filter, 1, 'valid');
  if (b) y = tf.add(y, b);
  return tf.transpose(y, [0, 4, 1, 2, 3]);
}

// ---- pooling ----
interface PoolGeometry { k: number[]; strides: number[]; dilations: number[]; begin: number[]; end: number[]; extra: number[]; out: number[] }

function poolGeometry(node: Node, inSize: number[], withDilations: boolean): PoolGeometry {
  const k = attrInts(node, 'kernel_shape');
  if (!k) throw kernelError(node, 'kernel_shape is required');
  const { strides, dilations, begin, end } = params(node, inSize, k, withDilations);
  const ceil = attrInt(node, 'ceil_mode', 0) === 1;
  const out: number[] = [], extra: number[] = [];
  inSize.forEach((n, i) => {
    const eff = (k[i] - 1) * dilations[i] + 1;
    const padded = n + begin[i] + end[i];
    let o = (ceil ? Math.ceil : Math.floor)((padded - eff) / strides[i]) + 1;
    // a last window starting in the end padding is dropped (as PyTorch and onnxruntime do)
    if (ceil && (o - 1) * strides[i] >= n + begin[i]) o--;
    out.push(o);
    extra.push(Math.max(0, (o - 1) * strides[i] + eff - padded));
  });
  return { k, strides, dilations, begin, end, extra, out };
}

/** Pooling over the spatial axes 1..r-2 of a channels-last tensor. */
function poolNHWC(x: TfTensor, node: Node, kind: 'max' | 'avg'): TfTensor {
  const spatial = x.shape.slice(1, -1);
  const g = poolGeometry(node, spatial, kind === 'max');
  const n = spatial.length;
  const padSpec = (extraOnly: boolean): [number, number][] =>
    [[0, 0], ...spatial.map((_, i) => [extraOnly ? 0 : g.begin[i], (extraOnly ? 0 : g.end[i]) + g.extra[i]] as [number, number]), [0, 0]];
  const isInt = x.dtype !== 'float32';
  const xf = isInt ? tf.cast(x, 'float32') : x;
  const anyPad = padSpec(false).some(([a, b]) => a || b);
  let y: TfTensor;
  if (kind === 'max') {
    // the lowest float, not -Infinity, pads: the gradient takes windows by convolution (0·-Inf = NaN)
    const xp = anyPad ? padCrop(xf, padSpec(false), LOWEST) : xf;
    const dilated = g.dilations.some((d) => d !== 1);
    if (!dilated && !(n === 3 && tf.getBackend() === 'wasm')) y = pool(xp, g, 'max', n);
    else if (n === 2) {
      // dilated: tf.pool (space-to-batch) at stride 1, then every stride-th output
      const dense = tf.pool(xp as tf.Tensor4D, g.k as [number, number], 'max', 'valid', g.dilations as [number, number], 1);
      y = stridedTake(stridedTake(dense, 1, 0, g.strides[0], g.out[0]), 2, 0, g.strides[1], g.out[1]);
    } else {
      // 1-D dilated, and 3-D on wasm (its MaxPool3D starts the max at FLT_MIN, above every negative input):
      // the max over the kernel taps, each a strided view of the padded input
      y = undefined as unknown as TfTensor;
      const taps = product(g.k);
      for (let t = 0; t < taps; t++) {
        let rem = t;
        let v = xp;
        for (let i = n - 1; i >= 0; i--) {
          const ki = rem % g.k[i];
          rem = Math.floor(rem / g.k[i]);
          v = stridedTake(v, i + 1, ki * g.dilations[i], g.strides[i], g.out[i]);
        }
        y = y ? tf.maximum(y, v) : v;
      }
    }
  } else {
    const xp = anyPad ? padCrop(xf, padSpec(false), 0) : xf;
    y = pool(xp, g, 'avg', n);
    const includePad = attrInt(node, 'count_include_pad', 0) === 1;
    const needsCount = (!includePad && g.begin.concat(g.end).some((p) => p > 0)) || g.extra.some((e) => e > 0);
    if (needsCount) {
      // divide by the number of counted elements under each window (a constant)
      const cnt = tf.tidy(() => {
        const region = includePad ? spatial.map((s, i) => s + g.begin[i] + g.end[i]) : spatial;
        const ones = tf.ones([1, ...region, 1]);
        const mask = padCrop(ones, includePad ? padSpec(true) : padSpec(false), 0);
        return pool(mask, g, 'avg', n);
      });
      y = tf.div(y, cnt);
    }
  }
  return isInt ? tf.cast(tf.round(y), x.dtype) : y;
}

function pool(x: TfTensor, g: PoolGeometry, kind: 'max' | 'avg', n: number): TfTensor {
  if (n === 2) {
    const k = g.k as [number, number], s = g.strides as [number, number];
    return kind === 'max' ? tf.maxPool(x as tf.Tensor4D, k, s, 'valid') : tf.avgPool(x as tf.Tensor4D, k, s, 'valid');
  }
  if (n === 1) {
    const x4 = tf.expandDims(x, 1) as tf.Tensor4D;
    const k: [number, number] = [1, g.k[0]], s: [number, number] = [1, g.strides[0]];
    return tf.squeeze((kind === 'max' ? tf.maxPool(x4, k, s, 'valid') : tf.avgPool(x4, k, s, 'valid')), [1]);
  }
  if (n === 3) {
    const k = g.k as [number, number, number], s = g.strides as [number, number, number];
    return kind === 'max' ? tf.maxPool3d(x as tf.Tensor5D, k, s, 'valid') : tf.avgPool3d(x as tf.Tensor5D, k, s, 'valid');
  }
  throw new Error(`${n}-D pooling is not supported`);
}

/** MaxPool with its Indices output (flat NCHW index into the unpadded input; storage_order 1 = column-major). */
function maxPoolWithIndices(x: TfTensor, node: Node): TfTensor[] {
  if (x.rank !== 4) throw kernelError(node, 'the Indices output of MaxPool is supported for 2-D pooling only');
  const [N, C, H, W] = dims(x);
  const g = poolGeometry(node, [H, W], true);
  if (g.dilations.some((d) => d !== 1)) throw kernelError(node, 'the Indices output of a dilated MaxPool is not supported');
  const pad: [[number, number], [number, number], [number, number], [number, number]] =
    [[0, 0], [g.begin[0], g.end[0] + g.extra[0]], [g.begin[1], g.end[1] + g.extra[1]], [0, 0]];
  // the first maximum's window tap, then its position (tfjs' MaxPoolWithArgmax is wrong on wasm)
  const p = maxPoolTaps(toNHWC(x), g.k as [number, number], g.strides as [number, number], pad);
  const i32 = (v: number) => tf.scalar(v, 'int32');
  const row = tf.reshape(tf.mul(tf.range(0, p.oh, 1, 'int32'), i32(p.sh)), [1, p.oh, 1, 1]);
  const col = tf.reshape(tf.mul(tf.range(0, p.ow, 1, 'int32'), i32(p.sw)), [1, 1, p.ow, 1]);
  const yy = tf.sub(tf.add(row, tf.floorDiv(p.first, i32(p.kw))), i32(g.begin[0]));
  const xx = tf.sub(tf.add(col, tf.mod(p.first, i32(p.kw))), i32(g.begin[1]));
  const n = tf.reshape(tf.range(0, N, 1, 'int32'), [N, 1, 1, 1]);
  const c = tf.reshape(tf.range(0, C, 1, 'int32'), [1, 1, 1, C]);
  const plane = tf.add(tf.mul(n, i32(C)), c);
  const idx = attrInt(node, 'storage_order', 0) === 1
    ? tf.add(tf.mul(tf.add(tf.mul(plane, i32(W)), xx), i32(H)), yy)
    : tf.add(tf.mul(tf.add(tf.mul(plane, i32(H)), yy), i32(W)), xx);
  return [toNCHW(poolNHWC(toNHWC(x), { ...node, outputs: [node.outputs[0]] }, 'max')), toNCHW(idx)];
}

function channelsLast(x: TfTensor): TfTensor {
  const r = x.rank;
  return tf.transpose(x, [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1]);
}
function channelsFirst(x: TfTensor): TfTensor {
  const r = x.rank;
  return tf.transpose(x, [0, r - 1, ...Array.from({ length: r - 2 }, (_, i) => i + 1)]);
}

const rank4 = (_n: Node, ranks: number[]) => ranks[0] === 4;

function poolKernel(op: 'MaxPool' | 'AveragePool', kind: 'max' | 'avg', since: number): Kernel {
  return {
    op, since,
    run: ([x], node) => {
      if (op === 'MaxPool' && node.outputs.length > 1 && node.outputs[1]) return maxPoolWithIndices(x, node);
      if (x.rank < 3 || x.rank > 5) throw kernelError(node, `${x.rank - 2}-D pooling is not supported`);
      return [channelsFirst(poolNHWC(channelsLast(x), node, kind))];
    },
    // the Indices output is computed in NCHW terms by the plain entry point
    nhwc: { mode: 'required', accepts: (n, ranks) => ranks[0] === 4 && !n.outputs[1], run: ([x], node) => [poolNHWC(x, node, kind)] },
  };
}

function globalPool(op: string, f: (x: TfTensor, axes: number[]) => TfTensor): Kernel {
  return {
    op, since: 1,
    run: ([x]) => [f(x, Array.from({ length: x.rank - 2 }, (_, i) => i + 2))],
    nhwc: { mode: 'either', accepts: rank4, run: ([x]) => [f(x, [1, 2])] },
  };
}

export const convKernels: Kernel[] = [
  {
    op: 'Conv', since: 1, weights: [1, 2],
    run: (inputs, node, ctx) => [convNCHW(inputs, node, ctx)],
    nhwc: {
      mode: 'required', accepts: rank4,
      run: ([x, w, b], node, ctx) => {
        checkConvShapes(node, x, w, 3);
        return [conv2dNHWC(x, w, b, convParams(node, x, w, true), ctx)];
      },
    },
  },
  {
    op: 'ConvTranspose', since: 1, weights: [1, 2],
    run: (inputs, node) => [convTransposeNCHW(inputs, node)],
    nhwc: { mode: 'required', accepts: rank4, run: ([x, w, b], node) => [convTransposeNHWC(x, w, b, node, 2)] },
  },
  poolKernel('MaxPool', 'max', 1),
  poolKernel('AveragePool', 'avg', 1),
  globalPool('GlobalAveragePool', (x, axes) => tf.mean(x, axes, true)),
  globalPool('GlobalMaxPool', (x, axes) => tf.max(x, axes, true)),
];

registerKernels(...convKernels);
