// Elementwise ops: unary math, binary/variadic ops with multidirectional broadcasting, comparisons and logic,
// Where, Cast/CastLike, Clip. Every evaluator goes through one broadcasting helper.
import { attrFloat, attrInt, attrString, type Dim } from '../ir.js';
import { dtypeFromCode, type DType } from '../tensor.js';
import {
  arr, arrs, bad, broadcastEval, broadcastShapes, CannotEvaluate, dtypeOf, fresh, has, isIntType, isNum, like, partialOf, passPartial, roundHalfEven, shapeOf, toTensor, type Arr,
} from './common.js';
import { PATHS, registerOps, type OpContext, type OpSpec, type PathRule } from './registry.js';

type Fn = (...x: number[]) => number;

/** Evaluator applying `fn` elementwise (with broadcasting) to all given inputs; `outDtype` defaults to input 0's. */
function evalWith(fn: (ctx: OpContext, dtype: DType) => Fn, outDtype?: (ctx: OpContext) => DType) {
  return (ctx: OpContext) => {
    const ins = arrs(ctx).filter((a): a is Arr => !!a);
    const dtype = outDtype?.(ctx) ?? ins[0].dtype;
    return [toTensor(ctx.node.outputs[0], broadcastEval(ctx, ins, dtype, fn(ctx, ins[0].dtype)))];
  };
}
/** Integer dtypes truncate float results (as ONNX's reference and onnxruntime do for Div, Pow…). */
const intWrap = (f: Fn) => (_: OpContext, dt: DType): Fn => (isIntType(dt) ? (...x) => Math.trunc(f(...x)) : f);

// ---- unary, same type
const UNARY: Record<string, [since: number, fn: (x: number) => number]> = {
  Abs: [1, Math.abs], Neg: [1, (x) => -x], Floor: [1, Math.floor], Ceil: [1, Math.ceil], Sqrt: [1, Math.sqrt],
  Reciprocal: [1, (x) => 1 / x], Exp: [1, Math.exp], Log: [1, Math.log], Round: [11, roundHalfEven],
  Sin: [7, Math.sin], Cos: [7, Math.cos], Tan: [7, Math.tan], Asin: [7, Math.asin], Acos: [7, Math.acos], Atan: [7, Math.atan],
  Sinh: [9, Math.sinh], Cosh: [9, Math.cosh], Asinh: [9, Math.asinh], Acosh: [9, Math.acosh], Atanh: [9, Math.atanh],
  Sign: [9, Math.sign], BitwiseNot: [18, (x) => ~x],
};

const unary: OpSpec[] = Object.entries(UNARY).map(([op, [since, f]]) => ({
  op, since, infer: (ctx) => [like(ctx)], evaluate: evalWith(intWrap(f)),
  path: op === 'Neg' || op === 'BitwiseNot' ? PATHS.linear : PATHS.nonlinear('elementwise'),
  // a symbolic dim is an integer: rounding keeps it
  partial: op === 'Floor' || op === 'Ceil' || op === 'Round' ? passPartial : undefined,
}));

const boolUnary: OpSpec[] = ([
  { op: 'Not', since: 1, infer: (ctx) => [{ dtype: 'bool', shape: shapeOf(ctx, 0) }], evaluate: evalWith(() => (x) => (x ? 0 : 1)) },
  { op: 'IsNaN', since: 9, infer: (ctx) => [{ dtype: 'bool', shape: shapeOf(ctx, 0) }], evaluate: evalWith(() => (x) => +Number.isNaN(x), () => 'bool') },
  {
    op: 'IsInf', since: 10, infer: (ctx) => [{ dtype: 'bool', shape: shapeOf(ctx, 0) }],
    evaluate: evalWith((ctx) => {
      const neg = attrInt(ctx.node, 'detect_negative', 1), pos = attrInt(ctx.node, 'detect_positive', 1);
      return (x) => +((x === Infinity && !!pos) || (x === -Infinity && !!neg));
    }, () => 'bool'),
  },
] as OpSpec[]).map((spec) => ({ ...spec, path: PATHS.linear }));

