// Shape and data movement: Reshape, Flatten, Transpose, Concat, Split, Slice, Squeeze/Unsqueeze, Gather,
// GatherElements, Shape, Size, Constant, ConstantOfShape, Dropout, Pad, Expand, Range, Tile, Resize/Upsample,
// DepthToSpace/SpaceToDepth, OneHot, Trilu, EyeLike.
import { broadcastDims, normAxis, product } from '../shape-math.js';
import { registerKernels, tf, dims, type Kernel, type TfTensor, type KernelContext, kernelError, tfDType } from './registry.js';
import { attrFloat, attrInt, attrInts, attrString, attrTensor, attrFloats, type Node } from '../ir.js';
import { dtypeFromCode } from '../tensor.js';
import { toTf } from './convert.js';
import { padCrop, stridedTake } from './conv-util.js';


function reshape([x, shape]: TfTensor[], node: Node, ctx: KernelContext): TfTensor {
  const target = shape ? ctx.values(shape) : attrInts(node, 'shape');
  if (!target) throw kernelError(node, 'no shape given');
  const allowZero = attrInt(node, 'allowzero', 0) === 1;
  const dims = target.map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
  const known = product(dims.filter((d) => d !== -1));
  const out = dims.map((d) => (d === -1 ? (known === 0 ? 0 : x.size / known) : d));
  if (product(out) !== x.size) throw kernelError(node, `cannot reshape [${x.shape}] to [${target}]`);
  return tf.reshape(x, out);
}

function slice(x: TfTensor, starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined, node: Node): TfTensor {
  const r = x.rank;
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, r));
  let y = x;
  const begin = Array(r).fill(0), size = x.shape.slice();
  const post: { axis: number; step: number; count: number; reverse: boolean }[] = [];
  ax.forEach((axis, i) => {
    const dim = x.shape[axis];
    const step = steps?.[i] ?? 1;
    if (step === 0) throw kernelError(node, 'slice step 0');
    let s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    let count: number;
    let lo: number;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), dim);
      e = Math.min(Math.max(e, 0), dim);
      count = Math.max(0, Math.ceil((e - s) / step));
      lo = s;
    } else {
      s = Math.min(Math.max(s, 0), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
      count = Math.max(0, Math.ceil((e - s) / step));
      lo = s + (count - 1) * step;
    }
    const span = count > 0 ? (count - 1) * Math.abs(step) + 1 : 0;
    begin[axis] = count > 0 ? lo : 0;
    size[axis] = span;
    if (Math.abs(step) > 1 || step < 0) post.push({ axis, step: Math.abs(step), count, reverse: step < 0 });
  });
  y = tf.slice(x, begin, size);
  for (const p of post) {
    if (p.step > 1 && p.count > 0) y = stridedTake(y, p.axis, 0, p.step, p.count);
    if (p.reverse && p.count > 1) y = tf.reverse(y, p.axis);
  }
  return y === x ? tf.clone(x) : y;
}

function squeeze(x: TfTensor, axes: number[] | undefined): TfTensor {
  const ax = axes ? axes.map((a) => normAxis(a, x.rank)) : x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
  return tf.reshape(x, x.shape.filter((_, i) => !ax.includes(i)));
}

function unsqueeze(x: TfTensor, axes: number[]): TfTensor {
  const r = x.rank + axes.length;
  const ax = axes.map((a) => normAxis(a, r));
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : x.shape[k++]);
  return tf.reshape(x, out);
}

function fixNegativeIndices(idx: TfTensor, n: number): TfTensor {
  const i = idx.dtype === 'int32' ? idx : tf.cast(idx, 'int32');
  return tf.where(tf.less(i, 0), tf.add(i, tf.scalar(n, 'int32')), i);
}

function gatherElements(x: TfTensor, idx: TfTensor, axis: number): TfTensor {
  const r = x.rank;
  const strides = x.shape.map((_, i) => product(x.shape.slice(i + 1)));
  let flat: TfTensor = tf.mul(fixNegativeIndices(idx, x.shape[axis]), tf.scalar(strides[axis], 'int32'));
  for (let d = 0; d < r; d++) {
    if (d === axis) continue;
    const shape = idx.shape.map((v, i) => (i === d ? v : 1));
    flat = tf.add(flat, tf.mul(tf.reshape(tf.range(0, idx.shape[d], 1, 'int32'), shape), tf.scalar(strides[d], 'int32')));
  }
  return tf.reshape(tf.gather(tf.reshape(x, [-1]), tf.reshape(flat, [-1])), idx.shape);
}

