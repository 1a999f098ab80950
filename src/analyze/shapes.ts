// Constants and shapes as the analysis sees them.
//
// Shapes come from `graph.valueInfo` (filled by the import layer's shape inference). Where a value has no
// shape there, a small fallback here derives it for the ops analysis depends on (elementwise, conv/pool,
// Gemm/MatMul, the layout ops); it is not a second shape inference — it gives up (undefined) on anything
// else, and analysis then falls back to coarser rules.
import { convOutSize, normAxis } from '../import/shape-math.js';
import {
  type Graph, type Node, type Shape, type Dim, Tensor, attrInt, attrInts, attrFloat, attrFloats, attrTensor, attrString,
} from '../import/ir.js';
import { isFloat } from '../import/tensor.js';

/** Constant values: initializers, Constant nodes, and values folded by shape inference. */
export class Constants {
  private readonly fromNodes = new Map<string, Tensor>();

  constructor(private readonly graph: Graph, private readonly folded?: Map<string, Tensor>) {
    for (const n of graph.nodes) {
      if (n.opType !== 'Constant' || (n.domain !== '' && n.domain !== 'ai.onnx') || !n.outputs[0]) continue;
      const t = constantNodeValue(n);
      if (t) this.fromNodes.set(n.outputs[0], t);
    }
  }

  get(name: string): Tensor | undefined {
    if (!name) return undefined;
    return this.graph.initializers.get(name) ?? this.fromNodes.get(name) ?? this.folded?.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  numbers(name: string): number[] | undefined {
    const t = this.get(name);
    if (!t || t.dtype === 'string') return undefined;
    try {
      return t.numbers();
    } catch {
      return undefined;
    }
  }

  /** The value of a one-element numeric constant (any shape: [], [1], [1,1,1]). */
  scalar(name: string): number | undefined {
    const t = this.get(name);
    if (!t || t.size !== 1) return undefined;
    return this.numbers(name)?.[0];
  }
}

function constantNodeValue(n: Node): Tensor | undefined {
  const t = attrTensor(n, 'value');
  if (t) return t;
  const a = n.attrs;
  if (a.value_float) return Tensor.f32(n.outputs[0], [], [attrFloat(n, 'value_float', 0)]);
  if (a.value_floats) { const v = attrFloats(n, 'value_floats') ?? []; return Tensor.f32(n.outputs[0], [v.length], v); }
  if (a.value_int) return Tensor.i64(n.outputs[0], [], [attrInt(n, 'value_int', 0)]);
  if (a.value_ints) { const v = attrInts(n, 'value_ints') ?? []; return Tensor.i64(n.outputs[0], [v.length], v); }
  return undefined;
}

export const isNum = (d: Dim | undefined): d is number => typeof d === 'number' && d >= 0;

/** Numeric size of a dimension for counting (symbolic → 1: batch size 1). */
export const dimOr1 = (d: Dim | undefined): number => (isNum(d) ? d : 1);

export function broadcastShapes(shapes: Shape[]): Shape {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const x = s[i - (rank - s.length)];
      if (x === undefined || x === 1) continue;
      if (d === 1 || (typeof d === 'string' && typeof x === 'number')) d = x;
    }
    out.push(d);
  }
  return out;
}

/** Reads an int list from an attribute (older opsets) or a constant input (newer ones). */
export function intsArg(node: Node, attr: string, inputIndex: number, consts: Constants): number[] | undefined {
  return attrInts(node, attr) ?? (node.inputs[inputIndex] ? consts.numbers(node.inputs[inputIndex]) : undefined);
}

/** Spatial output size of a Conv/pool along one axis (ONNX formulas incl. auto_pad, dilation, ceil_mode). */
export function convOutDim(
  inDim: Dim, k: number, stride: number, dil: number, padB: number, padE: number, autoPad: string, ceil = false,
): Dim {
  if (!isNum(inDim)) return inDim;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(inDim / stride);
  return autoPad === 'VALID' ? convOutSize(inDim, k, stride, dil, 0, 0, ceil) : convOutSize(inDim, k, stride, dil, padB, padE, ceil);
}

export interface ConvGeometry { kernel: number[]; strides: number[]; dilations: number[]; pads: number[]; autoPad: string }

export function convGeometry(node: Node, spatial: number, weightDims?: number[]): ConvGeometry {
  const kernel = attrInts(node, 'kernel_shape') ?? weightDims?.slice(2) ?? new Array(spatial).fill(1);
  return {
    kernel,
    strides: attrInts(node, 'strides') ?? new Array(spatial).fill(1),
    dilations: attrInts(node, 'dilations') ?? new Array(spatial).fill(1),
    pads: attrInts(node, 'pads') ?? new Array(2 * spatial).fill(0),
    autoPad: attrString(node, 'auto_pad', 'NOTSET'),
  };
}