// ---- binary and variadic, with broadcasting (opset < 7: legacy `broadcast` attribute, output shaped like A)
const bshape = (ctx: OpContext) => (ctx.opset < 7 ? shapeOf(ctx, 0) : broadcastShapes(ctx, ctx.inputs.map((v) => v?.shape)));

const ARITH: Record<string, [since: number, fn: (ctx: OpContext, dt: DType) => Fn]> = {
  Add: [1, () => (a, b) => a + b],
  Sub: [1, () => (a, b) => a - b],
  Mul: [1, () => (a, b) => a * b],
  Div: [1, intWrap((a, b) => a / b)],
  Pow: [1, intWrap(Math.pow)],
  Mod: [10, (ctx, dt) => (attrInt(ctx.node, 'fmod', 0) || !isIntType(dt) ? (a, b) => a % b : (a, b) => (b ? (((a % b) + b) % b) : 0))],
  BitShift: [11, (ctx) => (attrString(ctx.node, 'direction', 'LEFT') === 'LEFT' ? (a, b) => a * 2 ** b : (a, b) => Math.floor(a / 2 ** b))],
  BitwiseAnd: [18, () => (a, b) => a & b], BitwiseOr: [18, () => (a, b) => a | b], BitwiseXor: [18, () => (a, b) => a ^ b],
};
/** Which operand value leaves the other unchanged (x + 0, x − 0, x · 1, x / 1). */
const NEUTRAL: Record<string, [left: number | undefined, right: number]> = { Add: [0, 0], Sub: [undefined, 0], Mul: [1, 1], Div: [undefined, 1] };