function split([x, splitIn]: TfTensor[], node: Node, ctx: KernelContext): TfTensor[] {
  const axis = normAxis(attrInt(node, 'axis', 0), x.rank);
  const n = node.outputs.length;
  let sizes = splitIn ? ctx.values(splitIn) : attrInts(node, 'split');
  if (!sizes || sizes.length === 0) {
    const dim = x.shape[axis];
    const parts = attrInt(node, 'num_outputs', n);
    const each = Math.ceil(dim / parts);
    sizes = Array.from({ length: parts }, (_, i) => Math.max(0, Math.min(each, dim - i * each)));
  }
  return tf.split(x, sizes, axis);
}

function edgePad(x: TfTensor, pads: [number, number][]): TfTensor {
  let y = padCrop(x, pads.map(([a, b]) => [Math.min(a, 0), Math.min(b, 0)] as [number, number]));
  pads.forEach(([a, b], axis) => {
    const parts: TfTensor[] = [];
    const n = y.shape[axis];
    const edge = (at: number, count: number) => {
      const begin = y.shape.map((_, i) => (i === axis ? at : 0));
      const size = y.shape.map((d, i) => (i === axis ? 1 : d));
      const reps = y.shape.map((_, i) => (i === axis ? count : 1));
      return tf.tile(tf.slice(y, begin, size), reps);
    };
    if (a > 0) parts.push(edge(0, a));
    parts.push(y);
    if (b > 0) parts.push(edge(n - 1, b));
    if (parts.length > 1) y = tf.concat(parts, axis);
  });
  return y;
}

/**
 * Reflect padding from reversed slices and concat: tfjs' MirrorPad gradient only slices dy, dropping the
 * contributions of the reflected border.
 */
function reflectPad(x: TfTensor, pads: [number, number][]): TfTensor {
  let y = padCrop(x, pads.map(([a, b]) => [Math.min(a, 0), Math.min(b, 0)] as [number, number]));
  pads.forEach(([a, b], axis) => {
    if (a <= 0 && b <= 0) return;
    const n = y.shape[axis];
    const part = (from: number, count: number) =>
      tf.reverse(tf.slice(y, y.shape.map((_, i) => (i === axis ? from : 0)), dims(y).map((d, i) => (i === axis ? count : d))), axis);
    const parts: TfTensor[] = [];
    if (a > 0) parts.push(part(1, a));
    parts.push(y);
    if (b > 0) parts.push(part(n - 1 - b, b));
    y = tf.concat(parts, axis);
  });
  return y;
}

function pad(inputs: TfTensor[], node: Node, ctx: KernelContext): TfTensor {
  const [x, padsIn, valueIn, axesIn] = inputs;
  const mode = attrString(node, 'mode', 'constant');
  const raw = padsIn ? ctx.values(padsIn) : (attrInts(node, 'pads') ?? attrInts(node, 'paddings') ?? []);
  const r = x.rank;
  const axes = axesIn ? ctx.values(axesIn).map((a) => normAxis(a, r)) : Array.from({ length: r }, (_, i) => i);
  const pads: [number, number][] = Array.from({ length: r }, () => [0, 0]);
  axes.forEach((a, i) => (pads[a] = [raw[i], raw[i + axes.length]]));
  if (mode === 'constant') {
    const v = valueIn && valueIn.size > 0 ? ctx.values(valueIn)[0] : attrFloat(node, 'value', 0);
    return padCrop(x, pads, v);
  }
  if (mode === 'reflect') return reflectPad(x, pads);
  if (mode === 'edge') return edgePad(x, pads);
  throw kernelError(node, `pad mode '${mode}' is not supported`);
}

// ---- Resize: separable resampling by gathers with host-computed taps ----
interface Tap { idx: Int32Array; w: Float32Array }

