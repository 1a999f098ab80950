// Shape manipulation and tensor creation: Reshape, Transpose, Concat, Split, Slice, Squeeze/Unsqueeze, Gather*,
// Shape, Size, Flatten, Expand, ConstantOfShape, Range, Constant, Identity, Tile, Pad, Resize/Upsample,
// DepthToSpace/SpaceToDepth, TopK, OneHot, NonZero and the data-shaped scatter/triangular ops.
// The evaluators here are what folds Shape → Gather → Unsqueeze → Concat → Reshape chains.
import { attrFloat, attrFloats, attrInt, attrInts, attrString, attrTensor, type Attr, type Dim, type Shape } from '../ir.js';
import { Tensor, dtypeFromCode, type DType } from '../tensor.js';
import {
  allNum, arr, arrs, bad, broadcastShapes, CannotEvaluate, constNums, dtypeOf, fmtShape, fresh, gatherBy, has, intsArg, isNum,
  knownOutDims, like, must, normAxis, partialOf, passPartial, prodDim, reshapeEval, shapeOf, sumDim, toTensor, unify, type Arr,
} from './common.js';
import { PATHS, registerOps, type OpContext, type OpSpec, type OutputType, type PathRule } from './registry.js';
import { product, rowMajorStrides } from '../shape-math.js';

const freshDims = (ctx: OpContext, n: number): Dim[] => Array.from({ length: n }, () => fresh(ctx));
/** A 1-D shape input of unknown value but known length n gives a rank-n result of unknown dims. */
const rankFromShapeInput = (ctx: OpContext, i: number): Shape | undefined => {
  const s = shapeOf(ctx, i);
  return s?.length === 1 && isNum(s[0]) ? freshDims(ctx, s[0]) : undefined;
};
const out0 = (ctx: OpContext, a: Arr) => [toTensor(ctx.node.outputs[0], a)];

// ---------------------------------------------------------------- Reshape, Flatten, Squeeze, Unsqueeze

function reshapeInfer(ctx: OpContext): OutputType[] {
  const dtype = dtypeOf(ctx, 0);
  const x = shapeOf(ctx, 0);
  const target = ctx.opset < 5 ? attrInts(ctx.node, 'shape') : partialOf(ctx, 1);
  if (!target) return [{ dtype, shape: rankFromShapeInput(ctx, 1) }];
  const allowzero = ctx.opset >= 14 && attrInt(ctx.node, 'allowzero', 0) === 1;
  if (target.filter((t) => t === -1).length > 1 || target.some((t) => isNum(t) && t < -1)) bad(ctx, `invalid target shape ${fmtShape(target)}`);
  const out: Dim[] = target.map((t, k) => {
    if (t !== 0 || allowzero) return t;
    if (!x) return fresh(ctx);
    return k < x.length ? x[k] : bad(ctx, `target shape ${fmtShape(target)} copies dim ${k} of a rank-${x.length} input`);
  });
  const neg = target.indexOf(-1);
  if (!x) {
    if (neg >= 0) out[neg] = fresh(ctx);
    return [{ dtype, shape: out }];
  }
  // element counts: known factors multiply, symbolic factors cancel by name
  let inN = 1, outN = 1;
  const inSyms: string[] = [], outSyms: string[] = [];
  for (const d of x) if (isNum(d)) inN *= d; else inSyms.push(d);
  out.forEach((d, k) => {
    if (k === neg) return;
    if (isNum(d)) outN *= d;
    else {
      const j = inSyms.indexOf(d);
      if (j >= 0) inSyms.splice(j, 1);
      else outSyms.push(d);
    }
  });
  const counts = `cannot reshape ${fmtShape(x)} (${inN} elements) to ${fmtShape(target)}`;
  if (neg >= 0) {
    if (!inSyms.length && !outSyms.length) {
      if (outN === 0 ? inN !== 0 : inN % outN !== 0) bad(ctx, counts);
      out[neg] = outN === 0 ? 0 : inN / outN;
    } else out[neg] = !outSyms.length && inSyms.length === 1 && inN === outN ? inSyms[0] : fresh(ctx);
  } else if (!inSyms.length && !outSyms.length && inN !== outN) bad(ctx, `${counts} (${outN} elements)`);
  return [{ dtype, shape: out }];
}

function flattenInfer(ctx: OpContext): OutputType[] {
  const x = shapeOf(ctx, 0);
  if (!x) return [{ dtype: dtypeOf(ctx, 0) }];
  let axis = attrInt(ctx.node, 'axis', 1);
  if (axis < 0) axis += x.length;
  if (!(axis >= 0 && axis <= x.length)) bad(ctx, `axis ${attrInt(ctx.node, 'axis')} is out of range for rank ${x.length}`);
  return [{ dtype: dtypeOf(ctx, 0), shape: [prodDim(ctx, x.slice(0, axis)), prodDim(ctx, x.slice(axis))] }];
}