/** Shape arithmetic on partially known values: numbers compute, symbols survive neutral operands. */
function arithPartial(op: string, fn: (ctx: OpContext, dt: DType) => Fn) {
  return (ctx: OpContext): (Dim[] | undefined)[] => {
    const a = partialOf(ctx, 0), b = partialOf(ctx, 1);
    if (!a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return [undefined];
    const f = fn(ctx, dtypeOf(ctx, 0) ?? 'int64');
    const [nl, nr] = NEUTRAL[op];
    return [Array.from({ length: Math.max(a.length, b.length) }, (_, k): Dim => {
      const x = a[a.length === 1 ? 0 : k], y = b[b.length === 1 ? 0 : k];
      if (isNum(x) && isNum(y)) return f(x, y);
      if (y === nr) return x;
      if (x === nl) return y;
      return op === 'Mul' && (x === 0 || y === 0) ? 0 : fresh(ctx);
    })];
  };
}

/** Mul/Div of two input-dependent operands are nonlinear (product), Pow is linear only for exponent 1. */
const ARITH_PATH: Record<string, PathRule> = {
  Add: PATHS.merge, Sub: PATHS.merge, Mul: { rule: 'product' }, Div: { rule: 'product' }, Pow: { rule: 'power' },
};
const arith: OpSpec[] = Object.entries(ARITH).map(([op, [since, fn]]) => ({
  op, since, infer: (ctx) => [{ dtype: dtypeOf(ctx, 0), shape: bshape(ctx) }], evaluate: evalWith(fn),
  path: ARITH_PATH[op] ?? PATHS.linear,
  partial: NEUTRAL[op] ? arithPartial(op, fn) : undefined,
}));

const COMPARE: Record<string, [since: number, fn: Fn]> = {
  Equal: [1, (a, b) => +(a === b)], Less: [1, (a, b) => +(a < b)], Greater: [1, (a, b) => +(a > b)],
  LessOrEqual: [12, (a, b) => +(a <= b)], GreaterOrEqual: [12, (a, b) => +(a >= b)],
  And: [1, (a, b) => +(!!a && !!b)], Or: [1, (a, b) => +(!!a || !!b)], Xor: [1, (a, b) => +(!!a !== !!b)],
};
const compare: OpSpec[] = Object.entries(COMPARE).map(([op, [since, fn]]) => ({
  op, since, infer: (ctx) => [{ dtype: 'bool', shape: bshape(ctx) }], evaluate: evalWith(() => fn, () => 'bool'), path: PATHS.linear,
}));

const VARIADIC: Record<string, Fn> = {
  Max: (...x) => Math.max(...x), Min: (...x) => Math.min(...x),
  Sum: (...x) => x.reduce((a, b) => a + b, 0), Mean: (...x) => x.reduce((a, b) => a + b, 0) / x.length,
};
const variadic: OpSpec[] = Object.entries(VARIADIC).map(([op, fn]) => ({
  op, since: 1, infer: (ctx) => [{ dtype: dtypeOf(ctx, 0), shape: broadcastShapes(ctx, ctx.inputs.map((v) => v?.shape)) }],
  evaluate: evalWith((ctx, dt) => (op === 'Mean' ? intWrap(fn)(ctx, dt) : fn)),
  // Max/Min of two branches are nonlinear even when both are linear in the input
  path: op === 'Max' || op === 'Min' ? { rule: 'elementwise', nonlinear: 'elementwise' } : PATHS.merge,
}));

// ---- Where, Cast, CastLike, Clip
function castEval(ctx: OpContext, to: DType) {
  const a = arr(ctx.values[0]);
  return [toTensor(ctx.node.outputs[0], { ...a, dtype: to, v: to === 'bool' ? a.v.map((x) => +!!x) : a.v })];
}
const castTo = (ctx: OpContext): DType => {
  const to = attrInt(ctx.node, 'to');
  if (to === undefined) bad(ctx, "Cast has no 'to' attribute");
  return dtypeFromCode(to);
};

function clipBounds(ctx: OpContext): [number, number] {
  if (ctx.opset < 11) return [attrFloat(ctx.node, 'min', -Infinity), attrFloat(ctx.node, 'max', Infinity)];
  const bound = (i: number, dflt: number) => {
    if (!has(ctx, i)) return dflt;
    const v = ctx.values[i];
    if (!v) throw new CannotEvaluate();
    return arr(v).v[0];
  };
  return [bound(1, -Infinity), bound(2, Infinity)];
}

const misc: OpSpec[] = [
  {
    op: 'Where', since: 9,
    infer: (ctx) => [{ dtype: dtypeOf(ctx, 1) ?? dtypeOf(ctx, 2), shape: broadcastShapes(ctx, ctx.inputs.map((v) => v?.shape)) }],
    evaluate: evalWith(() => (c, x, y) => (c ? x : y), (ctx) => arr(ctx.values[1]).dtype), path: PATHS.linear,
  },
  {
    op: 'Cast', since: 1, infer: (ctx) => [{ dtype: castTo(ctx), shape: shapeOf(ctx, 0) }], evaluate: (ctx) => castEval(ctx, castTo(ctx)),
    partial: (ctx) => (castTo(ctx) === 'bool' || castTo(ctx) === 'string' ? [undefined] : passPartial(ctx)), path: PATHS.linear,
  },
  {
    op: 'CastLike', since: 15, infer: (ctx) => [{ dtype: dtypeOf(ctx, 1), shape: shapeOf(ctx, 0) }],
    evaluate: (ctx) => castEval(ctx, dtypeOf(ctx, 1) ?? arr(ctx.values[1]).dtype), path: PATHS.linear,
  },
  {
    op: 'Clip', since: 1, infer: (ctx) => [like(ctx)],
    evaluate: (ctx) => {
      const [lo, hi] = clipBounds(ctx);
      const a = arr(ctx.values[0]);
      return [toTensor(ctx.node.outputs[0], { ...a, v: a.v.map((x) => Math.min(hi, Math.max(lo, x))) })];
    },
  },
];

// no shape rule: the audit's facts only
const pathOnly: OpSpec[] = [
  ...['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'Det', 'Bernoulli', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial']
    .map((op): OpSpec => ({ op, since: 1, path: PATHS.linear })),
  { op: 'BiasAdd', domain: 'com.microsoft', since: 1, infer: (ctx) => [like(ctx)], path: PATHS.linear },
];

registerOps(...unary, ...boolUnary, ...arith, ...compare, ...variadic, ...misc, ...pathOnly);
