// Helpers shared by the op families: dims (numeric or symbolic), broadcasting, attribute/constant access,
// and a small number[]-based evaluator used to fold shape-computing chains (pure JS, no tfjs).
import { LinfoldError } from '../../errors.js';
import { attrInts, nodeLabel, type Dim, type Shape } from '../ir.js';
import { Tensor, type DType, type TypedArray } from '../tensor.js';
import type { OpContext, OpSpec, OutputType } from './registry.js';
import { product, rowMajorStrides, normAxis as wrapAxis } from '../shape-math.js';

/** Thrown by an evaluator that cannot handle its inputs (dtype, size): the output simply stays unknown. */
export class CannotEvaluate extends Error {}
/** `v`, or CannotEvaluate when it is missing. */
export function must<T>(v: T | undefined): T {
  if (v === undefined) throw new CannotEvaluate();
  return v;
}

/** A user-facing error naming the node: the model is inconsistent. */
export function bad(ctx: OpContext, msg: string): never {
  throw new LinfoldError(`node ${nodeLabel(ctx.node)}: ${msg}`);
}

let fallbackCounter = 0;
export function fresh(ctx: OpContext): string {
  return ctx.freshDim ? ctx.freshDim() : `unk__${fallbackCounter++}`;
}

export const isNum = (d: Dim | undefined): d is number => typeof d === 'number';
export const allNum = (s: Shape | undefined): s is number[] => !!s && s.every(isNum);
export const fmtShape = (s: Shape): string => `[${s.join(',')}]`;

/** Input accessors; `has` distinguishes an omitted optional input from one of unknown shape. */
export const has = (ctx: OpContext, i: number): boolean => !!ctx.node.inputs[i];
export const shapeOf = (ctx: OpContext, i: number): Shape | undefined => ctx.inputs[i]?.shape;
export const dtypeOf = (ctx: OpContext, i: number): DType | undefined => ctx.inputs[i]?.dtype;
/** A constant input as JS numbers (int64 → number; INT64_MAX becomes 2^63, which every clamp handles). */
export const constNums = (ctx: OpContext, i: number): number[] | undefined => (has(ctx, i) ? ctx.values[i]?.numbers() : undefined);

/**
 * Input i's values as dims when known at least partially: a small constant's numbers, or the partial value
 * shape inference tracked (entries may be symbolic, e.g. a Shape of ['batch', 3]).
 */
export function partialOf(ctx: OpContext, i: number): Dim[] | undefined {
  if (!has(ctx, i)) return undefined;
  const t = ctx.values[i];
  if (t) return t.size <= MAX_PARTIAL && t.dtype !== 'string' ? t.numbers() : undefined;
  return ctx.partial?.[i];
}
/** Partial values are for shape arithmetic: small lists only. */
export const MAX_PARTIAL = 64;
/** `partial` rule of ops that keep the values in order (Identity, Reshape, Squeeze, Cast…). */
export const passPartial = (ctx: OpContext): (Dim[] | undefined)[] => [partialOf(ctx, 0)];