function resizeTaps(node: Node, inSize: number, outSize: number, lenResized: number, scale: number, roi: [number, number] | undefined, mode: string, coord: string): { taps: Tap[]; valid?: Uint8Array } {
  const nearestMode = attrString(node, 'nearest_mode', 'round_prefer_floor');
  const A = attrFloat(node, 'cubic_coeff_a', -0.75);
  const exclude = attrInt(node, 'exclude_outside', 0) === 1;
  const ntaps = mode === 'nearest' ? 1 : mode === 'linear' ? 2 : 4;
  const taps: Tap[] = Array.from({ length: ntaps }, () => ({ idx: new Int32Array(outSize), w: new Float32Array(outSize) }));
  let valid: Uint8Array | undefined;
  if (coord === 'tf_crop_and_resize') valid = new Uint8Array(outSize);
  const clamp = (i: number) => Math.min(Math.max(i, 0), inSize - 1);
  for (let o = 0; o < outSize; o++) {
    let x: number;
    switch (coord) {
      case 'half_pixel': x = (o + 0.5) / scale - 0.5; break;
      case 'pytorch_half_pixel': x = outSize > 1 ? (o + 0.5) / scale - 0.5 : 0; break;
      case 'align_corners': x = lenResized > 1 ? (o * (inSize - 1)) / (lenResized - 1) : 0; break;
      case 'asymmetric': x = o / scale; break;
      case 'tf_half_pixel_for_nn': x = (o + 0.5) / scale; break;
      case 'tf_crop_and_resize': {
        const [s, e] = roi ?? [0, 1];
        x = outSize > 1 ? s * (inSize - 1) + (o * (e - s) * (inSize - 1)) / (outSize - 1) : 0.5 * (s + e) * (inSize - 1);
        valid![o] = x >= 0 && x <= inSize - 1 ? 1 : 0;
        break;
      }
      default: throw kernelError(node, `coordinate_transformation_mode '${coord}' is not supported`);
    }
    if (mode === 'nearest') {
      let i: number;
      switch (nearestMode) {
        case 'round_prefer_floor': i = x === Math.floor(x) + 0.5 ? Math.floor(x) : Math.round(x); break;
        case 'round_prefer_ceil': i = Math.round(x); break;
        case 'floor': i = Math.floor(x); break;
        case 'ceil': i = Math.ceil(x); break;
        default: throw kernelError(node, `nearest_mode '${nearestMode}' is not supported`);
      }
      taps[0].idx[o] = clamp(i);
      taps[0].w[o] = 1;
    } else if (mode === 'linear') {
      const xc = Math.min(Math.max(x, 0), inSize - 1);
      const x0 = Math.floor(xc);
      const x1 = Math.min(x0 + 1, inSize - 1);
      const d = xc - x0;
      taps[0].idx[o] = x0; taps[0].w[o] = 1 - d;
      taps[1].idx[o] = x1; taps[1].w[o] = d;
    } else {
      const x0 = Math.floor(x);
      const d = x - x0;
      const c = [
        ((A * (d + 1) - 5 * A) * (d + 1) + 8 * A) * (d + 1) - 4 * A,
        ((A + 2) * d - (A + 3)) * d * d + 1,
        ((A + 2) * (1 - d) - (A + 3)) * (1 - d) * (1 - d) + 1,
        ((A * (2 - d) - 5 * A) * (2 - d) + 8 * A) * (2 - d) - 4 * A,
      ];
      let total = 0;
      for (let t = 0; t < 4; t++) {
        const i = x0 - 1 + t;
        if (exclude && (i < 0 || i >= inSize)) c[t] = 0;
        total += c[t];
      }
      for (let t = 0; t < 4; t++) {
        taps[t].idx[o] = clamp(x0 - 1 + t);
        taps[t].w[o] = exclude ? c[t] / total : c[t];
      }
    }
  }
  return { taps, valid };
}

function resample(x: TfTensor, node: Node, outShape: number[], lengths: number[], scales: number[], roi: number[] | undefined, mode: string, coord: string): TfTensor {
  let y = x.dtype === 'float32' || mode === 'nearest' ? x : tf.cast(x, 'float32');
  const r = x.rank;
  let mask: TfTensor | undefined;
  for (let axis = 0; axis < r; axis++) {
    const inSize = x.shape[axis], outSize = outShape[axis];
    if (inSize === outSize && scales[axis] === 1 && coord !== 'tf_crop_and_resize') continue;
    const { taps, valid } = resizeTaps(node, inSize, outSize, lengths[axis], scales[axis], roi ? [roi[axis], roi[axis + r]] : undefined, mode, coord);
    const wShape = Array.from({ length: r }, (_, i) => (i === axis ? outSize : 1));
    let acc: TfTensor | undefined;
    for (const t of taps) {
      const g = tf.gather(y, tf.tensor1d(t.idx, 'int32'), axis);
      const term = mode === 'nearest' ? g : tf.mul(g, tf.tensor(t.w, wShape));
      acc = acc ? tf.add(acc, term) : term;
    }
    y = acc!;
    if (valid) {
      const m = tf.tensor(Float32Array.from(valid), wShape);
      mask = mask ? tf.mul(mask, m) : m;
    }
  }
  if (mask) y = tf.where(tf.greater(tf.broadcastTo(mask, y.shape), 0), y, tf.fill(y.shape, attrFloat(node, 'extrapolation_value', 0), y.dtype));
  if (y.dtype !== x.dtype) y = tf.cast(tf.round(y), x.dtype);
  return y === x ? tf.clone(x) : y;
}

