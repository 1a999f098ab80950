// Activations (elementwise, layout-agnostic) and the axis-wise Softmax / LogSoftmax / Hardmax.
import { product, normAxis } from '../shape-math.js';
import { registerKernels, tf, type Kernel, type TfTensor, type KernelContext } from './registry.js';
import { attrFloat, attrInt, attrString, type Node } from '../ir.js';

const act = (op: string, f: (x: TfTensor, node: Node, ctx: KernelContext) => TfTensor, since = 1): Kernel => ({
  op, since, elementwise: true, run: ([x], node, ctx) => [f(x, node, ctx)],
});

const SQRT1_2 = Math.SQRT1_2;

export function gelu(x: TfTensor, approximate = 'none'): TfTensor {
  if (approximate === 'tanh') {
    const c = Math.sqrt(2 / Math.PI);
    const inner = tf.mul(c, tf.add(x, tf.mul(0.044715, tf.mul(x, tf.square(x)))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  }
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, SQRT1_2))));
}

function hardSigmoid(x: TfTensor, alpha: number, beta: number): TfTensor {
  return tf.clipByValue(tf.add(tf.mul(x, alpha), beta), 0, 1);
}

/** max(0,x) + slope·min(0,x); tf.prelu where its kernel applies (slope per last axis), else composed. */
export function prelu(x: TfTensor, slope: TfTensor): TfTensor {
  const last = x.shape[x.rank - 1];
  const s = slope.shape;
  const perLast = s.length <= x.rank && s.slice(0, -1).every((d) => d === 1) && (s.length === 0 || s[s.length - 1] === last || s[s.length - 1] === 1);
  if (perLast && x.dtype === 'float32') {
    const a = s.length === 0 || s[s.length - 1] === 1 ? tf.broadcastTo(tf.reshape(slope, [1]), [last]) : tf.reshape(slope, [last]);
    return tf.prelu(x, a);
  }
  return tf.add(tf.relu(x), tf.mul(slope, tf.minimum(x, 0)));
}

function clipBound(ctx: KernelContext, t: TfTensor | undefined): number | undefined {
  return t ? ctx.values(t)[0] : undefined;
}

function clip(x: TfTensor, lo: number | undefined, hi: number | undefined): TfTensor {
  const isInt = x.dtype === 'int32';
  const min = lo ?? (isInt ? -2147483648 : -Infinity);
  const max = hi ?? (isInt ? 2147483647 : Infinity);
  if (min > max) return tf.fill(x.shape, max, x.dtype);
  if (min === 0 && max === 6 && !isInt) return tf.relu6(x);
  if (min === 0 && max === Infinity && !isInt) return tf.relu(x);
  // wasm's ClipByValue reads int32 data as floats
  if (isInt) return tf.minimum(tf.maximum(x, tf.scalar(min, 'int32')), tf.scalar(max, 'int32'));
  return tf.clipByValue(x, min, max);
}

/** Applies f along `axis` (moved last when it is not). */
function alongAxis(x: TfTensor, axis: number, f: (t: TfTensor) => TfTensor): TfTensor {
  const r = x.rank;
  if (axis === r - 1) return f(x);
  const perm = Array.from({ length: r }, (_, i) => i).filter((i) => i !== axis).concat([axis]);
  const inv = perm.map((_, i) => perm.indexOf(i));
  return tf.transpose(f(tf.transpose(x, perm)), inv);
}

/** Softmax-like op: opset < 13 flattens to 2-D at `axis` (default 1); opset ≥ 13 works along `axis` (default -1). */
function softmaxFamily(op: string, f: (t: TfTensor) => TfTensor): Kernel[] {
  return [
    {
      op, since: 1, until: 12,
      run: ([x], node) => {
        if (x.rank === 0) return [tf.reshape(f(tf.reshape(x, [1, 1])), [])];
        const axis = normAxis(attrInt(node, 'axis', 1), x.rank);
        const outer = product(x.shape.slice(0, axis));
        return [tf.reshape(f(tf.reshape(x, [outer, -1])), x.shape)];
      },
    },
    {
      op, since: 13,
      run: ([x], node) => [alongAxis(x, normAxis(attrInt(node, 'axis', -1), x.rank), f)],
    },
  ];
}