/** Resolves a Reshape target (0 = copy, −1 = infer) against the input shape; symbolic dims are kept. */
export function resolveReshape(input: Shape, target: number[], allowZero = false): Shape | undefined {
  const out: Shape = target.map((t, i) => (t === 0 && !allowZero ? input[i] : t));
  if (out.some((d) => d === undefined)) return undefined;
  const neg = out.findIndex((d) => d === -1);
  if (neg < 0) return out;
  let numIn = 1;
  const symIn: string[] = [];
  for (const d of input) if (isNum(d)) numIn *= d; else symIn.push(String(d));
  let numOut = 1;
  const symOut: string[] = [];
  out.forEach((d, i) => {
    if (i === neg) return;
    if (isNum(d)) numOut *= d; else symOut.push(String(d));
  });
  const left = symIn.filter((s) => { const k = symOut.indexOf(s); if (k >= 0) { symOut.splice(k, 1); return false; } return true; });
  if (symOut.length) return undefined;
  if (left.length === 0) out[neg] = numIn / numOut;
  else if (left.length === 1 && numIn === numOut) out[neg] = left[0];
  else if (left.length === 1 && numIn % numOut === 0) out[neg] = `${left[0]}*${numIn / numOut}`;
  else return undefined;
  return out;
}

const ELEMENTWISE_SAME = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Erf', 'Gelu', 'Elu', 'Selu', 'Celu',
  'Softplus', 'Softsign', 'Mish', 'ThresholdedRelu', 'Swish', 'Identity', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Reciprocal',
  'Cast', 'CastLike', 'Dropout', 'Softmax', 'LogSoftmax', 'Hardmax', 'LayerNormalization', 'BatchNormalization',
  'InstanceNormalization', 'GroupNormalization', 'LRN', 'MeanVarianceNormalization', 'LpNormalization', 'Floor', 'Ceil',
  'Round', 'Sign', 'Sin', 'Cos', 'Not', 'IsNaN', 'IsInf', 'RMSNormalization', 'SimplifiedLayerNormalization',
  'FastGelu', 'BiasGelu', 'QuickGelu', 'SkipLayerNormalization',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sum', 'Mean', 'Max', 'Min', 'Where', 'Equal', 'Less',
  'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Mod', 'BitShift']);
const REDUCE = new Set(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2',
  'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare', 'ArgMax', 'ArgMin']);

/** Reduction axes of a ReduceX or ArgX node (attribute or input), normalized; undefined = all axes. */
export function reduceAxes(node: Node, rank: number, consts: Constants): number[] | undefined {
  if (node.opType === 'ArgMax' || node.opType === 'ArgMin') return [normAxis(attrInt(node, 'axis', 0), rank)];
  const axes = intsArg(node, 'axes', 1, consts);
  if (!axes || !axes.length) return attrInt(node, 'noop_with_empty_axes', 0) ? [] : undefined;
  return axes.map((a) => normAxis(a, rank));
}

/** Shape of every value: valueInfo first, then the fallback rules, in topological order. */
export function completeShapes(graph: Graph, order: Node[], consts: Constants): Map<string, Shape | undefined> {
  const shapes = new Map<string, Shape | undefined>();
  for (const v of graph.inputs) shapes.set(v.name, v.shape);
  for (const [k, t] of graph.initializers) shapes.set(k, t.dims);
  for (const [k, v] of graph.valueInfo) shapes.set(k, v.shape);
  for (const v of graph.outputs) if (v.shape && !shapes.get(v.name)) shapes.set(v.name, v.shape);
  const get = (v: string) => (v ? shapes.get(v) ?? consts.get(v)?.dims : undefined);
  for (const n of order) {
    if (n.outputs.every((o) => !o || shapes.get(o))) continue;
    let out: (Shape | undefined)[] = [];
    try {
      out = fallbackShape(n, n.inputs.map(get), consts);
    } catch {
      out = [];
    }
    n.outputs.forEach((o, i) => {
      if (o && !shapes.get(o) && out[i]) shapes.set(o, out[i]);
    });
  }
  return shapes;
}