function squeezeInfer(ctx: OpContext): OutputType[] {
  const dtype = dtypeOf(ctx, 0);
  const x = shapeOf(ctx, 0);
  const axes = intsArg(ctx, 'axes', 1, 13);
  if (!x || axes === 'unknown') return [{ dtype }];
  if (!axes) return [{ dtype, shape: allNum(x) ? x.filter((d) => d !== 1) : undefined }];
  const drop = new Set(axes.map((a) => normAxis(ctx, a, x.length)));
  for (const a of drop) if (isNum(x[a]) && x[a] !== 1) bad(ctx, `cannot squeeze axis ${a} of size ${x[a]} in ${fmtShape(x)}`);
  return [{ dtype, shape: x.filter((_, k) => !drop.has(k)) }];
}

function unsqueezeInfer(ctx: OpContext): OutputType[] {
  const dtype = dtypeOf(ctx, 0);
  const x = shapeOf(ctx, 0);
  const axes = intsArg(ctx, 'axes', 1, 13);
  if (!axes) bad(ctx, 'Unsqueeze needs axes');
  if (!x || axes === 'unknown') return [{ dtype }];
  const rank = x.length + axes.length;
  const ins = new Set(axes.map((a) => normAxis(ctx, a, rank)));
  if (ins.size !== axes.length) bad(ctx, `repeated axes [${axes}]`);
  let j = 0;
  return [{ dtype, shape: Array.from({ length: rank }, (_, k) => (ins.has(k) ? 1 : x[j++])) }];
}

// ---------------------------------------------------------------- Transpose, Concat, Split, Slice

const permOf = (ctx: OpContext, rank: number): number[] => {
  const perm = attrInts(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, k) => rank - 1 - k);
  if (perm.length !== rank || new Set(perm).size !== rank || perm.some((p) => p < 0 || p >= rank))
    bad(ctx, `perm [${perm}] is not a permutation of the ${rank} axes`);
  return perm;
};

const transpose: OpSpec = {
  op: 'Transpose', since: 1,
  infer(ctx) {
    const x = shapeOf(ctx, 0);
    return [{ dtype: dtypeOf(ctx, 0), shape: x && permOf(ctx, x.length).map((p) => x[p]) }];
  },
  evaluate(ctx) {
    const a = arr(ctx.values[0]);
    const perm = permOf(ctx, a.dims.length), st = rowMajorStrides(a.dims);
    return out0(ctx, gatherBy(a, perm.map((p) => a.dims[p]), (idx) => idx.reduce((s, i, k) => s + i * st[perm[k]], 0)));
  },
};

function concatInfer(ctx: OpContext): OutputType[] {
  const dtype = ctx.inputs.find((v) => v?.dtype)?.dtype;
  const shapes = ctx.inputs.map((v) => v?.shape);
  const known = shapes.filter((s): s is Shape => !!s);
  if (!known.length) return [{ dtype }];
  const rank = known[0].length;
  if (known.some((s) => s.length !== rank)) bad(ctx, `cannot concatenate shapes of different ranks ${known.map(fmtShape).join(', ')}`);
  const axisAttr = attrInt(ctx.node, 'axis') ?? (ctx.opset < 4 ? 1 : undefined);
  if (axisAttr === undefined) bad(ctx, 'Concat has no axis');
  const axis = normAxis(ctx, axisAttr, rank);
  const shape = known[0].map((_, k) =>
    k === axis
      ? known.length === shapes.length ? sumDim(ctx, known.map((s) => s[k])) : fresh(ctx)
      : known.map((s) => s[k]).reduce((a, b) => unify(ctx, a, b, `dim ${k} differs between inputs ${known.map(fmtShape).join(', ')}`)),
  );
  return [{ dtype, shape }];
}

function concatEval(ctx: OpContext): Tensor[] {
  const ins = arrs(ctx).filter((a): a is Arr => !!a);
  const dims = knownOutDims(concat, ctx);
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', ctx.opset < 4 ? 1 : 0), dims.length);
  const outer = product(dims.slice(0, axis));
  const v: number[] = [];
  for (let o = 0; o < outer; o++)
    for (const a of ins) {
      const chunk = product(a.dims.slice(axis));
      for (let i = 0; i < chunk; i++) v.push(a.v[o * chunk + i]);
    }
  return out0(ctx, { dtype: ins[0].dtype, dims, v });
}
const concat: OpSpec = {
  op: 'Concat', since: 1, infer: concatInfer, evaluate: concatEval,
  // concatenation along axis 0 appends the row-major values
  partial(ctx) {
    const rank = shapeOf(ctx, 0)?.length ?? ctx.inputs.find((v) => v?.shape)?.shape?.length;
    const parts = ctx.node.inputs.map((_, i) => partialOf(ctx, i));
    if (rank === undefined || normAxis(ctx, attrInt(ctx.node, 'axis', 0), rank) !== 0 || parts.some((p) => !p)) return [undefined];
    return [parts.flat() as Dim[]];
  },
};