function resize(inputs: TfTensor[], node: Node, ctx: KernelContext): TfTensor {
  const x = inputs[0];
  let roiT: TfTensor | undefined, scalesT: TfTensor | undefined, sizesT: TfTensor | undefined;
  if (ctx.opset < 11) scalesT = inputs[1];
  else [, roiT, scalesT, sizesT] = inputs;
  const mode = attrString(node, 'mode', 'nearest');
  const coord = ctx.opset < 11 ? 'asymmetric' : attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const r = x.rank;
  if (node.attrs.axes) throw kernelError(node, 'the axes attribute of Resize is not supported');
  // lengths: the resized length the coordinate transform uses (in·scale when scales are given, unrounded)
  let outShape: number[], scales: number[], lengths: number[];
  if (sizesT && sizesT.size > 0) {
    outShape = ctx.values(sizesT);
    scales = outShape.map((o, i) => o / x.shape[i]);
    lengths = outShape;
  } else if (scalesT && scalesT.size > 0) {
    scales = ctx.values(scalesT);
    outShape = scales.map((s, i) => Math.floor(x.shape[i] * s));
    lengths = scales.map((s, i) => x.shape[i] * s);
  } else throw kernelError(node, 'Resize needs scales or sizes');
  if (scales.length !== r) throw kernelError(node, `${scales.length} scales for a rank-${r} input`);
  const roi = roiT && roiT.size > 0 ? ctx.values(roiT) : undefined;
  if (ctx.opset < 11 && mode === 'nearest') {
    // Resize-10 nearest: asymmetric, round_prefer_floor is not what onnxruntime does; it floors
    return resample(x, { ...node, attrs: { ...node.attrs, nearest_mode: { type: 'string', value: 'floor' } } }, outShape, lengths, scales, roi, mode, coord);
  }
  return resample(x, node, outShape, lengths, scales, roi, mode, coord);
}

function upsample([x, scalesIn]: TfTensor[], node: Node, ctx: KernelContext): TfTensor {
  const scales = scalesIn ? ctx.values(scalesIn) : attrFloats(node, 'scales');
  if (!scales) throw kernelError(node, 'Upsample needs scales');
  const mode = attrString(node, 'mode', 'nearest');
  const outShape = scales.map((s, i) => Math.floor(x.shape[i] * s));
  const n = { ...node, attrs: { ...node.attrs, nearest_mode: { type: 'string' as const, value: 'floor' } } };
  return resample(x, n, outShape, outShape, scales, undefined, mode === 'bilinear' ? 'linear' : mode, 'asymmetric');
}

function constantKernel(node: Node): TfTensor {
  const t = attrTensor(node, 'value');
  if (t) return toTf(t);
  const a = node.attrs;
  if (a.value_float?.type === 'float') return tf.scalar(a.value_float.value, 'float32');
  if (a.value_floats?.type === 'floats') return tf.tensor1d(a.value_floats.value, 'float32');
  if (a.value_int?.type === 'int') return tf.scalar(a.value_int.value, 'int32');
  if (a.value_ints?.type === 'ints') return tf.tensor1d(a.value_ints.value, 'int32');
  throw kernelError(node, 'Constant without a supported value (sparse or string values are not supported)');
}

function depthToSpace(x: TfTensor, node: Node): TfTensor {
  const b = attrInt(node, 'blocksize', 1);
  const [N, C, H, W] = x.shape;
  const c = C / (b * b);
  if (attrString(node, 'mode', 'DCR') === 'CRD')
    return tf.reshape(tf.transpose(tf.reshape(x, [N, c, b, b, H, W]), [0, 1, 4, 2, 5, 3]), [N, c, H * b, W * b]);
  return tf.reshape(tf.transpose(tf.reshape(x, [N, b, b, c, H, W]), [0, 3, 4, 1, 5, 2]), [N, c, H * b, W * b]);
}

function spaceToDepth(x: TfTensor, node: Node): TfTensor {
  const b = attrInt(node, 'blocksize', 1);
  const [N, C, H, W] = x.shape;
  return tf.reshape(tf.transpose(tf.reshape(x, [N, C, H / b, b, W / b, b]), [0, 3, 5, 1, 2, 4]), [N, C * b * b, H / b, W / b]);
}

