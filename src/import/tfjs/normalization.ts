// Normalization: BatchNormalization (inference and training mode), LayerNormalization, InstanceNormalization,
// LRN, MeanVarianceNormalization.
import { normAxis } from '../shape-math.js';
import { registerKernels, tf, dims, type Kernel, type TfTensor, type KernelContext } from './registry.js';
import { attrFloat, attrInt, attrInts, type Node } from '../ir.js';

/** Per-channel vector [C] shaped to broadcast against `x` on its channel axis. */
function channelShape(v: TfTensor, rank: number, channelsLast: boolean): TfTensor {
  if (channelsLast || rank <= 2) return v;
  return tf.reshape(v, [v.shape[0], ...Array(rank - 2).fill(1)]);
}

/** Whether a BatchNormalization node computes batch statistics. */
export function bnTrainingMode(node: Node, opset: number, ctx: Pick<KernelContext, 'training'>): boolean {
  if (ctx.training !== undefined) return ctx.training;
  if (opset >= 14) return attrInt(node, 'training_mode', 0) === 1;
  // opset 9..13: the training form is the one with the (running) mean/var outputs; before 7, is_test said
  if (opset < 7) return attrInt(node, 'is_test', 0) === 0 && node.outputs.slice(1).some((o) => o !== '');
  return opset >= 9 && node.outputs.slice(1).some((o) => o !== '');
}

function batchNorm(inputs: TfTensor[], node: Node, ctx: KernelContext, channelsLast: boolean): TfTensor[] {
  const [x, scale, bias, mean, variance] = inputs;
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const r = x.rank;
  const cs = (v: TfTensor) => channelShape(v, r, channelsLast);
  if (!bnTrainingMode(node, ctx.opset, ctx)) {
    const a = tf.mul(scale, tf.rsqrt(tf.add(variance, eps)));
    const b = tf.sub(bias, tf.mul(mean, a));
    const extra = node.outputs.slice(1).map((_, i) => tf.clone(i % 2 === 0 ? mean : variance));
    return [tf.add(tf.mul(x, cs(a)), cs(b)), ...extra];
  }
  const cAxis = channelsLast ? r - 1 : 1;
  const axes = Array.from({ length: r }, (_, i) => i).filter((i) => i !== cAxis);
  const m = tf.moments(x, axes);
  const y = tf.add(tf.mul(tf.mul(tf.sub(x, cs(m.mean)), cs(tf.rsqrt(tf.add(m.variance, eps)))), cs(scale)), cs(bias));
  const momentum = attrFloat(node, 'momentum', 0.9);
  const runMean = tf.add(tf.mul(mean, momentum), tf.mul(m.mean, 1 - momentum));
  const runVar = tf.add(tf.mul(variance, momentum), tf.mul(m.variance, 1 - momentum));
  ctx.onStatUpdate?.(node.inputs[3], runMean);
  ctx.onStatUpdate?.(node.inputs[4], runVar);
  // opset ≥ 14: Y, running_mean, running_var; opset 9..13: Y, mean, var, saved_mean, saved_var
  const extra = [runMean, runVar, m.mean, tf.rsqrt(tf.add(m.variance, eps))].slice(0, node.outputs.length - 1);
  return [y, ...extra];
}

function layerNorm([x, scale, bias]: TfTensor[], node: Node): TfTensor[] {
  const axis = normAxis(attrInt(node, 'axis', -1), x.rank);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const axes = Array.from({ length: x.rank - axis }, (_, i) => axis + i);
  const m = tf.moments(x, axes, true);
  const inv = tf.rsqrt(tf.add(m.variance, eps));
  let y = tf.mul(tf.sub(x, m.mean), inv);
  if (scale) y = tf.mul(y, scale);
  if (bias) y = tf.add(y, bias);
  return [y, m.mean, inv].slice(0, Math.max(1, node.outputs.length));
}

function instanceNorm([x, scale, bias]: TfTensor[], node: Node, channelsLast: boolean): TfTensor {
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const r = x.rank;
  const axes = channelsLast ? Array.from({ length: r - 2 }, (_, i) => i + 1) : Array.from({ length: r - 2 }, (_, i) => i + 2);
  const m = tf.moments(x, axes, true);
  const y = tf.mul(tf.sub(x, m.mean), tf.rsqrt(tf.add(m.variance, eps)));
  return tf.add(tf.mul(y, channelShape(scale, r, channelsLast)), channelShape(bias, r, channelsLast));
}

function lrn([x]: TfTensor[], node: Node): TfTensor {
  const size = attrInt(node, 'size', 1);
  const alpha = attrFloat(node, 'alpha', 1e-4), beta = attrFloat(node, 'beta', 0.75), bias = attrFloat(node, 'bias', 1);
  const sq = tf.square(x);
  const before = Math.floor((size - 1) / 2), after = Math.ceil((size - 1) / 2);
  const pads = x.shape.map((_, i) => (i === 1 ? [before, after] : [0, 0]) as [number, number]);
  const padded = tf.pad(sq, pads);
  const C = dims(x)[1];
  let sum: TfTensor | undefined;
  for (let k = 0; k < size; k++) {
    const begin = x.shape.map((_, i) => (i === 1 ? k : 0));
    const s = tf.slice(padded, begin, dims(x).map((d, i) => (i === 1 ? C : d)));
    sum = sum ? tf.add(sum, s) : s;
  }
  return tf.div(x, tf.pow(tf.add(bias, tf.mul(alpha / size, sum!)), beta));
}

const rank4 = (_n: Node, ranks: number[]) => ranks[0] === 4;

export const normalizationKernels: Kernel[] = [
  {
    op: 'BatchNormalization', since: 1, weights: [1, 2], stats: [3, 4], random: true,
    run: (inputs, node, ctx) => batchNorm(inputs, node, ctx, false),
    nhwc: { mode: 'either', accepts: rank4, run: (inputs, node, ctx) => batchNorm(inputs, node, ctx, true) },
  },
  { op: 'LayerNormalization', since: 17, weights: [1, 2], run: layerNorm },
  {
    op: 'InstanceNormalization', since: 6, weights: [1, 2],
    run: (inputs, node) => [instanceNorm(inputs, node, false)],
    nhwc: { mode: 'either', accepts: rank4, run: (inputs, node) => [instanceNorm(inputs, node, true)] },
  },
  { op: 'LRN', since: 1, run: (inputs, node) => [lrn(inputs, node)] },
  {
    op: 'MeanVarianceNormalization', since: 9,
    run: ([x], node) => {
      const axes = (attrInts(node, 'axes') ?? [0, 2, 3]).map((a) => normAxis(a, x.rank));
      const mean = tf.mean(x, axes, true);
      const variance = tf.sub(tf.mean(tf.square(x), axes, true), tf.square(mean));
      return [tf.div(tf.sub(x, mean), tf.add(tf.sqrt(variance), 1e-9))];
    },
  },
];

registerKernels(...normalizationKernels);
