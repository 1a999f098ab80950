// Elementwise ops with numpy broadcasting: arithmetic, comparisons, logic, unary math, Cast, Where.
import { broadcastDims } from '../shape-math.js';
import { registerKernels, tf, type Kernel, type TfTensor, kernelError, tfDType } from './registry.js';
import { attrInt, type Node } from '../ir.js';
import { dtypeFromCode, halfToFloat, type DType } from '../tensor.js';
import { floatToHalf } from './convert.js';

const unary = (op: string, f: (x: TfTensor) => TfTensor, since = 1): Kernel => ({
  op, since, elementwise: true, run: ([x]) => [f(x)],
});

function bcast(t: TfTensor, shape: number[]): TfTensor {
  if (t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i])) return t;
  const r = t.shape.length < shape.length ? tf.reshape(t, [...Array(shape.length - t.shape.length).fill(1), ...t.shape]) : t;
  return tf.broadcastTo(r, shape);
}

/** Integer division truncating toward zero, as ONNX (C) defines it; tfjs' int div floors. */
function divide(a: TfTensor, b: TfTensor): TfTensor {
  if (a.dtype === 'int32' && b.dtype === 'int32') return tf.cast(tf.div(tf.cast(a, 'float32'), tf.cast(b, 'float32')), 'int32');
  return tf.div(a, b);
}

function pow(a: TfTensor, b: TfTensor): TfTensor {
  if (a.dtype === 'int32') {
    // integer base: compute in float, round back (ONNX output type = base type)
    return tf.cast(tf.round(tf.pow(tf.cast(a, 'float32'), tf.cast(b, 'float32'))), 'int32');
  }
  if (b.dtype !== 'float32') {
    // small integer exponents (2, 3): products are exact and have a gradient even for x < 0
    return tf.pow(a, tf.cast(b, 'float32'));
  }
  return tf.pow(a, b);
}

function mod(a: TfTensor, b: TfTensor, fmod: boolean): TfTensor {
  if (!fmod) return tf.mod(a, b);
  // C fmod: a - trunc(a / b) * b (sign of the dividend)
  if (a.dtype === 'int32') return tf.sub(a, tf.mul(divide(a, b), b));
  const q = tf.div(a, b);
  const t = tf.where(tf.less(q, 0), tf.ceil(q), tf.floor(q));
  return tf.sub(a, tf.mul(t, b));
}

const fold = (f: (a: TfTensor, b: TfTensor) => TfTensor) => (xs: TfTensor[]): TfTensor =>
  xs.length === 1 ? tf.clone(xs[0]) : xs.reduce((acc, x) => f(acc, x));

/**
 * Values rounded to float16 / bfloat16 precision (round half to even; bfloat16 before opset 19 truncates, as
 * ONNX's reference did then), still held as float32; the gradient passes straight through.
 */
