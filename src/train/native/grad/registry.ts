// Gradient rules of the native backend, one file per op family (mirroring src/import/ops/): each rule takes the
// forward node, the gradients of its outputs and which inputs need one, and emits ONNX nodes computing the
// gradients of its inputs.
import type { Node } from '../../../import/ir.js';
import type { Emitter } from '../emit.js';
import { OpRegistry, type OpsetRanged } from '../../../import/op-registry.js';

export interface GradContext {
  e: Emitter;
  node: Node;
  /** Gradient of each output (undefined: that output does not reach the loss). */
  dOut: (string | undefined)[];
  /** Whether input k needs a gradient. */
  need: boolean[];
}

export interface GradRule extends OpsetRanged {
  op: string;
  /** Inputs that are trainable weights when they are float initializers (as the tfjs executor's registry). */
  weights?: number[];
  /** Elementwise operands are weights only when they hold more than one value (biases, not scalars). */
  elementwise?: boolean;
  /** Inputs through which no gradient flows (shapes, indices): never asked for. */
  constant?: number[];
  grad(c: GradContext): (string | undefined)[];
  /**
   * How the training graph computes the op itself when onnxruntime runs an equal composite faster than its own
   * kernel: emits nodes from the node's inputs and returns the value standing for each output (the gradient rule
   * still reads the node's inputs and outputs by name).
   */
  forward?(e: Emitter, node: Node): string[];
}

const rules = new OpRegistry<GradRule>('gradient rule');

export function registerGrads(...list: GradRule[]): void {
  rules.register(...list);
}

/** The rule of `op` (rules are written for every opset the forward kernels cover). */
export function gradRule(op: string, domain = ''): GradRule | undefined {
  return rules.lookup(op, domain, Number.MAX_SAFE_INTEGER);
}