/** Begin and length of a slice of a dim of size d (numpy semantics, ONNX clamping). */
function sliceRange(d: number, s: number, e: number, step: number): [start: number, len: number] {
  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
  if (s < 0) s += d;
  if (e < 0) e += d;
  if (step > 0) {
    s = clamp(s, 0, d);
    e = clamp(e, 0, d);
    return [s, Math.max(0, Math.ceil((e - s) / step))];
  }
  s = clamp(s, 0, d - 1);
  e = clamp(e, -1, d - 1);
  return [s, Math.max(0, Math.ceil((s - e) / -step))];
}

interface SliceArgs { starts: number[]; ends: number[]; axes: number[]; steps: number[] }

/** The slice parameters, or the axes being sliced (possibly unknown) when starts/ends are not constant. */
function sliceArgs(ctx: OpContext, rank: number): SliceArgs | { axes?: number[] } {
  let starts: number[] | undefined, ends: number[] | undefined, axes: number[] | undefined, steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = attrInts(ctx.node, 'starts');
    ends = attrInts(ctx.node, 'ends');
    axes = attrInts(ctx.node, 'axes');
  } else {
    [starts, ends] = [constNums(ctx, 1), constNums(ctx, 2)];
    if (has(ctx, 3)) {
      axes = constNums(ctx, 3);
      if (!axes) return {};
    }
    if (has(ctx, 4)) {
      steps = constNums(ctx, 4);
      if (!steps) return { axes: axes?.map((a) => normAxis(ctx, a, rank)) };
    }
  }
  const n = starts?.length ?? ends?.length ?? shapeOf(ctx, 1)?.[0];
  if (!axes && !isNum(n)) return {};
  axes = (axes ?? Array.from({ length: n as number }, (_, k) => k)).map((a) => normAxis(ctx, a, rank));
  if (new Set(axes).size !== axes.length) bad(ctx, `repeated axes [${axes}]`);
  if (!starts || !ends) return { axes };
  steps ??= axes.map(() => 1);
  if (starts.length !== axes.length || ends.length !== axes.length || steps.length !== axes.length)
    bad(ctx, `starts/ends/axes/steps have different lengths`);
  if (steps.includes(0)) bad(ctx, 'slice step 0');
  return { starts, ends, axes, steps };
}

const BIG = 2 ** 31 - 1;
const slice: OpSpec = {
  op: 'Slice', since: 1,
  infer(ctx) {
    const dtype = dtypeOf(ctx, 0);
    const x = shapeOf(ctx, 0);
    if (!x) return [{ dtype }];
    const args = sliceArgs(ctx, x.length);
    if (!('starts' in args)) return [{ dtype, shape: x.map((d, k) => (!args.axes || args.axes.includes(k) ? fresh(ctx) : d)) }];
    const shape = [...x];
    args.axes.forEach((a, i) => {
      const [s, e, st] = [args.starts[i], args.ends[i], args.steps[i]];
      const d = x[a];
      if (isNum(d)) shape[a] = sliceRange(d, s, e, st)[1];
      else shape[a] = (st === 1 && s === 0 && e >= BIG) || (st === -1 && s === -1 && e <= -BIG) ? d : fresh(ctx);
    });
    return [{ dtype, shape }];
  },
  partial(ctx) {
    const data = partialOf(ctx, 0);
    if (!data || shapeOf(ctx, 0)?.length !== 1) return [undefined];
    const args = sliceArgs(ctx, 1);
    if (!('starts' in args)) return [undefined];
    const [start, len] = sliceRange(data.length, args.starts[0], args.ends[0], args.steps[0]);
    return [Array.from({ length: len }, (_, k) => data[start + k * args.steps[0]])];
  },
  evaluate(ctx) {
    const a = arr(ctx.values[0]);
    const args = sliceArgs(ctx, a.dims.length);
    if (!('starts' in args)) throw new CannotEvaluate();
    const start = a.dims.map(() => 0), step = a.dims.map(() => 1), dims = [...a.dims];
    args.axes.forEach((ax, i) => {
      [start[ax], dims[ax]] = sliceRange(a.dims[ax], args.starts[i], args.ends[i], args.steps[i]);
      step[ax] = args.steps[i];
    });
    const st = rowMajorStrides(a.dims);
    return out0(ctx, gatherBy(a, dims, (idx) => idx.reduce((s, i, k) => s + (start[k] + i * step[k]) * st[k], 0)));
  },
};

