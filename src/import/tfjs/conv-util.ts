// Shared pieces of the conv/pool kernels and the conv gradients: ONNX padding rules, zero-insertion
// (dilation) of a tensor, pad-or-crop, and strided sub-sampling built from ops that all have gradients
// (tfjs' StridedSlice has none).
import { tf, type TfTensor, kernelError } from './registry.js';
import { attrInts, attrString, type Node } from '../ir.js';

export interface Pads { begin: number[]; end: number[] }

/**
 * Begin/end padding per spatial axis from ONNX attributes (auto_pad NOTSET/VALID/SAME_UPPER/SAME_LOWER, pads).
 * `effKernel` = (k - 1) * dilation + 1 per axis.
 */
export function onnxPads(node: Node, inSize: number[], effKernel: number[], strides: number[]): Pads {
  const n = inSize.length;
  const auto = attrString(node, 'auto_pad', 'NOTSET');
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
    const begin: number[] = [], end: number[] = [];
    for (let i = 0; i < n; i++) {
      const out = Math.ceil(inSize[i] / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + effKernel[i] - inSize[i]);
      const small = Math.floor(total / 2);
      begin.push(auto === 'SAME_UPPER' ? small : total - small);
      end.push(auto === 'SAME_UPPER' ? total - small : small);
    }
    return { begin, end };
  }
  if (auto === 'VALID') return { begin: Array(n).fill(0), end: Array(n).fill(0) };
  if (auto !== 'NOTSET') throw kernelError(node, `auto_pad '${auto}' is not an ONNX value`);
  const p = attrInts(node, 'pads') ?? Array(2 * n).fill(0);
  if (p.length !== 2 * n) throw kernelError(node, `pads has ${p.length} values for ${n} spatial axes`);
  return { begin: p.slice(0, n), end: p.slice(n) };
}

export function spatialAttr(node: Node, name: string, n: number, dflt = 1): number[] {
  const v = attrInts(node, name);
  if (!v || v.length === 0) return Array(n).fill(dflt);
  if (v.length !== n) throw kernelError(node, `${name} has ${v.length} values for ${n} spatial axes`);
  return v;
}

/** Pads (positive) or crops (negative) each axis; pads are [before, after] per axis. */
export function padCrop(x: TfTensor, pads: [number, number][], value = 0): TfTensor {
  let y = x;
  if (pads.some(([a, b]) => a < 0 || b < 0)) {
    const begin = pads.map(([a]) => Math.max(0, -a));
    const size = pads.map(([a, b], i) => x.shape[i] - Math.max(0, -a) - Math.max(0, -b));
    y = tf.slice(y, begin, size);
  }
  if (pads.some(([a, b]) => a > 0 || b > 0)) {
    y = tf.pad(y, pads.map(([a, b]) => [Math.max(0, a), Math.max(0, b)] as [number, number]), value);
  }
  return y === x ? x : y;
}

/**
 * Inserts (s - 1) zeros between neighbours along each of the given axes (a strided conv's "dilated" dy or a
 * ConvTranspose input). Built from reshape + pad + slice, so it has a gradient.
 */
export function dilateAxes(x: TfTensor, axes: number[], strides: number[]): TfTensor {
  let y = x;
  axes.forEach((axis, k) => {
    const s = strides[k];
    if (s === 1) return;
    const shape = y.shape;
    const n = shape[axis];
    // [..., n, 1, ...] → pad to [..., n, s, ...] → [..., n*s, ...] → drop the trailing s-1 zeros
    const expanded = tf.reshape(y, [...shape.slice(0, axis + 1), 1, ...shape.slice(axis + 1)]);
    const padSpec = expanded.shape.map((_, i) => (i === axis + 1 ? [0, s - 1] : [0, 0]) as [number, number]);
    const flat = tf.reshape(tf.pad(expanded, padSpec), [...shape.slice(0, axis), n * s, ...shape.slice(axis + 1)]);
    const size = flat.shape.slice();
    size[axis] = (n - 1) * s + 1;
    y = tf.slice(flat, Array(size.length).fill(0), size);
  });
  return y;
}

/**
 * Elements start, start + step, ... (count of them) along `axis`: a contiguous slice, then every step-th
 * element through reshape + slice (differentiable, unlike stridedSlice).
 */
export function stridedTake(x: TfTensor, axis: number, start: number, step: number, count: number): TfTensor {
  const shape = x.shape;
  if (count <= 0) {
    const s = shape.slice();
    s[axis] = 0;
    return tf.zeros(s, x.dtype);
  }
  if (step === 1) {
    const begin = shape.map((_, i) => (i === axis ? start : 0));
    const size = shape.map((d, i) => (i === axis ? count : d));
    return tf.slice(x, begin, size);
  }
  const span = (count - 1) * step + 1;
  const begin = shape.map((_, i) => (i === axis ? start : 0));
  const size = shape.map((d, i) => (i === axis ? span : d));
  let y = tf.slice(x, begin, size);
  // pad to count*step, fold the step into its own axis, keep index 0
  const padSpec = y.shape.map((_, i) => (i === axis ? [0, count * step - span] : [0, 0]) as [number, number]);
  if (count * step > span) y = tf.pad(y, padSpec);
  const folded = tf.reshape(y, [...shape.slice(0, axis), count, step, ...shape.slice(axis + 1)]);
  const b2 = folded.shape.map(() => 0);
  const s2 = folded.shape.map((d, i) => (i === axis + 1 ? 1 : d));
  return tf.reshape(tf.slice(folded, b2, s2), shape.map((d, i) => (i === axis ? count : d)));
}

/** True while tfjs records operations for a gradient (inside tf.grad / variableGrads / minimize). */
export function taping(): boolean {
  return (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;
}
