// Convolutions and pooling (NCHW, any number of spatial dims): Conv, ConvTranspose, MaxPool, AveragePool,
// LpPool, and the global pools.
import { convOutSize, product } from '../shape-math.js';
import { attrInt, attrInts, attrString, type Dim, type Node, type Shape } from '../ir.js';
import { bad, dtypeOf, fresh, isNum, shapeOf } from './common.js';
import { PATHS, registerOps, type DimsOf, type OpContext, type OpSpec, type OutputType } from './registry.js';

interface Window { kernel: number[]; strides: number[]; dilations: number[]; pads: number[]; autoPad: string; ceil: boolean }

function windowAttrs(ctx: OpContext, n: number, kernel: number[]): Window {
  const get = (name: string, dflt: number) => attrInts(ctx.node, name) ?? new Array<number>(name === 'pads' ? 2 * n : n).fill(dflt);
  const w: Window = {
    kernel, strides: get('strides', 1), dilations: get('dilations', 1), pads: get('pads', 0),
    autoPad: attrString(ctx.node, 'auto_pad', 'NOTSET'), ceil: attrInt(ctx.node, 'ceil_mode', 0) === 1,
  };
  if (w.kernel.length !== n || w.strides.length !== n || w.dilations.length !== n || w.pads.length !== 2 * n)
    bad(ctx, `kernel_shape/strides/dilations/pads do not match the ${n} spatial dims of the input`);
  return w;
}

/** Output spatial dims of a forward window op (conv or pool). */
function windowOut(ctx: OpContext, spatial: Shape, w: Window): Dim[] {
  return spatial.map((d, i) => {
    const s = w.strides[i], ek = (w.kernel[i] - 1) * w.dilations[i] + 1;
    const pad = w.pads[i] + w.pads[i + spatial.length];
    if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') return s === 1 ? d : isNum(d) ? Math.ceil(d / s) : fresh(ctx);
    if (w.autoPad === 'VALID') return isNum(d) ? convOutSize(d, w.kernel[i], s, w.dilations[i], 0, 0) : ek === 1 && s === 1 ? d : fresh(ctx);
    if (!isNum(d)) return s === 1 && pad === ek - 1 ? d : fresh(ctx);
    if (d + pad < ek) bad(ctx, `input size ${d} (padded ${d + pad}) is smaller than the kernel window ${ek}`);
    let out = convOutSize(d, w.kernel[i], s, w.dilations[i], w.pads[i], w.pads[i + spatial.length], w.ceil);
    if (!w.ceil) return out;
    // the last window must start inside the input or its leading padding (PyTorch and onnxruntime)
    if ((out - 1) * s >= d + w.pads[i]) out--;
    return out;
  });
}

/** [N, C, ...spatial] of input 0, or undefined; the rank may come from the weight when the input's is unknown. */
function nchw(ctx: OpContext, rank?: number): Shape | undefined {
  const x = shapeOf(ctx, 0);
  if (x) {
    if (x.length < 3) bad(ctx, `expects an input of rank ≥ 3 (N, C, spatial…), got [${x.join(',')}]`);
    return x;
  }
  return rank === undefined ? undefined : Array.from({ length: rank }, () => fresh(ctx));
}

/** Input, weight, spatial rank and groups of a Conv/ConvTranspose; x undefined when its rank is unknown. */
function convOperands(ctx: OpContext) {
  const dtype = dtypeOf(ctx, 0) ?? dtypeOf(ctx, 1);
  const w = shapeOf(ctx, 1);
  const x = nchw(ctx, w?.length);
  if (x && w && w.length !== x.length) bad(ctx, `weight rank ${w.length} does not match input rank ${x.length}`);
  return { dtype, w, x, n: x ? x.length - 2 : 0, group: attrInt(ctx.node, 'group', 1) };
}

function convInfer(ctx: OpContext): OutputType[] {
  const { dtype, w, x, n, group } = convOperands(ctx);
  if (!x) return [{ dtype }];
  if (w && isNum(x[1]) && isNum(w[1]) && x[1] !== w[1] * group)
    bad(ctx, `input has ${x[1]} channels but the weight expects ${w[1]}${group > 1 ? ` × ${group} groups` : ''}`);
  const b = shapeOf(ctx, 2);
  if (w && b && isNum(b[0]) && isNum(w[0]) && b[0] !== w[0]) bad(ctx, `bias has ${b[0]} values for ${w[0]} output channels`);
  const kernel = attrInts(ctx.node, 'kernel_shape') ?? (w?.slice(2).every(isNum) ? (w.slice(2) as number[]) : undefined);
  const spatial = kernel ? windowOut(ctx, x.slice(2), windowAttrs(ctx, n, kernel)) : x.slice(2).map(() => fresh(ctx));
  return [{ dtype, shape: [x[0], w ? w[0] : fresh(ctx), ...spatial] }];
}

