// The op registry for static analysis: per ONNX op, the opsets it covers, its shape rule and (for ops that
// appear in shape-computing chains) a pure-JS constant evaluator. The tfjs kernels live in src/import/tfjs/,
// so auditing a model never loads TensorFlow.js.
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

export interface OpSpec {
  op: string;
  /** '' = ai.onnx */
  domain?: string;
  /** Opset range covered, inclusive. */
  since: number;
  until?: number;
  /** Output types from input types (and constant inputs such as Reshape's shape). */
  infer(ctx: OpContext): OutputType[];
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

export function knownOps(): string[] {
  return specs.names();
}