function roundToLowPrecision(x: TfTensor, to: 'float16' | 'bfloat16', truncate = false): TfTensor {
  const f = tf.customGrad(((v: TfTensor) => {
    const src = v.dataSync() as Float32Array;
    const out = new Float32Array(src.length);
    const bits = new Uint32Array(out.buffer);
    out.set(src);
    for (let i = 0; i < out.length; i++) {
      if (!Number.isFinite(out[i])) continue;
      if (to === 'bfloat16') {
        const b = bits[i];
        bits[i] = truncate ? (b >>> 16) << 16 : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16;
      } else out[i] = halfToFloat(floatToHalf(out[i]));
    }
    return { value: tf.tensor(out, v.shape, 'float32'), gradFunc: (dy: TfTensor) => dy };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as TfTensor;
}

function castTo(x: TfTensor, to: DType, n: Node, opset: number): TfTensor {
  if (to === 'string' || x.dtype === 'string') throw kernelError(n, 'casting to or from strings is not supported in TensorFlow.js');
  const d = tfDType(to);
  if ((to === 'bfloat16' || to === 'float16') && x.dtype !== 'bool') return roundToLowPrecision(tf.cast(x, 'float32'), to, to === 'bfloat16' && opset < 19);
  if (d === x.dtype) return tf.clone(x);
  if (d === 'bool') return tf.notEqual(x, 0);
  // float → int truncates toward zero
  if (d === 'int32' && x.dtype === 'float32') return tf.cast(tf.where(tf.less(x, 0), tf.ceil(x), tf.floor(x)), 'int32');
  return tf.cast(x, d);
}

const toBool = (t: TfTensor) => (t.dtype === 'bool' ? t : tf.notEqual(t, 0));

export const elementwiseKernels: Kernel[] = [
  { op: 'Add', since: 1, elementwise: true, weights: [0, 1], run: ([a, b]) => [tf.add(a, b)] },
  { op: 'Sub', since: 1, elementwise: true, run: ([a, b]) => [tf.sub(a, b)] },
  { op: 'Mul', since: 1, elementwise: true, weights: [0, 1], run: ([a, b]) => [tf.mul(a, b)] },
  { op: 'Div', since: 1, elementwise: true, run: ([a, b]) => [divide(a, b)] },
  { op: 'Pow', since: 1, elementwise: true, run: ([a, b]) => [pow(a, b)] },
  { op: 'Mod', since: 10, elementwise: true, run: ([a, b], n) => [mod(a, b, attrInt(n, 'fmod', 0) === 1)] },
  { op: 'Max', since: 1, elementwise: true, run: (xs) => [fold(tf.maximum)(xs)] },
  { op: 'Min', since: 1, elementwise: true, run: (xs) => [fold(tf.minimum)(xs)] },
  { op: 'Sum', since: 1, elementwise: true, run: (xs) => [fold(tf.add)(xs)] },
  { op: 'Mean', since: 1, elementwise: true, run: (xs) => [tf.div(fold(tf.add)(xs), xs.length)] },
  { op: 'Equal', since: 1, elementwise: true, run: ([a, b]) => [tf.equal(a, b)] },
  { op: 'Greater', since: 1, elementwise: true, run: ([a, b]) => [tf.greater(a, b)] },
  { op: 'Less', since: 1, elementwise: true, run: ([a, b]) => [tf.less(a, b)] },
  { op: 'GreaterOrEqual', since: 12, elementwise: true, run: ([a, b]) => [tf.greaterEqual(a, b)] },
  { op: 'LessOrEqual', since: 12, elementwise: true, run: ([a, b]) => [tf.lessEqual(a, b)] },
  { op: 'And', since: 1, elementwise: true, run: ([a, b]) => [tf.logicalAnd(toBool(a), toBool(b))] },
  { op: 'Or', since: 1, elementwise: true, run: ([a, b]) => [tf.logicalOr(toBool(a), toBool(b))] },
  { op: 'Xor', since: 1, elementwise: true, run: ([a, b]) => [tf.logicalXor(toBool(a), toBool(b))] },
  unary('Not', (x) => tf.logicalNot(toBool(x))),
  {
    op: 'Where', since: 9, elementwise: true,
    run: ([c, a, b]) => {
      const shape = broadcastDims(c.shape, a.shape, b.shape);
      return [tf.where(bcast(toBool(c), shape), bcast(a, shape), bcast(b, shape))];
    },
  },
  unary('Sqrt', tf.sqrt),
  unary('Exp', tf.exp),
  unary('Log', tf.log),
  unary('Neg', tf.neg),
  unary('Abs', tf.abs),
  unary('Reciprocal', tf.reciprocal),
  unary('Floor', tf.floor),
  unary('Ceil', tf.ceil),
  // ONNX Round rounds half to even, as tf.round does
  unary('Round', tf.round, 11),
  unary('Sign', tf.sign, 9),
  unary('Sin', tf.sin, 7),
  unary('Cos', tf.cos, 7),
  unary('Tan', tf.tan, 7),
  unary('Asin', tf.asin, 7),
  unary('Acos', tf.acos, 7),
  unary('Atan', tf.atan, 7),
  unary('Sinh', tf.sinh, 9),
  unary('Cosh', tf.cosh, 9),
  unary('Asinh', tf.asinh, 9),
  unary('Acosh', tf.acosh, 9),
  unary('Atanh', tf.atanh, 9),
  unary('Erf', tf.erf, 9),
  unary('IsNaN', tf.isNaN, 9),
  {
    op: 'IsInf', since: 10, elementwise: true,
    run: ([x], n) => {
      const pos = attrInt(n, 'detect_positive', 1), neg = attrInt(n, 'detect_negative', 1);
      if (pos && neg) return [tf.isInf(x)];
      if (pos) return [tf.equal(x, Infinity)];
      if (neg) return [tf.equal(x, -Infinity)];
      return [tf.cast(tf.zerosLike(x), 'bool')];
    },
  },
  { op: 'Identity', since: 1, elementwise: true, run: ([x]) => [tf.clone(x)] },
  { op: 'Cast', since: 6, elementwise: true, run: ([x], n, ctx) => [castTo(x, dtypeFromCode(attrInt(n, 'to', 1)), n, ctx.opset)] },
  {
    op: 'CastLike', since: 15, elementwise: true,
    run: ([x, like], n, ctx) => {
      const declared = ctx.onnxDType(n.inputs[1]);
      return [castTo(x, declared ?? (like.dtype === 'string' ? 'string' : like.dtype === 'bool' ? 'bool' : like.dtype), n, ctx.opset)];
    },
  },
];

registerKernels(...elementwiseKernels);
