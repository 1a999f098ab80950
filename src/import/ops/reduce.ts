// Reductions (ReduceMean/Sum/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare) and ArgMax/ArgMin.
// Axes are an attribute before opset 13 (ReduceSum) or 18 (the others) and an input from then on.
import { attrInt, attrInts } from '../ir.js';
import { arr, bad, CannotEvaluate, constNums, dtypeOf, fresh, has, normAxis, shapeOf, toTensor, type Arr } from './common.js';
import { registerOps, type OpContext, type OpSpec, type OutputType, type PathRule } from './registry.js';
import { product, rowMajorStrides } from '../shape-math.js';

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const REDUCERS: Record<string, (xs: number[]) => number> = {
  ReduceSum: sum,
  ReduceMean: (xs) => sum(xs) / xs.length,
  ReduceMax: (xs) => Math.max(...xs),
  ReduceMin: (xs) => Math.min(...xs),
  ReduceProd: (xs) => xs.reduce((a, b) => a * b, 1),
  ReduceL1: (xs) => sum(xs.map(Math.abs)),
  ReduceL2: (xs) => Math.sqrt(sum(xs.map((x) => x * x))),
  ReduceLogSum: (xs) => Math.log(sum(xs)),
  ReduceLogSumExp: (xs) => Math.log(sum(xs.map(Math.exp))),
  ReduceSumSquare: (xs) => sum(xs.map((x) => x * x)),
};

/** Reduced axes (normalized, sorted), 'all', 'none' (noop_with_empty_axes) or 'unknown' (non-constant input). */
function reducedAxes(ctx: OpContext, rank: number, inputSince: number): number[] | 'unknown' {
  let axes: number[] | undefined;
  if (ctx.opset < inputSince) axes = attrInts(ctx.node, 'axes');
  else if (has(ctx, 1)) {
    axes = constNums(ctx, 1);
    if (!axes) return 'unknown';
  }
  if (!axes?.length) return ctx.opset >= inputSince && attrInt(ctx.node, 'noop_with_empty_axes', 0) ? [] : Array.from({ length: rank }, (_, k) => k);
  return [...new Set(axes.map((a) => normAxis(ctx, a, rank)))].sort((a, b) => a - b);
}

function reduceInfer(inputSince: number) {
  return (ctx: OpContext): OutputType[] => {
    const dtype = dtypeOf(ctx, 0);
    const x = shapeOf(ctx, 0);
    if (!x) return [{ dtype }];
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    const axes = reducedAxes(ctx, x.length, inputSince);
    if (axes === 'unknown') {
      const n = shapeOf(ctx, 1)?.[0];
      return [{ dtype, shape: keep ? x.map(() => fresh(ctx)) : typeof n === 'number' ? x.slice(n).map(() => fresh(ctx)) : undefined }];
    }
    return [{ dtype, shape: x.flatMap((d, k) => (!axes.includes(k) ? [d] : keep ? [1] : [])) }];
  };
}

/** Groups the values of `a` by output position (reduced axes zeroed), in input order. */
function groups(a: Arr, axes: number[]): { dims: number[]; buckets: number[][] } {
  const dims = a.dims.map((d, k) => (axes.includes(k) ? 1 : d));
  const ost = rowMajorStrides(dims), ist = rowMajorStrides(a.dims);
  const buckets = Array.from({ length: product(dims) }, () => [] as number[]);
  a.v.forEach((x, i) => {
    let o = 0;
    for (let k = 0; k < a.dims.length; k++) if (!axes.includes(k)) o += (Math.floor(i / ist[k]) % a.dims[k]) * ost[k];
    buckets[o].push(x);
  });
  return { dims, buckets };
}

function reduceEval(op: string, inputSince: number) {
  return (ctx: OpContext) => {
    const a = arr(ctx.values[0]);
    const axes = reducedAxes(ctx, a.dims.length, inputSince);
    if (axes === 'unknown') throw new CannotEvaluate();
    const { dims, buckets } = groups(a, axes);
    const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
    const v = buckets.map(REDUCERS[op]);
    return [toTensor(ctx.node.outputs[0], { dtype: a.dtype, dims: keep ? dims : a.dims.filter((_, k) => !axes.includes(k)), v })];
  };
}

function argInfer(ctx: OpContext): OutputType[] {
  const x = shapeOf(ctx, 0);
  if (!x) return [{ dtype: 'int64' }];
  const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), x.length);
  const keep = attrInt(ctx.node, 'keepdims', 1) === 1;
  return [{ dtype: 'int64', shape: x.flatMap((d, k) => (k !== axis ? [d] : keep ? [1] : [])) }];
}

function argEval(max: boolean) {
  return (ctx: OpContext) => {
    const a = arr(ctx.values[0]);
    const axis = normAxis(ctx, attrInt(ctx.node, 'axis', 0), a.dims.length);
    if (!a.dims[axis]) bad(ctx, 'ArgMax/ArgMin over an empty axis');
    const last = attrInt(ctx.node, 'select_last_index', 0) === 1;
    const { buckets } = groups(a, [axis]);
    const v = buckets.map((xs) => xs.reduce((best, x, i) => {
      const better = max ? x > xs[best] : x < xs[best];
      return better || (last && x === xs[best]) ? i : best;
    }, 0));
    return [toTensor(ctx.node.outputs[0], { dtype: 'int64', dims: argInfer(ctx)[0].shape as number[], v })];
  };
}

/** A reduction over channels sums their paths; all but the (linear) sum and mean are nonlinear. */
const reducePath = (op: string): PathRule => ({
  rule: 'reduce',
  nonlinear: op === 'ReduceSum' || op === 'ReduceMean' ? undefined : op === 'ReduceMax' || op === 'ReduceMin' || op.startsWith('Arg') ? 'reduce_max' : 'reduce',
});

const specs: OpSpec[] = Object.keys(REDUCERS).flatMap((op) => {
  const inputSince = op === 'ReduceSum' ? 13 : 18;
  return [
    { op, since: 1, until: inputSince - 1, infer: reduceInfer(inputSince), evaluate: reduceEval(op, inputSince), path: reducePath(op) },
    { op, since: inputSince, infer: reduceInfer(inputSince), evaluate: reduceEval(op, inputSince), path: reducePath(op) },
  ];
});
specs.push(
  { op: 'ArgMax', since: 1, infer: argInfer, evaluate: argEval(true), path: reducePath('ArgMax') },
  { op: 'ArgMin', since: 1, infer: argInfer, evaluate: argEval(false), path: reducePath('ArgMin') },
);
registerOps(...specs);
