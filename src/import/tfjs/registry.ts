// The tfjs kernel registry: one entry per ONNX op and opset range, grouped in one file per op family
// (elementwise, activation, conv, normalization, matmul, shape, reduce). Adding an op = one entry here plus a
// parity test; the static shape rule lives in src/import/ops/.
//
// Conventions every kernel follows:
// - ONNX semantics, NCHW. A kernel may additionally run channels-last (see `nhwc`), which the executor uses to
//   keep conv chains in tfjs's native NHWC layout without a transpose pair around every conv.
// - int64 does not exist in tfjs: integer tensors are int32 (int64 values saturate to the int32 range at the
//   boundary, so INT64_MAX "to the end" sentinels keep their meaning); float64 runs as float32; uint8/int8/
//   int16/uint16/uint32 run as int32; bool stays bool.
// - Absent optional inputs ('' in the node) arrive as undefined: test `inputs[i]` before use.
import type * as tfc from '@tensorflow/tfjs-core';
import { tf } from './backends.js';
import { nodeLabel, type Node } from '../ir.js';
import type { DType } from '../tensor.js';
import { LinfoldError } from '../../errors.js';
import { OpRegistry } from '../op-registry.js';

export type TfTensor = tfc.Tensor;

export interface KernelContext {
  /** Opset version of the node's domain. */
  opset: number;
  /** Values of a small (shape-like) tensor on the host; cached per tensor. */
  values(t: TfTensor): number[];
  /** The ONNX dtype a value has in the model (int64 is held as int32), when the model says. */
  onnxDType(name: string): DType | undefined;
  /**
   * Overrides the model's own train/inference mode for BatchNormalization (batch statistics) and Dropout:
   * undefined = as the node says (BN training_mode / opset-9..13 extra outputs, Dropout training_mode input).
   */
  training: boolean | undefined;
  /** Called by kernels that produce side values meant to update state (BatchNormalization running stats). */
  onStatUpdate?: (inputName: string, value: TfTensor) => void;
  /**
   * A tensor computed from `src` by `make` (a conv filter in tfjs layout, a transposed Gemm weight), kept
   * across runs while `src` is a weight or constant whose value has not changed and no gradient is being
   * recorded; otherwise `make()`. Saves the work, and on wasm lets XNNPACK reuse the operator it packed for
   * that filter (a fresh filter tensor each run means packing the weights again).
   */
  derived?(src: TfTensor, tag: string, make: () => TfTensor): TfTensor;
}

/** ctx.derived when the context has it, else make(). The result belongs to the cache: never dispose it. */
export function derived(ctx: KernelContext | undefined, src: TfTensor, tag: string, make: () => TfTensor): TfTensor {
  return ctx?.derived ? ctx.derived(src, tag, make) : make();
}

export interface NhwcSupport {
  /** Inputs holding activations in NCHW (converted to NHWC before `run`); 'all' for every input. Default [0]. */
  data?: number[] | 'all';
  /**
   * 'required': the kernel always computes in NHWC (conv, pool), so an NCHW input is converted;
   * 'either': run channels-last only when an input already is (elementwise ops, BatchNormalization, Concat).
   */
  mode: 'required' | 'either';
  /** Whether this node can run channels-last for these input ranks (default: every data input has rank 4). */
  accepts?(node: Node, ranks: number[], ctx: KernelContext): boolean;
  /** Same contract as `run`, with data inputs in NHWC; output 0 is NHWC, other outputs are layout-free. */
  run(inputs: TfTensor[], node: Node, ctx: KernelContext): TfTensor[];
}

export interface Kernel {
  op: string;
  /** '' = ai.onnx */
  domain?: string;
  /** Opset range covered, inclusive. */
  since: number;
  until?: number;
  run(inputs: TfTensor[], node: Node, ctx: KernelContext): TfTensor[];
  /** Elementwise broadcast ops (every input an operand of numpy broadcasting): layout-agnostic. */
  elementwise?: boolean;
  nhwc?: NhwcSupport;
  /** Inputs that are weights when they are float initializers (made trainable tf.Variables). */
  weights?: number[];
  /** Inputs holding running statistics (BatchNormalization mean/var): non-trainable variables the op may update. */
  stats?: number[];
  /**
   * Whether the node's outputs may differ between runs with the same inputs, through randomness or run
   * options (Dropout, BatchNormalization in training mode): never evaluated at compile time.
   */
  random?: boolean;
}

const kernels = new OpRegistry<Kernel>('tfjs kernel');

export function registerKernels(...list: Kernel[]): void {
  kernels.register(...list);
}

export function lookupKernel(op: string, domain: string, opset: number): Kernel | undefined {
  return kernels.lookup(op, domain, opset);
}

/** Every registered op (default domain without prefix) with its opset ranges. */
export function registeredKernels(): { op: string; domain: string; since: number; until?: number }[] {
  return kernels.all().map((k) => ({ op: k.op, domain: k.domain ?? '', since: k.since, until: k.until }));
}

// ---- helpers shared by the kernel files ----
export { tf };

export function kernelError(node: Node, msg: string): LinfoldError {
  return new LinfoldError(`${nodeLabel(node)}: ${msg}`);
}

/** A tensor's shape as a plain number[] (tfjs types it per rank). */
export const dims = (t: TfTensor): number[] => t.shape as number[];

/** Whether a tensor holds floats (tfjs float32). */
export const isFloatT = (t: TfTensor): boolean => t.dtype === 'float32';

/** The tfjs dtype an ONNX dtype runs as. */
export function tfDType(d: DType | undefined): 'float32' | 'int32' | 'bool' {
  if (d === 'bool') return 'bool';
  if (d === undefined || d === 'float32' || d === 'float16' || d === 'float64' || d === 'bfloat16') return 'float32';
  return 'int32';
}