function splitSizes(ctx: OpContext, d: Dim): Dim[] {
  const n = ctx.node.outputs.length;
  const split = intsArg(ctx, 'split', 1, 13);
  if (split === 'unknown') return freshDims(ctx, n);
  if (split) {
    if (split.length !== n) bad(ctx, `split [${split}] has ${split.length} parts for ${n} outputs`);
    if (isNum(d) && split.reduce((a, b) => a + b, 0) !== d) bad(ctx, `split [${split}] does not add up to the axis size ${d}`);
    return split;
  }
  if (!isNum(d)) return n === 1 ? [d] : freshDims(ctx, n);
  if (ctx.opset >= 18) {
    const chunk = Math.ceil(d / n);
    return Array.from({ length: n }, (_, k) => (k < n - 1 ? chunk : d - chunk * (n - 1)));
  }
  if (d % n) bad(ctx, `cannot split an axis of size ${d} into ${n} equal parts`);
  return new Array<number>(n).fill(d / n);
}

const split: OpSpec = {
  op: 'Split', since: 1,
  infer(ctx) {
    const dtype = dtypeOf(ctx, 0);
    const x = shapeOf(ctx, 0);
    if (!x) return ctx.node.outputs.map(() => ({ dtype }));
    const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.length);
    return splitSizes(ctx, x[axis]).map((d) => ({ dtype, shape: x.map((e, k) => (k === axis ? d : e)) }));
  },
  evaluate(ctx) {
    const a = arr(ctx.values[0]);
    const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), a.dims.length);
    const st = rowMajorStrides(a.dims);
    let begin = 0;
    return splitSizes(ctx, a.dims[axis]).map((len, i) => {
      const b = begin;
      begin += len as number;
      const dims = a.dims.map((d, k) => (k === axis ? (len as number) : d));
      return toTensor(ctx.node.outputs[i], gatherBy(a, dims, (idx) => idx.reduce((s, j, k) => s + (k === axis ? j + b : j) * st[k], 0)));
    });
  },
};

// ---------------------------------------------------------------- Gather family

const gatherAxis = (ctx: OpContext, rank: number) => normAxis(ctx, attrInt(ctx.node, 'axis', 0), rank);
const gather: OpSpec = {
  op: 'Gather', since: 1,
  infer(ctx) {
    const data = shapeOf(ctx, 0), ind = shapeOf(ctx, 1);
    if (!data || !ind) return [{ dtype: dtypeOf(ctx, 0) }];
    const axis = gatherAxis(ctx, data.length);
    return [{ dtype: dtypeOf(ctx, 0), shape: [...data.slice(0, axis), ...ind, ...data.slice(axis + 1)] }];
  },
  evaluate(ctx) {
    const [a, ind] = arrs(ctx) as Arr[];
    const axis = gatherAxis(ctx, a.dims.length);
    const st = rowMajorStrides(a.dims), ist = rowMajorStrides(ind.dims), r = ind.dims.length, d = a.dims[axis];
    const dims = [...a.dims.slice(0, axis), ...ind.dims, ...a.dims.slice(axis + 1)];
    return out0(ctx, gatherBy(a, dims, (idx) => {
      let j = 0;
      for (let k = 0; k < r; k++) j += idx[axis + k] * ist[k];
      let i = ind.v[j];
      if (i < 0) i += d;
      if (!(i >= 0 && i < d)) bad(ctx, `index ${ind.v[j]} is out of range for an axis of size ${d}`);
      let s = i * st[axis];
      for (let k = 0; k < axis; k++) s += idx[k] * st[k];
      for (let k = axis + 1; k < a.dims.length; k++) s += idx[k + r - 1] * st[k];
      return s;
    }));
  },
};

/** Gather on a partially known 1-D value (picking dims out of a Shape). */
gather.partial = (ctx) => {
  const data = partialOf(ctx, 0), ind = constNums(ctx, 1);
  if (!data || !ind || shapeOf(ctx, 0)?.length !== 1) return [undefined];
  return [ind.map((i) => data[i < 0 ? i + data.length : i] ?? bad(ctx, `index ${i} is out of range for ${data.length} values`))];
};

function gatherNDInfer(ctx: OpContext): OutputType[] {
  const data = shapeOf(ctx, 0), ind = shapeOf(ctx, 1);
  const last = ind?.[ind.length - 1];
  if (!data || !ind || !isNum(last)) return [{ dtype: dtypeOf(ctx, 0) }];
  const b = attrInt(ctx.node, 'batch_dims', 0);
  return [{ dtype: dtypeOf(ctx, 0), shape: [...ind.slice(0, -1), ...data.slice(b + last)] }];
}

