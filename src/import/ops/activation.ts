// Activations and softmax-like ops: the output has the input's type and shape.
import { arr, like, toTensor } from './common.js';
import { PATHS, registerOps, type OpContext, type OpSpec, type PathRule } from './registry.js';

const same = (ctx: OpContext) => [like(ctx)];

/** Since-opset of each activation (the shape rule is the same in every version). */
const ACTIVATIONS: Record<string, number> = {
  Relu: 1, LeakyRelu: 1, PRelu: 1, Sigmoid: 1, HardSigmoid: 1, HardSwish: 14, Tanh: 1, Erf: 9, Gelu: 20, Elu: 1,
  Selu: 1, Celu: 12, Softplus: 1, Softsign: 1, ThresholdedRelu: 10, Mish: 18, Shrink: 9,
  Softmax: 1, LogSoftmax: 1, Hardmax: 1,
};

/** Cheap evaluators for the activations that show up on constants (masks, clamps in shape math). */
const EVAL: Record<string, (x: number) => number> = {
  Relu: (x) => Math.max(0, x), Sigmoid: (x) => 1 / (1 + Math.exp(-x)), Tanh: Math.tanh,
};

/**
 * Paths of the ops that are not activation layers. The activations themselves are matched as layers by
 * src/analyze/patterns.ts (with their slopes); one the matcher does not take stays opaque.
 */
const PATH: Record<string, PathRule> = {
  Erf: PATHS.nonlinear('elementwise'), Shrink: PATHS.nonlinear('elementwise'),
  Softmax: PATHS.nonlinear('softmax'), LogSoftmax: PATHS.nonlinear('logsoftmax'), Hardmax: PATHS.nonlinear('hardmax'),
};

const specs: OpSpec[] = Object.entries(ACTIVATIONS).map(([op, since]) => ({
  op, since, infer: same, path: PATH[op],
  evaluate: EVAL[op] && ((ctx: OpContext) => {
    const a = arr(ctx.values[0]);
    return [toTensor(ctx.node.outputs[0], { ...a, v: a.v.map(EVAL[op]) })];
  }),
}));

// onnxruntime's fused activations (com.microsoft) and Swish: shape rules only (their paths: activation layers)
const fused: OpSpec[] = [
  ...['FastGelu', 'BiasGelu', 'QuickGelu'].map((op): OpSpec => ({ op, domain: 'com.microsoft', since: 1, infer: same })),
  { op: 'Swish', since: 1, infer: same },
];

registerOps(...specs, ...fused);
