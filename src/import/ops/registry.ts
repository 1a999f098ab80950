// The op registry for static analysis: per ONNX op, the opsets it covers and its static facts — shape rule,
// pure-JS constant evaluator (for ops in shape-computing chains), how paths cross it (the audit's path rule)
// and its multiply-accumulates. The tfjs kernels live in src/import/tfjs/, so auditing never loads TensorFlow.js.
import type { Dim, Node, ValueInfo, Shape } from '../ir.js';
import type { DType, Tensor } from '../tensor.js';
import { OpRegistry } from '../op-registry.js';

export interface OpContext {
  node: Node;
  /** The opset version of the node's domain in the model. */
  opset: number;
  /** Dtype/shape of each input ('' inputs → undefined). */
  inputs: (ValueInfo | undefined)[];
  /** Constant value of each input when known (initializer, Constant, or folded). */
  values: (Tensor | undefined)[];
  /** A new symbolic dimension name, for dims a rule cannot resolve (unique within one inference run). */
  freshDim?: () => string;
  /**
   * Partially known values of small non-constant inputs, flattened row-major, entries possibly symbolic:
   * Shape of ['batch', 3] is ['batch', 3]. Lets Reshape/Expand/Range targets built from Shape resolve.
   */
  partial?: (Dim[] | undefined)[];
}

export interface OutputType {
  dtype?: DType;
  shape?: Shape;
  /** The output's value when the rule knows it without evaluating (Constant, Shape of a known shape). */
  value?: Tensor;
}

/** Nonlinear ops other than activations, by kind (the audit counts them per path, apart from APL). */
export type OtherNonlinearKind =
  | 'layernorm' | 'rmsnorm' | 'softmax' | 'logsoftmax' | 'hardmax' | 'instancenorm' | 'groupnorm' | 'lrn' | 'mvn' | 'lpnorm'
  | 'batchnorm_training' | 'maxpool' | 'lppool' | 'gating_mul' | 'activation_mul' | 'activation_div' | 'activation_matmul'
  | 'elementwise' | 'reduce' | 'reduce_max' | 'recurrent';

/**
 * How paths from the inputs cross an op; src/analyze/propagate.ts implements each rule.
 * - none: computes shapes, constants or random values (no paths);
 * - elementwise: merges the input-dependent operands unit by unit (Add, Cast, Pad, Where…);
 * - unary: per-unit op on input 0, other dynamic inputs merged in (pools average spatial unit axes);
 * - conv, gemm, matmul, einsum: contractions (units mix along the contracted axes);
 * - gather, transpose, reshape, concat, slice, split, depth-space, reduce: units follow the data movement;
 * - batchnorm (nonlinear in training mode), product (Mul/Div: nonlinear when both operands depend on the
 *   input), power (linear for exponent 1), skip-norm (sum of two inputs, then a norm), recurrent.
 */
export interface PathRule {
  rule: 'none' | 'elementwise' | 'unary' | 'conv' | 'gemm' | 'matmul' | 'einsum' | 'gather' | 'transpose' | 'reshape'
    | 'concat' | 'slice' | 'split' | 'depth-space' | 'reduce' | 'batchnorm' | 'product' | 'power' | 'skip-norm' | 'recurrent';
  /** The op adds one nonlinear op of this kind on every path through it. */
  nonlinear?: OtherNonlinearKind;
  /** Two or more input-dependent operands are a residual merge (Add, Sub, Sum, Mean). */
  merge?: boolean;
  /** Operand positions of the weight and bias of a conv/matmul (Conv 1 and 2, QLinearConv 3 and 8). */
  weight?: number;
  bias?: number;
}

/** The common path rules. */
export const PATHS = {
  none: { rule: 'none' },
  linear: { rule: 'elementwise' },
  merge: { rule: 'elementwise', merge: true },
  /** Per-unit nonlinear op (Exp, Softmax, LayerNormalization, MaxPool…). */
  nonlinear: (kind: OtherNonlinearKind): PathRule => ({ rule: 'unary', nonlinear: kind }),
} as const satisfies Record<string, PathRule | ((k: OtherNonlinearKind) => PathRule)>;

/** Dims of a value at batch 1 (symbolic dims as 1), undefined when unknown. */
export type DimsOf = (value: string | undefined) => number[] | undefined;

export interface OpSpec {
  op: string;
  /** '' = ai.onnx */
  domain?: string;
  /** Opset range covered, inclusive. */
  since: number;
  until?: number;
  /** Output types from input types (and constant inputs such as Reshape's shape); absent: shapes unknown. */
  infer?(ctx: OpContext): OutputType[];
  /** How paths cross the op (absent: the audit treats it as opaque). */
  path?: PathRule;
  /** Where the output keeps its channels when the audit did not follow its layout: axis 1 or the last axis. */
  channels?: 'first' | 'last';
  /** Multiply-accumulates of one node (batch 1); absent: 0 (no contraction); undefined when shapes are missing. */
  macs?(node: Node, dims: DimsOf): number | undefined;
  /** Evaluates the op when all inputs are constants (used to fold shape chains). */
  evaluate?(ctx: OpContext): Tensor[];
  /** Partial values of the outputs (see OpContext.partial) when some inputs are only partially known. */
  partial?(ctx: OpContext): (Dim[] | undefined)[];
}

const specs = new OpRegistry<OpSpec>('op spec');

export function registerOps(...list: OpSpec[]): void {
  specs.register(...list);
}

/** The spec covering `op` at `opset`, or undefined when linfold does not know it. */
export function lookupOp(op: string, domain: string, opset: number): OpSpec | undefined {
  return specs.lookup(op, domain, opset);
}

/** The newest spec of `op` whatever the opset: path rules, channel layout and MACs do not change across opsets. */
export function opFacts(op: string, domain: string): OpSpec | undefined {
  return specs.newest(op, domain);
}

/** Every registered spec (all ops, all opset ranges). */
export function allOpSpecs(): OpSpec[] {
  return specs.all();
}

export function knownOps(): string[] {
  return specs.names();
}