// ---------------------------------------------------------------- Shape, Size

function shapeRange(ctx: OpContext, rank: number): [number, number] {
  const norm = (v: number) => Math.min(rank, Math.max(0, v < 0 ? v + rank : v));
  return [norm(attrInt(ctx.node, 'start', 0)), norm(attrInt(ctx.node, 'end', rank))];
}
const shapeOp: OpSpec = {
  op: 'Shape', since: 1,
  infer(ctx) {
    const x = shapeOf(ctx, 0);
    if (!x) return [{ dtype: 'int64', shape: [fresh(ctx)] }];
    const [s, e] = ctx.opset >= 15 ? shapeRange(ctx, x.length) : [0, x.length];
    const dims = x.slice(s, Math.max(s, e));
    return [{ dtype: 'int64', shape: [dims.length], value: allNum(dims) ? Tensor.i64(ctx.node.outputs[0], [dims.length], dims) : undefined }];
  },
};
shapeOp.partial = (ctx) => {
  const x = shapeOf(ctx, 0);
  if (!x) return [undefined];
  const [s, e] = ctx.opset >= 15 ? shapeRange(ctx, x.length) : [0, x.length];
  return [x.slice(s, Math.max(s, e))];
};
shapeOp.evaluate = (ctx) => [must(shapeOp.infer!(ctx)[0].value)];

const sizeOp: OpSpec = {
  op: 'Size', since: 1,
  infer(ctx) {
    const x = shapeOf(ctx, 0);
    return [{ dtype: 'int64', shape: [], value: allNum(x) ? Tensor.i64(ctx.node.outputs[0], [], [product(x)]) : undefined }];
  },
};
sizeOp.partial = (ctx) => {
  const x = shapeOf(ctx, 0);
  return [x && [prodDim(ctx, x)]];
};
sizeOp.evaluate = (ctx) => [must(sizeOp.infer!(ctx)[0].value)];

// ---------------------------------------------------------------- Expand, Tile, Pad

const expand: OpSpec = {
  op: 'Expand', since: 8,
  infer(ctx) {
    const dtype = dtypeOf(ctx, 0);
    const x = shapeOf(ctx, 0), target = partialOf(ctx, 1);
    if (target) return [{ dtype, shape: broadcastShapes(ctx, [x, target]) }];
    const n = shapeOf(ctx, 1)?.[0];
    return [{ dtype, shape: x && isNum(n) ? freshDims(ctx, Math.max(n, x.length)) : undefined }];
  },
  evaluate(ctx) {
    const a = arr(ctx.values[0]);
    const dims = knownOutDims(expand, ctx);
    const st = rowMajorStrides(a.dims), off = dims.length - a.dims.length;
    return out0(ctx, gatherBy(a, dims, (idx) => a.dims.reduce((s, d, k) => s + (d === 1 ? 0 : idx[k + off] * st[k]), 0)));
  },
};

const repeatsOf = (ctx: OpContext) => (ctx.opset < 6 ? undefined : constNums(ctx, 1));
const tile: OpSpec = {
  op: 'Tile', since: 6,
  infer(ctx) {
    const x = shapeOf(ctx, 0), reps = repeatsOf(ctx);
    if (!x) return [{ dtype: dtypeOf(ctx, 0) }];
    if (reps && reps.length !== x.length) bad(ctx, `repeats [${reps}] do not match the input rank ${x.length}`);
    return [{ dtype: dtypeOf(ctx, 0), shape: x.map((d, k) => (!reps ? fresh(ctx) : reps[k] === 1 ? d : isNum(d) ? d * reps[k] : fresh(ctx))) }];
  },
  evaluate(ctx) {
    const a = arr(ctx.values[0]);
    const st = rowMajorStrides(a.dims);
    return out0(ctx, gatherBy(a, knownOutDims(tile, ctx), (idx) => idx.reduce((s, i, k) => s + (i % a.dims[k]) * st[k], 0)));
  },
};

function padInfer(ctx: OpContext): OutputType[] {
  const dtype = dtypeOf(ctx, 0);
  const x = shapeOf(ctx, 0);
  if (!x) return [{ dtype }];
  const pads = ctx.opset < 11 ? attrInts(ctx.node, ctx.opset < 2 ? 'paddings' : 'pads') : constNums(ctx, 1);
  let axes = x.map((_, k) => k);
  if (ctx.opset >= 18 && has(ctx, 3)) {
    const a = constNums(ctx, 3);
    if (!a) return [{ dtype, shape: freshDims(ctx, x.length) }];
    axes = a.map((v) => normAxis(ctx, v, x.length));
  }
  if (!pads) return [{ dtype, shape: x.map((d, k) => (axes.includes(k) ? fresh(ctx) : d)) }];
  if (pads.length !== 2 * axes.length) bad(ctx, `pads [${pads}] do not match ${axes.length} padded axes`);
  const shape = [...x];
  axes.forEach((a, i) => {
    const p = pads[i] + pads[i + axes.length];
    shape[a] = p === 0 ? x[a] : isNum(x[a]) ? (x[a] as number) + p : fresh(ctx);
  });
  return [{ dtype, shape }];
}