function fallbackShape(n: Node, ins: (Shape | undefined)[], consts: Constants): (Shape | undefined)[] {
  const x = ins[0];
  const op = n.opType;
  if (op === 'Constant') return [consts.get(n.outputs[0])?.dims];
  if (ELEMENTWISE_SAME.has(op)) return [x];
  if (BROADCAST.has(op)) return ins.every((s) => s) ? [broadcastShapes(ins as Shape[])] : [];
  if (!x) return [];
  const r = x.length;
  switch (op) {
    case 'Conv': case 'ConvTranspose': case 'MaxPool': case 'AveragePool': case 'LpPool': {
      const w = ins[1];
      const sp = r - 2;
      const g = convGeometry(n, sp, op.endsWith('Pool') ? undefined : (w?.filter(isNum) as number[]));
      const out: Shape = [x[0]];
      if (op === 'Conv') out.push(w?.[0] ?? '?');
      else if (op === 'ConvTranspose') out.push(isNum(w?.[1]) ? (w![1] as number) * attrInt(n, 'group', 1) : '?');
      else out.push(x[1]);
      const outShape = attrInts(n, 'output_shape');
      for (let i = 0; i < sp; i++) {
        if (op === 'ConvTranspose') {
          if (outShape) { out.push(outShape[i]); continue; }
          const d = x[2 + i];
          const op_ = attrInts(n, 'output_padding')?.[i] ?? 0;
          out.push(isNum(d) ? g.strides[i] * (d - 1) + op_ + (g.kernel[i] - 1) * g.dilations[i] + 1 - g.pads[i] - g.pads[i + sp] : d);
        } else {
          out.push(convOutDim(x[2 + i], g.kernel[i], g.strides[i], g.dilations[i], g.pads[i], g.pads[i + sp], g.autoPad, attrInt(n, 'ceil_mode', 0) === 1));
        }
      }
      return [out];
    }
    case 'GlobalAveragePool': case 'GlobalMaxPool': case 'GlobalLpPool':
      return [[...x.slice(0, 2), ...x.slice(2).map(() => 1)]];
    case 'Flatten': {
      const a = normAxis(attrInt(n, 'axis', 1), r);
      const prod = (s: Shape) => (s.every(isNum) ? (s as number[]).reduce((p, d) => p * d, 1) : s.length === 1 ? s[0] : '?');
      return [[prod(x.slice(0, a)), prod(x.slice(a))]];
    }
    case 'Reshape': {
      const t = consts.numbers(n.inputs[1]);
      return [t ? resolveReshape(x, t, attrInt(n, 'allowzero', 0) === 1) : undefined];
    }
    case 'Transpose': {
      const perm = attrInts(n, 'perm') ?? x.map((_, i) => r - 1 - i);
      return [perm.map((p) => x[p])];
    }
    case 'Squeeze': {
      const axes = intsArg(n, 'axes', 1, consts)?.map((a) => normAxis(a, r));
      return [axes ? x.filter((_, i) => !axes.includes(i)) : x.filter((d) => d !== 1)];
    }
    case 'Unsqueeze': {
      const axes = intsArg(n, 'axes', 1, consts);
      if (!axes) return [];
      const R = r + axes.length;
      const na = axes.map((a) => normAxis(a, R));
      const out: Shape = [];
      let k = 0;
      for (let i = 0; i < R; i++) out.push(na.includes(i) ? 1 : x[k++]);
      return [out];
    }
    case 'Gemm': {
      const b = ins[1];
      if (!b) return [];
      const m = attrInt(n, 'transA', 0) ? x[1] : x[0];
      const nn = attrInt(n, 'transB', 0) ? b[0] : b[1];
      return [[m, nn]];
    }
    case 'MatMul': {
      const b = ins[1];
      if (!b) return [];
      const a2 = r === 1 ? [1, x[0]] : x;
      const b2 = b.length === 1 ? [b[0], 1] : b;
      const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]);
      const out = [...batch, ...(r === 1 ? [] : [a2[a2.length - 2]]), ...(b.length === 1 ? [] : [b2[b2.length - 1]])];
      return [out];
    }
    case 'Concat': {
      if (!ins.every((s) => s)) return [];
      const a = normAxis(attrInt(n, 'axis', 0), r);
      const out = [...x];
      const parts = ins.map((s) => s![a]);
      out[a] = parts.every(isNum) ? (parts as number[]).reduce((p, d) => p + d, 0) : '?';
      return [out];
    }
    case 'Gather': {
      const idx = ins[1];
      if (!idx) return [];
      const a = normAxis(attrInt(n, 'axis', 0), r);
      return [[...x.slice(0, a), ...idx, ...x.slice(a + 1)]];
    }
    case 'Expand': {
      const t = consts.numbers(n.inputs[1]);
      return t ? [broadcastShapes([x, t])] : [];
    }
    default:
      if (REDUCE.has(op)) {
        const axes = reduceAxes(n, r, consts) ?? x.map((_, i) => i);
        const keep = attrInt(n, 'keepdims', 1) === 1;
        return [keep ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_, i) => !axes.includes(i))];
      }
      return [];
  }
}

/** True when a tensor of this dtype carries real-valued signals (float inputs are units, token ids are not). */
export const carriesUnits = (dtype: string | undefined): boolean => dtype === undefined || isFloat(dtype as never);