function oneHot([indices, depthT, values]: TfTensor[], node: Node, ctx: KernelContext): TfTensor {
  const depth = Math.trunc(ctx.values(depthT)[0]);
  const [off, on] = ctx.values(values);
  const r = indices.rank + 1;
  const axis = normAxis(attrInt(node, 'axis', -1), r);
  const idx = fixNegativeIndices(indices.dtype === 'int32' ? indices : tf.cast(tf.floor(indices), 'int32'), depth);
  // an int32 0/1 one-hot scaled to (off, on): wasm's OneHot writes int32 bits into float outputs
  const hot = tf.oneHot(idx, depth, 1, 0, 'int32');
  let y = values.dtype === 'float32'
    ? tf.add(tf.mul(tf.cast(hot, 'float32'), on - off), off)
    : tf.add(tf.mul(hot, tf.scalar(on - off, 'int32')), tf.scalar(off, 'int32'));
  if (axis !== r - 1) {
    const perm = Array.from({ length: r }, (_, i) => (i < axis ? i : i === axis ? r - 1 : i - 1));
    y = tf.transpose(y, perm);
  }
  return values.dtype === 'bool' ? tf.cast(y, 'bool') : y;
}

function trilu([x, kT]: TfTensor[], node: Node, ctx: KernelContext): TfTensor {
  const k = kT ? ctx.values(kT)[0] : 0;
  const upper = attrInt(node, 'upper', 1) === 1;
  const [H, W] = x.shape.slice(-2);
  const m = new Uint8Array(H * W);
  for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) m[i * W + j] = (upper ? j - i >= k : j - i <= k) ? 1 : 0;
  const mask = tf.broadcastTo(tf.tensor(m, [H, W], 'bool'), x.shape);
  return tf.where(mask, x, tf.zerosLike(x));
}

