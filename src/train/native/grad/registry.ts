// Gradient rules of the native backend, one file per op family (mirroring src/import/ops/): each rule takes the
// forward node, the gradients of its outputs and which inputs need one, and emits ONNX nodes computing the
// gradients of its inputs.
import type { Node } from '../../../import/ir.js';
import type { Emitter } from '../emit.js';

export interface GradContext {
  e: Emitter;
  node: Node;
  /** Gradient of each output (undefined: that output does not reach the loss). */
  dOut: (string | undefined)[];
  /** Whether input k needs a gradient. */
  need: boolean[];
}

export interface GradRule {
  op: string;
  /** Inputs that are trainable weights when they are float initializers (as the tfjs executor's registry). */
  weights?: number[];
  /** Elementwise operands are weights only when they hold more than one value (biases, not scalars). */
  elementwise?: boolean;
  /** Inputs through which no gradient flows (shapes, indices): never asked for. */
  constant?: number[];
  grad(c: GradContext): (string | undefined)[];
}

const rules = new Map<string, GradRule>();

export function registerGrads(...list: GradRule[]): void {
  for (const r of list) rules.set(r.op, r);
}

export function gradRule(op: string, domain = ''): GradRule | undefined {
  return domain === '' || domain === 'ai.onnx' ? rules.get(op) : undefined;
}