/** Normalizes a possibly negative axis against `rank`. */
export function normAxis(ctx: OpContext, axis: number, rank: number): number {
  const a = wrapAxis(axis, rank);
  if (!(a >= 0 && a < rank)) bad(ctx, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Output like input `i` (same dtype and shape). */
export const like = (ctx: OpContext, i = 0): OutputType => ({ dtype: dtypeOf(ctx, i), shape: shapeOf(ctx, i) });

/** Product of dims: a number when all are known; one symbol times 1s stays that symbol; else a fresh dim. */
export function prodDim(ctx: OpContext, dims: Shape): Dim {
  let n = 1;
  const syms: string[] = [];
  for (const d of dims) if (isNum(d)) n *= d; else syms.push(d);
  if (!syms.length) return n;
  if (n === 0) return 0;
  return syms.length === 1 && n === 1 ? syms[0] : fresh(ctx);
}

/** Sum of dims along a concatenation axis. */
export function sumDim(ctx: OpContext, dims: Dim[]): Dim {
  const nonzero = dims.filter((d) => d !== 0);
  if (nonzero.length === 1) return nonzero[0];
  return allNum(dims) ? dims.reduce((a, b) => a + b, 0) : fresh(ctx);
}

/** Two dims that must be equal: the known one wins; two different known sizes are an error. */
export function unify(ctx: OpContext, a: Dim, b: Dim, what: string): Dim {
  if (isNum(a) && isNum(b) && a !== b) bad(ctx, `${what}: ${a} vs ${b}`);
  return isNum(a) ? a : b;
}

/** Multidirectional (numpy) broadcasting of shapes; undefined when any rank is unknown. */
export function broadcastShapes(ctx: OpContext, shapes: (Shape | undefined)[]): Shape | undefined {
  if (shapes.some((s) => !s)) return undefined;
  const ss = shapes as Shape[];
  const rank = Math.max(0, ...ss.map((s) => s.length));
  const out: Shape = [];
  for (let k = 0; k < rank; k++) {
    const ds = ss.map((s) => s[s.length - rank + k]).filter((d) => d !== undefined);
    const nums = [...new Set(ds.filter((d): d is number => isNum(d) && d !== 1))];
    if (nums.length > 1) bad(ctx, `cannot broadcast shapes ${ss.map(fmtShape).join(' and ')}`);
    const syms = [...new Set(ds.filter((d): d is string => !isNum(d)))];
    out.push(nums.length ? nums[0] : !syms.length ? 1 : syms.length === 1 ? syms[0] : fresh(ctx));
  }
  return out;
}

// ---------------------------------------------------------------- spec builders

/** Attribute or input form of an int list (axes, pads, …): attribute below `inputSince`, input from it on. */
export function intsArg(ctx: OpContext, name: string, inputIndex: number, inputSince: number): number[] | undefined | 'unknown' {
  if (ctx.opset < inputSince) return attrInts(ctx.node, name);
  if (!has(ctx, inputIndex)) return undefined;
  return constNums(ctx, inputIndex) ?? 'unknown';
}

// ---------------------------------------------------------------- evaluation on small arrays

/** A constant as plain numbers: enough for shape chains and small float math. */
export interface Arr { dtype: DType; dims: number[]; v: number[] }

const EVAL_DTYPES = new Set<DType>(['float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool']);

export function arr(t: Tensor | undefined): Arr {
  if (!t || !EVAL_DTYPES.has(t.dtype)) throw new CannotEvaluate();
  return { dtype: t.dtype, dims: t.dims, v: t.numbers() };
}
/** All inputs as arrays (omitted inputs → undefined). */
export const arrs = (ctx: OpContext): (Arr | undefined)[] => ctx.values.map((t, i) => (has(ctx, i) ? arr(t) : undefined));

const INT64_MAX = 2n ** 63n - 1n, INT64_MIN = -(2n ** 63n), UINT64_MAX = 2n ** 64n - 1n;
function toBig(x: number, lo: bigint, hi: bigint): bigint {
  if (Number.isNaN(x)) return 0n;
  if (x === Infinity) return hi;
  if (x === -Infinity) return lo;
  const b = BigInt(Math.trunc(x));
  return b > hi ? hi : b < lo ? lo : b;
}

/** Builds a tensor from numbers, converting as a C cast would (truncation toward zero for integers). */
export function toTensor(name: string, a: Arr): Tensor {
  const { dtype, dims, v } = a;
  let data: TypedArray;
  switch (dtype) {
    case 'float32': data = Float32Array.from(v); break;
    case 'float64': data = Float64Array.from(v); break;
    case 'float16': data = Uint16Array.from(v, floatToHalf); break;
    case 'int64': data = BigInt64Array.from(v, (x) => toBig(x, INT64_MIN, INT64_MAX)); break;
    case 'uint64': data = BigUint64Array.from(v, (x) => toBig(x, 0n, UINT64_MAX)); break;
    case 'int32': data = Int32Array.from(v, trunc); break;
    case 'uint32': data = Uint32Array.from(v, trunc); break;
    case 'int16': data = Int16Array.from(v, trunc); break;
    case 'uint16': data = Uint16Array.from(v, trunc); break;
    case 'int8': data = Int8Array.from(v, trunc); break;
    case 'uint8': data = Uint8Array.from(v, trunc); break;
    case 'bool': data = Uint8Array.from(v, (x) => (x ? 1 : 0)); break;
    default: throw new CannotEvaluate();
  }
  return Tensor.fromArray(name, dtype, dims, data);
}
/** Rounds half to even, as IEEE arithmetic and ONNX Round do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** IEEE half-precision bits of x, rounded to nearest even. */
export function floatToHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  x = Math.abs(x);
  if (x < 2 ** -14) return sign | roundHalfEven(x / 2 ** -24); // subnormal (1024 carries into the exponent)
  let e = Math.floor(Math.log2(x));
  if (x / 2 ** e < 1) e--;
  else if (x / 2 ** e >= 2) e++;
  let m = roundHalfEven((x / 2 ** e - 1) * 1024);
  if (m === 1024) [m, e] = [0, e + 1];
  return e > 15 ? sign | 0x7c00 : sign | ((e + 15) << 10) | m;
}

const trunc = (x: number) => (Number.isFinite(x) ? Math.trunc(x) : 0);

export const isIntType = (d: DType): boolean => d !== 'float32' && d !== 'float64' && d !== 'float16' && d !== 'bfloat16';


/**
 * Visits every multi-index of `dims` in row-major order; `f` returns the flat source index to copy.
 * The workhorse of Transpose, Slice, Gather, Expand, Tile evaluation.
 */
export function gatherBy(src: Arr, dims: number[], f: (idx: number[]) => number): Arr {
  const n = product(dims);
  const v = new Array<number>(n);
  const idx = new Array<number>(dims.length).fill(0);
  for (let i = 0; i < n; i++) {
    v[i] = src.v[f(idx)];
    for (let k = dims.length - 1; k >= 0; k--) {
      if (++idx[k] < dims[k]) break;
      idx[k] = 0;
    }
  }
  return { dtype: src.dtype, dims, v };
}

/** n-ary elementwise op with numpy broadcasting on constant arrays. */
export function broadcastEval(ctx: OpContext, ins: Arr[], dtype: DType, fn: (...x: number[]) => number): Arr {
  const dims = broadcastShapes(ctx, ins.map((a) => a.dims)) as number[];
  const rank = dims.length;
  const st = ins.map((a) => {
    const s = rowMajorStrides(a.dims);
    const off = rank - a.dims.length;
    return dims.map((_, k) => (k < off || a.dims[k - off] === 1 ? 0 : s[k - off]));
  });
  const n = product(dims);
  const v = new Array<number>(n);
  const idx = new Array<number>(rank).fill(0);
  const pos = ins.map(() => 0);
  const xs = new Array<number>(ins.length);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < ins.length; j++) xs[j] = ins[j].v[pos[j]];
    v[i] = fn(...xs);
    for (let k = rank - 1; k >= 0; k--) {
      for (let j = 0; j < ins.length; j++) pos[j] += st[j][k];
      if (++idx[k] < dims[k]) break;
      for (let j = 0; j < ins.length; j++) pos[j] -= st[j][k] * dims[k];
      idx[k] = 0;
    }
  }
  return { dtype, dims, v };
}

/** Dims of a rule's first output, which must be fully known (for evaluators that only re-shape values). */
export function knownOutDims(spec: Pick<OpSpec, 'infer'>, ctx: OpContext, i = 0): number[] {
  const s = must(spec.infer)(ctx)[i]?.shape;
  if (!allNum(s)) throw new CannotEvaluate();
  return s;
}

/** Evaluator for ops that keep the values and only change the dims (Reshape, Squeeze, Flatten, Identity…). */
export function reshapeEval(spec: Pick<OpSpec, 'infer'>) {
  return (ctx: OpContext): Tensor[] => {
    const t = ctx.values[0];
    if (!t) throw new CannotEvaluate();
    const dims = knownOutDims(spec, ctx);
    const name = ctx.node.outputs[0];
    return [t.dtype === 'string' ? Tensor.fromStrings(name, dims, t.strings) : Tensor.fromArray(name, t.dtype, dims, t.data)];
  };
}