// ---------------------------------------------------------------- Resize, Upsample, DepthToSpace, SpaceToDepth

/** Scaled size as onnxruntime computes it: float32 product, truncated. */
const scaleDim = (ctx: OpContext, d: Dim, s: number): Dim => (s === 1 ? d : isNum(d) ? Math.floor(Math.fround(Math.fround(s) * d)) : fresh(ctx));

function resizeInfer(ctx: OpContext): OutputType[] {
  const dtype = dtypeOf(ctx, 0);
  const x = shapeOf(ctx, 0);
  if (!x) return [{ dtype }];
  const [scalesIdx, sizesIdx] = ctx.opset < 11 ? [1, -1] : [2, 3];
  const axes = (ctx.opset >= 18 ? attrInts(ctx.node, 'axes') : undefined)?.map((a) => normAxis(ctx, a, x.length)) ?? x.map((_, k) => k);
  const nonEmpty = (i: number) => i >= 0 && has(ctx, i) && !(shapeOf(ctx, i)?.[0] === 0);
  const shape = [...x];
  if (nonEmpty(sizesIdx)) {
    const sizes = constNums(ctx, sizesIdx);
    if (!sizes) return [{ dtype, shape: x.map((d, k) => (axes.includes(k) ? fresh(ctx) : d)) }];
    if (sizes.length !== axes.length) bad(ctx, `sizes [${sizes}] do not match ${axes.length} axes`);
    const policy = ctx.opset >= 18 ? attrString(ctx.node, 'keep_aspect_ratio_policy', 'stretch') : 'stretch';
    if (policy === 'stretch') axes.forEach((a, i) => (shape[a] = sizes[i]));
    else {
      const ins = axes.map((a) => x[a]);
      if (!allNum(ins)) axes.forEach((a) => (shape[a] = fresh(ctx)));
      else {
        const ratios = sizes.map((s, i) => s / ins[i]);
        const r = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
        axes.forEach((a, i) => (shape[a] = Math.round(r * ins[i])));
      }
    }
  } else if (nonEmpty(scalesIdx)) {
    const scales = constNums(ctx, scalesIdx);
    if (!scales) return [{ dtype, shape: x.map((d, k) => (axes.includes(k) ? fresh(ctx) : d)) }];
    if (scales.length !== axes.length) bad(ctx, `scales [${scales}] do not match ${axes.length} axes`);
    axes.forEach((a, i) => (shape[a] = scaleDim(ctx, x[a], scales[i])));
  } else bad(ctx, 'Resize needs scales or sizes');
  return [{ dtype, shape }];
}

function upsampleInfer(ctx: OpContext): OutputType[] {
  const x = shapeOf(ctx, 0);
  const scales = ctx.opset < 9 ? attrFloats(ctx.node, 'scales') : constNums(ctx, 1);
  if (!x) return [{ dtype: dtypeOf(ctx, 0) }];
  if (scales && scales.length !== x.length) bad(ctx, `scales [${scales}] do not match the input rank ${x.length}`);
  return [{ dtype: dtypeOf(ctx, 0), shape: x.map((d, k) => (scales ? scaleDim(ctx, d, scales[k]) : fresh(ctx))) }];
}

function blockInfer(toSpace: boolean) {
  return (ctx: OpContext): OutputType[] => {
    const x = shapeOf(ctx, 0);
    const b = attrInt(ctx.node, 'blocksize', 1);
    if (!x) return [{ dtype: dtypeOf(ctx, 0) }];
    if (x.length !== 4) bad(ctx, `expects a 4-D input, got ${fmtShape(x)}`);
    const mul = (d: Dim, f: number) => (isNum(d) ? d * f : fresh(ctx));
    const div = (d: Dim, f: number) => (!isNum(d) ? fresh(ctx) : d % f ? bad(ctx, `dim ${d} is not divisible by ${f}`) : d / f);
    const [n, c, h, w] = x;
    return [{ dtype: dtypeOf(ctx, 0), shape: toSpace ? [n, div(c, b * b), mul(h, b), mul(w, b)] : [n, mul(c, b * b), div(h, b), div(w, b)] }];
  };
}