export const shapeKernels: Kernel[] = [
  { op: 'Reshape', since: 1, run: (inputs, node, ctx) => [reshape(inputs, node, ctx)] },
  {
    op: 'Flatten', since: 1,
    run: ([x], node) => {
      const axis = normAxis(attrInt(node, 'axis', 1), x.rank);
      return [tf.reshape(x, [product(x.shape.slice(0, axis)), product(x.shape.slice(axis))])];
    },
  },
  {
    op: 'Transpose', since: 1,
    run: ([x], node) => {
      const perm = attrInts(node, 'perm') ?? x.shape.map((_, i) => x.rank - 1 - i);
      return [tf.transpose(x, perm)];
    },
  },
  {
    op: 'Concat', since: 1,
    run: (xs, node) => {
      const list = xs.filter((t) => t !== undefined);
      return [tf.concat(list, normAxis(attrInt(node, 'axis', 1), list[0].rank))];
    },
    nhwc: {
      mode: 'either', data: 'all',
      accepts: (node, ranks) => ranks.every((r) => r === 4) && normAxis(attrInt(node, 'axis', 1), 4) === 1,
      run: (xs) => [tf.concat(xs, 3)],
    },
  },
  { op: 'Split', since: 1, run: split },
  {
    op: 'Slice', since: 1, until: 9,
    run: ([x], node) => [slice(x, attrInts(node, 'starts') ?? [], attrInts(node, 'ends') ?? [], attrInts(node, 'axes'), undefined, node)],
  },
  {
    op: 'Slice', since: 10,
    run: ([x, s, e, a, st], node, ctx) => [slice(x, ctx.values(s), ctx.values(e), a ? ctx.values(a) : undefined, st ? ctx.values(st) : undefined, node)],
  },
  { op: 'Squeeze', since: 1, until: 12, run: ([x], node) => [squeeze(x, attrInts(node, 'axes'))] },
  { op: 'Squeeze', since: 13, run: ([x, a], _n, ctx) => [squeeze(x, a ? ctx.values(a) : undefined)] },
  { op: 'Unsqueeze', since: 1, until: 12, run: ([x], node) => [unsqueeze(x, attrInts(node, 'axes') ?? [])] },
  { op: 'Unsqueeze', since: 13, run: ([x, a], _n, ctx) => [unsqueeze(x, ctx.values(a))] },
  {
    op: 'Gather', since: 1, weights: [0],
    run: ([x, idx], node) => {
      const axis = normAxis(attrInt(node, 'axis', 0), x.rank);
      return [tf.gather(x, fixNegativeIndices(idx, x.shape[axis]), axis)];
    },
  },
  {
    op: 'GatherElements', since: 11,
    run: ([x, idx], node) => [gatherElements(x, idx, normAxis(attrInt(node, 'axis', 0), x.rank))],
  },
  {
    op: 'Shape', since: 1,
    run: ([x], node) => {
      const r = x.rank;
      const clampI = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
      const start = clampI(attrInt(node, 'start', 0));
      const end = clampI(attrInt(node, 'end', r));
      return [tf.tensor1d(x.shape.slice(start, Math.max(start, end)), 'int32')];
    },
  },
  { op: 'Size', since: 1, run: ([x]) => [tf.scalar(x.size, 'int32')] },
  { op: 'Constant', since: 1, run: (_i, node) => [constantKernel(node)] },
  {
    op: 'ConstantOfShape', since: 9,
    run: ([shape], node, ctx) => {
      const dims = ctx.values(shape);
      const v = attrTensor(node, 'value');
      const dtype = tfDType(v?.dtype ?? 'float32');
      const value = v ? v.numbers()[0] : 0;
      return [tf.fill(dims, value, dtype === 'bool' ? 'bool' : dtype)];
    },
  },
  {
    op: 'Dropout', since: 1, random: true,
    run: ([x, ratioT, trainT], node, ctx) => {
      const ratio = ratioT ? ctx.values(ratioT)[0] : attrFloat(node, 'ratio', 0.5);
      const training = ctx.training ?? (trainT ? ctx.values(trainT)[0] !== 0 : false);
      if (!training || ratio === 0) {
        const outs = [tf.clone(x)];
        if (node.outputs.length > 1) outs.push(tf.ones(x.shape, 'bool'));
        return outs;
      }
      const keep = tf.greaterEqual(tf.randomUniform(x.shape), ratio);
      const y = tf.div(tf.mul(x, tf.cast(keep, x.dtype)), 1 - ratio);
      return node.outputs.length > 1 ? [y, keep] : [y];
    },
  },
  { op: 'Pad', since: 1, run: (inputs, node, ctx) => [pad(inputs, node, ctx)] },
  {
    op: 'Expand', since: 8,
    run: ([x, shape], _n, ctx) => {
      const out = broadcastDims(x.shape, ctx.values(shape));
      const r = x.rank < out.length ? tf.reshape(x, [...Array(out.length - x.rank).fill(1), ...x.shape]) : x;
      return [r.shape.every((d, i) => d === out[i]) ? tf.clone(r) : tf.broadcastTo(r, out)];
    },
  },
  {
    op: 'Range', since: 11,
    run: ([s, l, d], _n, ctx) => {
      const [start] = ctx.values(s), [limit] = ctx.values(l), [delta] = ctx.values(d);
      const n = Math.max(Math.ceil((limit - start) / delta), 0);
      const dtype = s.dtype === 'int32' ? 'int32' : 'float32';
      return [tf.add(tf.mul(tf.range(0, n, 1, dtype), tf.scalar(delta, dtype)), tf.scalar(start, dtype))];
    },
  },
  { op: 'Tile', since: 6, run: ([x, reps], _n, ctx) => [tf.tile(x, ctx.values(reps))] },
  { op: 'Resize', since: 10, run: (inputs, node, ctx) => [resize(inputs, node, ctx)] },
  { op: 'Upsample', since: 7, until: 9, run: (inputs, node, ctx) => [upsample(inputs, node, ctx)] },
  { op: 'DepthToSpace', since: 1, run: ([x], node) => [depthToSpace(x, node)] },
  { op: 'SpaceToDepth', since: 1, run: ([x], node) => [spaceToDepth(x, node)] },
  { op: 'OneHot', since: 9, run: (inputs, node, ctx) => [oneHot(inputs, node, ctx)] },
  { op: 'Trilu', since: 14, run: (inputs, node, ctx) => [trilu(inputs, node, ctx)] },
  {
    op: 'EyeLike', since: 9,
    run: ([x], node) => {
      const k = attrInt(node, 'k', 0);
      const [H, W] = x.shape;
      const code = attrInt(node, 'dtype');
      const dtype = code !== undefined ? tfDType(dtypeFromCode(code)) : x.dtype;
      const m = new Float32Array(H * W);
      for (let i = 0; i < H; i++) if (i + k >= 0 && i + k < W) m[i * W + i + k] = 1;
      return [tf.cast(tf.tensor(m, [H, W]), dtype as 'float32')];
    },
  },
];

registerKernels(...shapeKernels);
