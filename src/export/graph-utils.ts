// Helpers shared by the fold passes: constant values, the blend's constant slopes, small dense linear algebra.
// Editing the IR itself (rewiring, node construction, snapshots, copies) is src/import/ir-edit.ts.
import { matchBlendAt } from '../import/blend.js';
import { type Graph, type Node, attrTensor, attrFloat, attrFloats, attrInt, attrInts } from '../import/ir.js';
import { isGraphOutput } from '../import/ir-edit.js';
import { Tensor } from '../import/tensor.js';

/** The constant value of a value name: an initializer, or the output of a Constant node. */
export function constValue(g: Graph, name: string, producers?: Map<string, Node>): Tensor | undefined {
  if (!name) return undefined;
  const init = g.initializers.get(name);
  if (init) {
    // an initializer that is also a graph input can be overridden by the caller: not a constant
    if (g.inputs.some((i) => i.name === name)) return undefined;
    return init;
  }
  const p = (producers ?? g.producers()).get(name);
  if (!p || p.opType !== 'Constant' || (p.domain && p.domain !== 'ai.onnx')) return undefined;
  const t = attrTensor(p, 'value');
  if (t) return t.withName(name);
  const f = attrFloat(p, 'value_float');
  if (f !== undefined && p.attrs.value_float) return Tensor.f32(name, [], [f]);
  const fs = attrFloats(p, 'value_floats');
  if (fs && p.attrs.value_floats) return Tensor.f32(name, [fs.length], fs);
  const i = attrInt(p, 'value_int');
  if (i !== undefined && p.attrs.value_int) return Tensor.i64(name, [], [i]);
  const is = attrInts(p, 'value_ints');
  if (is && p.attrs.value_ints) return Tensor.i64(name, [is.length], is);
  return undefined;
}

const floatCache = new WeakMap<Tensor, Float64Array>();

/**
 * Values of a float32 constant as Float64Array (cached per tensor: callers must not mutate the array), or
 * undefined. Other float widths are refused: the passes write float32 weights.
 */
export function constFloats(g: Graph, name: string, producers?: Map<string, Node>): { data: Float64Array; dims: number[] } | undefined {
  const t = constValue(g, name, producers);
  if (!t || t.dtype !== 'float32') return undefined;
  let data = floatCache.get(t);
  if (!data) {
    data = Float64Array.from(t.data as Float32Array);
    floatCache.set(t, data);
  }
  return { data, dims: [...t.dims] };
}

// ------------------------------------------------------------------ patterns

/** A blend (src/import/blend.ts, either spelling) whose A is a constant float. */
export interface Blend {
  sub: Node;
  mul: Node;
  add: Node;
  x: string;
  /** the wrapped activation's output */
  s: string;
  A: { data: Float64Array; dims: number[] };
  /** the blend's nodes that go when it is bypassed: Sub and Mul when only the blend reads them, and the Add */
  removable: Node[];
}

/** The blends whose Sub is `sub`. */
export function blendsFrom(g: Graph, sub: Node, producers?: Map<string, Node>, consumers?: Map<string, Node[]>): Blend[] {
  const cons = consumers ?? g.consumers();
  const out: Blend[] = [];
  for (const b of matchBlendAt(sub, cons)) {
    const A = constFloats(g, b.slope, producers);
    if (!A) continue;
    const dead = [sub, b.mul].filter((k) => (cons.get(k.outputs[0]) ?? []).length === 1 && !isGraphOutput(g, k.outputs[0]));
    out.push({ sub, mul: b.mul, add: b.fin, x: b.x, s: b.s, A, removable: dead.length === 2 ? [sub, b.mul, b.fin] : [b.fin] });
  }
  return out;
}

// ------------------------------------------------------------------ numbers


export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return Math.abs(a);
}

/** All |v − 1| ≤ eps. */
export const allOne = (v: ArrayLike<number>, eps: number): boolean => {
  for (let i = 0; i < v.length; i++) if (!(Math.abs(v[i] - 1) <= eps)) return false;
  return true;
};

/** Row-major [m,k]·[k,n] in float64. */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const v = a[i * k + p];
      if (v === 0) continue;
      const bo = p * n, oo = i * n;
      for (let j = 0; j < n; j++) out[oo + j] += v * b[bo + j];
    }
  return out;
}

export function transpose(a: Float64Array, m: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = a[i * n + j];
  return out;
}

/** Numeric dims of a static shape (undefined when a dim is symbolic or the rank unknown). */
export function numericDims(shape: readonly (number | string)[] | undefined): number[] | undefined {
  if (!shape || shape.some((d) => typeof d !== 'number' || !(d >= 0))) return undefined;
  return shape as number[];
}
