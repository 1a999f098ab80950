// Normalization and regularization: BatchNormalization (with training-mode outputs), LayerNormalization,
// InstanceNormalization, GroupNormalization, LRN, MeanVarianceNormalization, LpNormalization, Dropout.
import { attrInt } from '../ir.js';
import { dtypeFromCode } from '../tensor.js';
import { dtypeOf, fresh, like, normAxis, shapeOf } from './common.js';
import { registerOps, type OpContext, type OpSpec, type OutputType } from './registry.js';

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

const specs: OpSpec[] = [
  { op: 'BatchNormalization', since: 1, infer: batchNormInfer },
  { op: 'LayerNormalization', since: 17, infer: layerNormInfer },
  { op: 'Dropout', since: 1, infer: dropoutInfer },
  ...Object.entries({ InstanceNormalization: 1, GroupNormalization: 18, LRN: 1, MeanVarianceNormalization: 9, LpNormalization: 1 })
    .map(([op, since]): OpSpec => ({ op, since, infer: same })),
];
registerOps(...specs);