// ---------------------------------------------------------------- creation: Constant, ConstantOfShape, Range

function constantValue(ctx: OpContext): Tensor | undefined {
  const name = ctx.node.outputs[0];
  const a = ctx.node.attrs;
  const t = attrTensor(ctx.node, 'value');
  if (t) return t.withName(name);
  if (a.value_float) return Tensor.f32(name, [], [attrFloat(ctx.node, 'value_float', 0)]);
  if (a.value_floats) return Tensor.f32(name, [attrFloats(ctx.node, 'value_floats')!.length], attrFloats(ctx.node, 'value_floats')!);
  if (a.value_int) return Tensor.i64(name, [], [attrInt(ctx.node, 'value_int', 0)]);
  if (a.value_ints) return Tensor.i64(name, [attrInts(ctx.node, 'value_ints')!.length], attrInts(ctx.node, 'value_ints')!);
  const enc = new TextEncoder();
  if (a.value_string?.type === 'string') return Tensor.fromStrings(name, [], [enc.encode(a.value_string.value)]);
  if (a.value_strings?.type === 'strings') return Tensor.fromStrings(name, [a.value_strings.value.length], a.value_strings.value.map((s) => enc.encode(s)));
  return undefined;
}

/** A sparse_value attribute: dense dims and the values' type, read from the undecoded SparseTensorProto. */
function sparseType(attr: Attr | undefined): OutputType | undefined {
  if (attr?.type !== 'opaque') return undefined;
  const sp = attr.proto.sparse_tensor;
  if (!sp) return undefined;
  return { dtype: sp.values?.data_type ? dtypeFromCode(sp.values.data_type) : undefined, shape: (sp.dims ?? []).map(Number) };
}

const constant: OpSpec = {
  op: 'Constant', since: 1,
  infer(ctx) {
    const value = constantValue(ctx);
    if (value) return [{ dtype: value.dtype, shape: value.dims, value }];
    return [sparseType(ctx.node.attrs.sparse_value) ?? bad(ctx, 'Constant has no value attribute')];
  },
  evaluate: (ctx) => [must(constantValue(ctx))],
};

function constantOfShapeDtype(ctx: OpContext): DType {
  return attrTensor(ctx.node, 'value')?.dtype ?? 'float32';
}
const constantOfShape: OpSpec = {
  op: 'ConstantOfShape', since: 9,
  infer(ctx) {
    const dims = partialOf(ctx, 0);
    if (dims?.some((d) => isNum(d) && d < 0)) bad(ctx, `negative dims [${dims}]`);
    return [{ dtype: constantOfShapeDtype(ctx), shape: dims ?? rankFromShapeInput(ctx, 0) }];
  },
  evaluate(ctx) {
    const t = attrTensor(ctx.node, 'value');
    const fill = t ? arr(t).v[0] : 0;
    const dims = constNums(ctx, 0);
    if (!dims) throw new CannotEvaluate();
    return out0(ctx, { dtype: constantOfShapeDtype(ctx), dims, v: new Array<number>(product(dims)).fill(fill) });
  },
};

/** Length of a Range: known from constant operands, or the limit's symbol for Range(0, n, 1). */
function rangeCount(ctx: OpContext): Dim {
  const [s, l, d] = [0, 1, 2].map((i) => partialOf(ctx, i)?.[0]);
  if (d === 0) bad(ctx, 'Range delta is 0');
  if (isNum(s) && isNum(l) && isNum(d)) return Math.max(Math.ceil((l - s) / d), 0);
  return s === 0 && d === 1 && typeof l === 'string' ? l : fresh(ctx);
}
const range: OpSpec = {
  op: 'Range', since: 11,
  infer: (ctx) => [{ dtype: dtypeOf(ctx, 0), shape: [rangeCount(ctx)] }],
  evaluate(ctx) {
    const n = rangeCount(ctx);
    if (!isNum(n)) throw new CannotEvaluate();
    const [s, , d] = [0, 1, 2].map((i) => arr(ctx.values[i]).v[0]);
    return out0(ctx, { dtype: arr(ctx.values[0]).dtype, dims: [n], v: Array.from({ length: n }, (_, k) => s + k * d) });
  },
};

// ---------------------------------------------------------------- TopK, OneHot, NonZero

function topKInfer(ctx: OpContext): OutputType[] {
  const x = shapeOf(ctx, 0);
  const dtype = dtypeOf(ctx, 0);
  if (!x) return [{ dtype }, { dtype: 'int64' }];
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), x.length);
  const k = ctx.opset < 10 ? attrInt(ctx.node, 'k') : constNums(ctx, 1)?.[0];
  const shape = x.map((d, i) => (i !== axis ? d : k === undefined ? fresh(ctx) : isNum(d) && k > d ? bad(ctx, `k = ${k} exceeds the axis size ${d}`) : k));
  return [{ dtype, shape }, { dtype: 'int64', shape }];
}