function convTransposeInfer(ctx: OpContext): OutputType[] {
  const { dtype, w, x, n, group } = convOperands(ctx);
  if (!x) return [{ dtype }];
  if (w && isNum(x[1]) && isNum(w[0]) && x[1] !== w[0]) bad(ctx, `input has ${x[1]} channels but the weight expects ${w[0]}`);
  const channels: Dim = w && isNum(w[1]) ? w[1] * group : fresh(ctx);
  const kernel = attrInts(ctx.node, 'kernel_shape') ?? (w?.slice(2).every(isNum) ? (w.slice(2) as number[]) : undefined);
  const outputShape = attrInts(ctx.node, 'output_shape');
  let spatial: Dim[];
  if (outputShape) spatial = outputShape.slice(outputShape.length - n);
  else if (!kernel) spatial = x.slice(2).map(() => fresh(ctx));
  else {
    const win = windowAttrs(ctx, n, kernel);
    const outPad = attrInts(ctx.node, 'output_padding') ?? new Array<number>(n).fill(0);
    spatial = x.slice(2).map((d, i) => {
      if (!isNum(d)) return fresh(ctx);
      const s = win.strides[i];
      if (win.autoPad === 'SAME_UPPER' || win.autoPad === 'SAME_LOWER') return d * s;
      const pad = win.autoPad === 'VALID' ? 0 : win.pads[i] + win.pads[i + n];
      return s * (d - 1) + outPad[i] + (kernel[i] - 1) * win.dilations[i] + 1 - pad;
    });
  }
  return [{ dtype, shape: [x[0], channels, ...spatial] }];
}

function poolInfer(ctx: OpContext): OutputType[] {
  const dtype = dtypeOf(ctx, 0);
  const x = nchw(ctx);
  if (!x) return [{ dtype }, { dtype: 'int64' }];
  const kernel = attrInts(ctx.node, 'kernel_shape');
  if (!kernel) bad(ctx, 'has no kernel_shape');
  const shape = [x[0], x[1], ...windowOut(ctx, x.slice(2), windowAttrs(ctx, x.length - 2, kernel))];
  return [{ dtype, shape }, { dtype: 'int64', shape }];
}

function globalPoolInfer(ctx: OpContext): OutputType[] {
  const x = nchw(ctx);
  return [{ dtype: dtypeOf(ctx, 0), shape: x && [x[0], x[1], ...x.slice(2).map(() => 1)] }];
}

/** MACs of a convolution: each output element costs (C/g)·prod(kernel); the weight is [M, C/g, k…]. */
const convMacs = (weight: number) => (n: Node, dims: DimsOf): number | undefined => {
  const w = dims(n.inputs[weight]);
  const y = dims(n.outputs[0]);
  return w && y ? product(y) * product(w.slice(1)) : undefined;
};

/** MACs of a transposed convolution: each input element is scattered to (M/g)·prod(kernel) outputs; w = [C, M/g, k…]. */
function convTransposeMacs(n: Node, dims: DimsOf): number | undefined {
  const x = dims(n.inputs[0]);
  const w = dims(n.inputs[1]);
  return x && w ? product(x) * product(w.slice(1)) : undefined;
}

const conv = { path: { rule: 'conv', weight: 1, bias: 2 }, channels: 'first', macs: convMacs(1) } as const;
const POOL_PATH = {
  MaxPool: PATHS.nonlinear('maxpool'), GlobalMaxPool: PATHS.nonlinear('maxpool'),
  LpPool: PATHS.nonlinear('lppool'), GlobalLpPool: PATHS.nonlinear('lppool'),
  AveragePool: PATHS.linear, GlobalAveragePool: PATHS.linear,
};

const specs: OpSpec[] = [
  { op: 'Conv', since: 1, infer: convInfer, ...conv },
  { op: 'ConvTranspose', since: 1, infer: convTransposeInfer, ...conv, macs: convTransposeMacs },
  ...(['MaxPool', 'AveragePool', 'LpPool'] as const).map((op): OpSpec => ({ op, since: 1, infer: poolInfer, path: POOL_PATH[op], channels: 'first' })),
  ...(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool'] as const).map((op): OpSpec => ({
    op, since: 1, infer: globalPoolInfer, path: POOL_PATH[op], channels: 'first',
  })),
  // no shape rule: the audit's facts only
  { op: 'ConvInteger', since: 10, ...conv },
  { op: 'QLinearConv', since: 10, ...conv, path: { rule: 'conv', weight: 3, bias: 8 }, macs: convMacs(3) },
  { op: 'FusedConv', domain: 'com.microsoft', since: 1, ...conv },
  { op: 'MaxRoiPool', since: 1, path: PATHS.nonlinear('maxpool') },
  ...['MaxUnpool', 'Col2Im', 'RoiAlign', 'GridSample', 'AffineGrid', 'CenterCropPad', 'ImageScaler'].map((op): OpSpec => ({ op, since: 1, path: PATHS.linear })),
];
registerOps(...specs);
