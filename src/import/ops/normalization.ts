// Normalization and regularization: BatchNormalization (with training-mode outputs), LayerNormalization,
// InstanceNormalization, GroupNormalization, LRN, MeanVarianceNormalization, LpNormalization, Dropout.
import { attrInt } from '../ir.js';
import { dtypeFromCode } from '../tensor.js';
import { dtypeOf, fresh, like, normAxis, shapeOf } from './common.js';
import { PATHS, registerOps, type OpContext, type OpSpec, type OtherNonlinearKind, type OutputType } from './registry.js';

function batchNormInfer(ctx: OpContext): OutputType[] {
  // extra outputs (running or saved mean/var, by opset) are all per channel: [C]
  const x = shapeOf(ctx, 0);
  const c = shapeOf(ctx, 1)?.[0] ?? x?.[1] ?? fresh(ctx);
  const stats: OutputType = { dtype: dtypeOf(ctx, 3) ?? dtypeOf(ctx, 0), shape: [c] };
  return [like(ctx), ...ctx.node.outputs.slice(1).map(() => stats)];
}

function layerNormInfer(ctx: OpContext): OutputType[] {
  const x = shapeOf(ctx, 0);
  const dtype = dtypeFromCode(attrInt(ctx.node, 'stash_type', 1));
  let shape = x;
  if (x) {
    const axis = normAxis(ctx, attrInt(ctx.node, 'axis', -1), x.length);
    shape = x.map((d, k) => (k < axis ? d : 1));
  }
  return [like(ctx), { dtype, shape }, { dtype, shape }];
}

function dropoutInfer(ctx: OpContext): OutputType[] {
  return [like(ctx), { dtype: ctx.opset >= 10 ? 'bool' : dtypeOf(ctx, 0), shape: shapeOf(ctx, 0) }];
}

const same = (ctx: OpContext) => [like(ctx)];

const PER_UNIT: Record<string, [since: number, kind: OtherNonlinearKind, channels?: 'first']> = {
  InstanceNormalization: [1, 'instancenorm', 'first'], GroupNormalization: [18, 'groupnorm', 'first'], LRN: [1, 'lrn', 'first'],
  MeanVarianceNormalization: [9, 'mvn'], LpNormalization: [1, 'lpnorm'],
};
const rmsNorm = { path: PATHS.nonlinear('rmsnorm'), channels: 'last' } as const;
const MS = 'com.microsoft';

const specs: OpSpec[] = [
  { op: 'BatchNormalization', since: 1, infer: batchNormInfer, path: { rule: 'batchnorm' }, channels: 'first' },
  { op: 'LayerNormalization', since: 17, infer: layerNormInfer, path: PATHS.nonlinear('layernorm'), channels: 'last' },
  { op: 'Dropout', since: 1, infer: dropoutInfer, path: PATHS.linear },
  ...Object.entries(PER_UNIT).map(([op, [since, kind, channels]]): OpSpec => ({ op, since, infer: same, path: PATHS.nonlinear(kind), channels })),
  // RMS norm and onnxruntime's fused forms: output 0 shaped like input 0
  { op: 'RMSNormalization', since: 23, infer: same, ...rmsNorm },
  { op: 'SimplifiedLayerNormalization', since: 1, infer: same, ...rmsNorm },
  { op: 'SimplifiedLayerNormalization', domain: MS, since: 1, infer: same, ...rmsNorm },
  { op: 'SkipLayerNormalization', domain: MS, since: 1, infer: same, path: { rule: 'skip-norm', nonlinear: 'layernorm' }, channels: 'last' },
  { op: 'SkipSimplifiedLayerNormalization', domain: MS, since: 1, infer: same, path: { rule: 'skip-norm', nonlinear: 'rmsnorm' } },
  { op: 'Attention', domain: MS, since: 1, channels: 'last' },
];
registerOps(...specs);