function oneHotInfer(ctx: OpContext): OutputType[] {
  const ind = shapeOf(ctx, 0);
  const dtype = dtypeOf(ctx, 2);
  if (!ind) return [{ dtype }];
  const depth = constNums(ctx, 1)?.[0];
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), ind.length + 1);
  const shape = [...ind];
  shape.splice(axis, 0, depth === undefined ? fresh(ctx) : Math.trunc(depth));
  return [{ dtype, shape }];
}

// ---------------------------------------------------------------- registration

const reshapeLike = (op: string, infer: OpSpec['infer']): OpSpec => {
  const spec: OpSpec = { op, since: 1, infer, partial: passPartial };
  spec.evaluate = reshapeEval(spec);
  return spec;
};
const reshape = reshapeLike('Reshape', reshapeInfer);
const flatten = reshapeLike('Flatten', flattenInfer);
const squeeze = reshapeLike('Squeeze', squeezeInfer);
const unsqueeze = reshapeLike('Unsqueeze', unsqueezeInfer);
const identity = reshapeLike('Identity', (ctx) => [like(ctx)]);

const sameAsData = (ops: Record<string, number>) =>
  Object.entries(ops).map(([op, since]): OpSpec => ({ op, since, infer: (ctx) => [like(ctx)], path: PATHS.linear }));

const moves = (rule: PathRule['rule']): { path: PathRule } => ({ path: { rule } });

registerOps(
  { ...reshape, ...moves('reshape') }, { ...flatten, ...moves('reshape') }, { ...squeeze, ...moves('reshape') },
  { ...unsqueeze, ...moves('reshape') }, { ...identity, path: PATHS.linear }, { ...transpose, ...moves('transpose') },
  { ...concat, ...moves('concat') }, { ...slice, ...moves('slice') }, { ...split, ...moves('split') },
  { ...gather, ...moves('gather'), channels: 'last' }, { ...shapeOp, path: PATHS.none }, { ...sizeOp, path: PATHS.none },
  { ...expand, path: PATHS.linear }, { ...tile, path: PATHS.linear },
  { ...constant, path: PATHS.none }, { ...constantOfShape, path: PATHS.none }, { ...range, path: PATHS.none },
  { op: 'GatherElements', since: 11, infer: (ctx) => [{ dtype: dtypeOf(ctx, 0), shape: shapeOf(ctx, 1) }], path: PATHS.linear },
  { op: 'GatherND', since: 11, infer: gatherNDInfer, path: PATHS.linear },
  { op: 'Pad', since: 1, infer: padInfer, path: PATHS.linear },
  { op: 'Resize', since: 10, infer: resizeInfer, path: PATHS.linear, channels: 'first' },
  { op: 'Upsample', since: 7, until: 9, infer: upsampleInfer, path: PATHS.linear, channels: 'first' },
  { op: 'DepthToSpace', since: 1, infer: blockInfer(true), ...moves('depth-space'), channels: 'first' },
  { op: 'SpaceToDepth', since: 1, infer: blockInfer(false), ...moves('depth-space'), channels: 'first' },
  { op: 'TopK', since: 1, infer: topKInfer, path: PATHS.nonlinear('reduce_max') },
  { op: 'OneHot', since: 9, infer: oneHotInfer, path: PATHS.linear },
  {
    op: 'NonZero', since: 9, path: PATHS.linear,
    infer: (ctx) => [{ dtype: 'int64', shape: [shapeOf(ctx, 0)?.length ?? fresh(ctx), fresh(ctx)] }],
  },
  {
    op: 'EyeLike', since: 9, path: PATHS.none,
    infer: (ctx) => {
      const dt = attrInt(ctx.node, 'dtype');
      return [{ dtype: dt === undefined ? dtypeOf(ctx, 0) : dtypeFromCode(dt), shape: shapeOf(ctx, 0) }];
    },
  },
  ...sameAsData({ Trilu: 14, CumSum: 11, ReverseSequence: 10, Scatter: 9, ScatterElements: 11, ScatterND: 11 }),
  // no shape rule: the audit's facts only
  ...['Compress', 'Unique', 'Optional', 'OptionalGetElement', 'OptionalHasElement'].map((op): OpSpec => ({ op, since: 1, path: PATHS.linear })),
  ...['RandomNormal', 'RandomUniform', 'HannWindow', 'HammingWindow', 'BlackmanWindow', 'MelWeightMatrix']
    .map((op): OpSpec => ({ op, since: 1, path: PATHS.none })),
);
