// Reductions (ReduceMean/Sum/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare), ArgMax/ArgMin, CumSum, TopK.
import { normAxis } from '../shape-math.js';
import { registerKernels, tf, type Kernel, type TfTensor, type KernelContext } from './registry.js';
import { attrInt, attrInts, type Node } from '../ir.js';

type Reducer = (x: TfTensor, axes: number[], keep: boolean) => TfTensor;

function reduceKernels(op: string, f: Reducer, axesInputSince: number): Kernel[] {
  const run = (x: TfTensor, axesList: number[] | undefined, node: Node): TfTensor => {
    const keep = attrInt(node, 'keepdims', 1) === 1;
    if (!axesList || axesList.length === 0) {
      if (attrInt(node, 'noop_with_empty_axes', 0) === 1) return tf.clone(x);
      axesList = Array.from({ length: x.rank }, (_, i) => i);
    }
    const axes = [...new Set(axesList.map((a) => normAxis(a, x.rank)))].sort((a, b) => a - b);
    if (x.rank === 0) return tf.clone(x);
    return f(x, axes, keep);
  };
  return [
    { op, since: 1, until: axesInputSince - 1, run: ([x], node) => [run(x, attrInts(node, 'axes'), node)] },
    {
      op, since: axesInputSince,
      run: ([x, axes], node, ctx: KernelContext) => [run(x, axes ? ctx.values(axes) : undefined, node)],
    },
  ];
}

const floatOnly = (f: Reducer): Reducer => (x, axes, keep) => {
  if (x.dtype === 'float32') return f(x, axes, keep);
  return tf.cast(tf.round(f(tf.cast(x, 'float32'), axes, keep)), x.dtype);
};

function argKernel(op: string, f: (x: TfTensor, axis: number) => TfTensor): Kernel {
  return {
    op, since: 1,
    run: ([x], node) => {
      const axis = normAxis(attrInt(node, 'axis', 0), x.rank);
      const keep = attrInt(node, 'keepdims', 1) === 1;
      let idx: TfTensor;
      if (attrInt(node, 'select_last_index', 0) === 1) {
        idx = tf.sub(tf.scalar(x.shape[axis] - 1, 'int32'), f(tf.reverse(x, axis), axis));
      } else idx = f(x, axis);
      return [keep ? tf.expandDims(idx, axis) : idx];
    },
  };
}

export const reduceKernels_: Kernel[] = [
  ...reduceKernels('ReduceSum', (x, a, k) => tf.sum(x, a, k), 13),
  ...reduceKernels('ReduceMean', floatOnly((x, a, k) => tf.mean(x, a, k)), 18),
  ...reduceKernels('ReduceMax', (x, a, k) => tf.max(x, a, k), 18),
  ...reduceKernels('ReduceMin', (x, a, k) => tf.min(x, a, k), 18),
  ...reduceKernels('ReduceProd', (x, a, k) => tf.prod(x, a, k), 18),
  ...reduceKernels('ReduceL1', (x, a, k) => tf.sum(tf.abs(x), a, k), 18),
  ...reduceKernels('ReduceL2', floatOnly((x, a, k) => tf.sqrt(tf.sum(tf.square(x), a, k))), 18),
  ...reduceKernels('ReduceLogSum', floatOnly((x, a, k) => tf.log(tf.sum(x, a, k))), 18),
  ...reduceKernels('ReduceLogSumExp', floatOnly((x, a, k) => tf.logSumExp(x, a, k)), 18),
  ...reduceKernels('ReduceSumSquare', (x, a, k) => tf.sum(tf.square(x), a, k), 18),
  argKernel('ArgMax', (x, axis) => tf.argMax(x, axis)),
  argKernel('ArgMin', (x, axis) => tf.argMin(x, axis)),
  {
    op: 'CumSum', since: 11,
    run: ([x, axis], node, ctx) => {
      const a = normAxis(ctx.values(axis)[0], x.rank);
      return [tf.cumsum(x, a, attrInt(node, 'exclusive', 0) === 1, attrInt(node, 'reverse', 0) === 1)];
    },
  },
  {
    op: 'TopK', since: 10,
    run: ([x, k], node, ctx) => {
      const kk = ctx.values(k)[0];
      const axis = normAxis(attrInt(node, 'axis', -1), x.rank);
      const largest = attrInt(node, 'largest', 1) === 1;
      const r = x.rank;
      const perm = Array.from({ length: r }, (_, i) => i).filter((i) => i !== axis).concat([axis]);
      const inv = perm.map((_, i) => perm.indexOf(i));
      const xt = axis === r - 1 ? x : tf.transpose(x, perm);
      const src = largest ? xt : tf.neg(xt);
      const { values, indices } = tf.topk(src, kk, true);
      const v = largest ? values : tf.neg(values);
      return axis === r - 1 ? [v, indices] : [tf.transpose(v, inv), tf.transpose(indices, inv)];
    },
  },
];

registerKernels(...reduceKernels_);
