// Constants and shapes as the analysis sees them.
//
// Shapes come from `graph.valueInfo` (filled by the import layer's shape inference). Where a value has no
// shape there (inference failed or was skipped, or an op before it has no rule), the op's own shape rule
// (src/import/ops/) derives it from the shapes known so far; a rule that cannot tell leaves it undefined and
// analysis falls back to coarser rules.
import { normAxis } from '../import/shape-math.js';
import {
  type Graph, type Node, type Shape, type Dim, type ValueInfo, Tensor, attrInt, attrInts, attrFloat, attrFloats, attrTensor,
} from '../import/ir.js';
import { isFloat, type DType } from '../import/tensor.js';
import { lookupOp, type OpContext, type OutputType } from '../import/ops/index.js';
import { LATEST_OPSET } from '../import/shape-inference.js';

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

/** Reads an int list from an attribute (older opsets) or a constant input (newer ones). */
export function intsArg(node: Node, attr: string, inputIndex: number, consts: Constants): number[] | undefined {
  return attrInts(node, attr) ?? (node.inputs[inputIndex] ? consts.numbers(node.inputs[inputIndex]) : undefined);
}

/** Reduction axes of a ReduceX or ArgX node (attribute or input), normalized; undefined = all axes. */
export function reduceAxes(node: Node, rank: number, consts: Constants): number[] | undefined {
  if (node.opType === 'ArgMax' || node.opType === 'ArgMin') return [normAxis(attrInt(node, 'axis', 0), rank)];
  const axes = intsArg(node, 'axes', 1, consts);
  if (!axes || !axes.length) return attrInt(node, 'noop_with_empty_axes', 0) ? [] : undefined;
  return axes.map((a) => normAxis(a, rank));
}

/**
 * Shape of every value: valueInfo first, then each op's shape rule in topological order (at `opset`, the
 * model's default-domain opset; symbolic dims a rule cannot name are '?').
 */
export function completeShapes(graph: Graph, order: Node[], consts: Constants, opset = LATEST_OPSET): Map<string, Shape | undefined> {
  const shapes = new Map<string, Shape | undefined>();
  const dtypes = new Map<string, DType | undefined>();
  const note = (v: { name: string; dtype?: DType; shape?: Shape }) => {
    shapes.set(v.name, v.shape);
    dtypes.set(v.name, v.dtype);
  };
  graph.inputs.forEach(note);
  for (const [k, t] of graph.initializers) note({ name: k, dtype: t.dtype, shape: t.dims });
  for (const v of graph.valueInfo.values()) note(v);
  for (const v of graph.outputs) if (v.shape && !shapes.get(v.name)) note(v);
  for (const n of order) {
    if (n.outputs.every((o) => !o || shapes.get(o))) continue;
    const out = ruleShapes(n, opset, (v) => ({ name: v, dtype: dtypes.get(v) ?? consts.get(v)?.dtype, shape: shapes.get(v) ?? consts.get(v)?.dims }), consts);
    n.outputs.forEach((o, i) => {
      if (o && !shapes.get(o) && out[i]?.shape) note({ name: o, dtype: out[i].dtype ?? dtypes.get(o), shape: out[i].shape });
    });
  }
  return shapes;
}

function ruleShapes(n: Node, opset: number, info: (v: string) => ValueInfo, consts: Constants): OutputType[] {
  const domain = n.domain === 'ai.onnx' ? '' : n.domain;
  const infer = lookupOp(n.opType, domain, domain === '' ? opset : 1)?.infer;
  if (!infer) return [];
  const ctx: OpContext = {
    node: n, opset, freshDim: () => '?',
    inputs: n.inputs.map((v) => (v ? info(v) : undefined)),
    values: n.inputs.map((v) => (v ? consts.get(v) : undefined)),
  };
  try {
    return infer(ctx);
  } catch {
    return [];
  }
}

/** True when a tensor of this dtype carries real-valued signals (float inputs are units, token ids are not). */
export const carriesUnits = (dtype: string | undefined): boolean => dtype === undefined || isFloat(dtype as never);