function hardmax(t: TfTensor): TfTensor {
  const n = t.shape[t.rank - 1];
  return tf.cast(tf.oneHot(tf.argMax(t, -1), n), 'float32'); // int32 one-hot, cast (wasm's float OneHot is wrong)
}

export const activationKernels: Kernel[] = [
  act('Relu', (x) => tf.relu(x)),
  act('LeakyRelu', (x, n) => tf.leakyRelu(x, attrFloat(n, 'alpha', 0.01))),
  {
    // PRelu-6 and earlier apply a [C] slope per channel (axis 1); PRelu-7 broadcasts numpy-style
    op: 'PRelu', since: 1, until: 6, weights: [1],
    run: ([x, s]) => [prelu(x, s.rank === 1 && x.rank > 2 && s.size === x.shape[1] && s.size > 1 ? tf.reshape(s, [s.size, ...Array(x.rank - 2).fill(1)]) : s)],
  },
  { op: 'PRelu', since: 7, elementwise: true, weights: [1], run: ([x, s]) => [prelu(x, s)] },
  {
    op: 'Clip', since: 1, until: 10, elementwise: true,
    run: ([x], n) => [clip(x, attrFloat(n, 'min'), attrFloat(n, 'max'))],
  },
  {
    op: 'Clip', since: 11, elementwise: true,
    run: ([x, lo, hi], _n, ctx) => [clip(x, clipBound(ctx, lo), clipBound(ctx, hi))],
  },
  act('Sigmoid', (x) => tf.sigmoid(x)),
  act('HardSigmoid', (x, n) => hardSigmoid(x, attrFloat(n, 'alpha', 0.2), attrFloat(n, 'beta', 0.5))),
  act('HardSwish', (x) => tf.mul(x, hardSigmoid(x, 1 / 6, 0.5)), 14),
  act('Tanh', (x) => tf.tanh(x)),
  act('Gelu', (x, n) => gelu(x, attrString(n, 'approximate', 'none')), 20),
  { op: 'Gelu', domain: 'com.microsoft', since: 1, elementwise: true, run: ([x]) => [gelu(x)] },
  act('Elu', (x, n) => {
    const a = attrFloat(n, 'alpha', 1);
    return a === 1 ? tf.elu(x) : tf.where(tf.greater(x, 0), x, tf.mul(a, tf.sub(tf.exp(tf.minimum(x, 0)), 1)));
  }),
  act('Selu', (x, n) => {
    const a = attrFloat(n, 'alpha', 1.67326319217681884765625), g = attrFloat(n, 'gamma', 1.05070102214813232421875);
    return tf.mul(g, tf.where(tf.greater(x, 0), x, tf.mul(a, tf.sub(tf.exp(tf.minimum(x, 0)), 1))));
  }),
  act('Celu', (x, n) => {
    const a = attrFloat(n, 'alpha', 1);
    return tf.add(tf.relu(x), tf.minimum(0, tf.mul(a, tf.sub(tf.exp(tf.div(x, a)), 1))));
  }, 12),
  act('Softplus', (x) => tf.softplus(x)),
  act('Softsign', (x) => tf.div(x, tf.add(1, tf.abs(x)))),
  act('ThresholdedRelu', (x, n) => tf.where(tf.greater(x, attrFloat(n, 'alpha', 1)), x, tf.zerosLike(x)), 10),
  act('Shrink', (x, n) => {
    const l = attrFloat(n, 'lambd', 0.5), b = attrFloat(n, 'bias', 0);
    const y = tf.where(tf.less(x, -l), tf.add(x, b), tf.where(tf.greater(x, l), tf.sub(x, b), tf.zerosLike(x)));
    return y.dtype === x.dtype ? y : tf.cast(y, x.dtype);
  }, 9),
  act('Mish', (x) => tf.mul(x, tf.tanh(tf.softplus(x))), 18),
  ...softmaxFamily('Softmax', (t) => tf.softmax(t)),
  ...softmaxFamily('LogSoftmax', (t) => tf.logSoftmax(t)),
  ...softmaxFamily('Hardmax', hardmax),
];

registerKernels(...activationKernels);
