// Small IR helpers shared by the fold passes: constants, rewiring, snapshots, node construction.
import { matchBlendAt } from '../import/blend.js';
import { Graph, attr, type Node, type Attr, type Model, attrTensor, attrFloat, attrFloats, attrInt, attrInts } from '../import/ir.js';
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

export const isGraphOutput = (g: Graph, name: string): boolean => g.outputs.some((o) => o.name === name);
export const isGraphInput = (g: Graph, name: string): boolean => g.inputs.some((o) => o.name === name);

/** The nodes reading `name`, and whether a graph output exposes it. */
export function readers(g: Graph, name: string, consumers?: Map<string, Node[]>): Node[] {
  return (consumers ?? g.consumers()).get(name) ?? [];
}

/** True when exactly one node reads `name` (once, as any input) and no graph output exposes it. */
export function soleReader(g: Graph, name: string, reader: Node, consumers?: Map<string, Node[]>): boolean {
  const r = readers(g, name, consumers);
  return r.length === 1 && r[0] === reader && !isGraphOutput(g, name);
}

/**
 * Makes every reader of `from` read `to` instead, so the node producing `from` can go. When `from` is a
 * graph output, the value `to` is renamed to `from` instead (its producer and readers), which keeps the
 * model's interface; that is impossible when `to` is itself a graph input, output or initializer.
 */
export function rewire(g: Graph, from: string, to: string): boolean {
  if (from === to) return true;
  if (!isGraphOutput(g, from)) {
    for (const n of g.nodes) n.inputs = n.inputs.map((i) => (i === from ? to : i));
    return true;
  }
  if (isGraphInput(g, to) || isGraphOutput(g, to) || g.initializers.has(to)) return false;
  const p = g.producers().get(to);
  if (!p) return false;
  // readers of `from` (other than its producer, which is being removed by the caller) also read `to`
  for (const n of g.nodes) {
    n.outputs = n.outputs.map((o) => (o === to ? from : o));
    n.inputs = n.inputs.map((i) => (i === to ? from : i));
  }
  const vi = g.valueInfo.get(to);
  g.valueInfo.delete(to);
  if (vi && !g.valueInfo.has(from)) g.valueInfo.set(from, { ...vi, name: from });
  return true;
}

export function removeNodes(g: Graph, ...nodes: (Node | undefined)[]): void {
  const drop = new Set(nodes.filter(Boolean));
  g.nodes = g.nodes.filter((n) => !drop.has(n));
}

/** Inserts nodes just before `at` (or at the end). */
export function insertBefore(g: Graph, at: Node | undefined, ...nodes: Node[]): void {
  const k = at ? g.nodes.indexOf(at) : -1;
  if (k < 0) g.nodes.push(...nodes);
  else g.nodes.splice(k, 0, ...nodes);
}

export function makeNode(g: Graph, opType: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}, base?: string): Node {
  return { name: g.uniqueName(base ?? `linfold_${opType}`), opType, domain: '', inputs, outputs, attrs };
}

/** Adds a float32 initializer under a fresh name derived from `base`; returns the name. */
export function addInit(g: Graph, base: string, dims: number[], values: ArrayLike<number>): string {
  const name = g.uniqueName(base);
  g.initializers.set(name, Tensor.f32(name, dims, values));
  return name;
}

export const { ints, i: int, f: float } = attr;

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

// ------------------------------------------------------------------ snapshots

export interface GraphSnapshot {
  nodes: Node[];
  inputs: Graph['inputs'];
  outputs: Graph['outputs'];
  initializers: Map<string, Tensor>;
  valueInfo: Graph['valueInfo'];
}

const copyNode = (n: Node): Node => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } });

/** A copy of the mutable state of a graph (tensors are immutable and shared). */
export function snapshot(g: Graph): GraphSnapshot {
  return {
    nodes: g.nodes.map(copyNode),
    inputs: g.inputs.map((v) => ({ ...v })),
    outputs: g.outputs.map((v) => ({ ...v })),
    initializers: new Map(g.initializers),
    valueInfo: new Map(g.valueInfo),
  };
}

export function restore(g: Graph, s: GraphSnapshot): void {
  const c = snapshot(Object.assign(new Graph(), s));
  g.nodes = c.nodes;
  g.inputs = c.inputs;
  g.outputs = c.outputs;
  g.initializers = c.initializers;
  g.valueInfo = c.valueInfo;
}

export function cloneGraph(g: Graph): Graph {
  const c = new Graph();
  c.name = g.name;
  c.passthrough = g.passthrough;
  restore(c, snapshot(g));
  return c;
}

export function cloneModel(m: Model): Model {
  return { ...m, opsets: m.opsets.map((o) => ({ ...o })), graph: cloneGraph(m.graph) };
}

/** Gives every unnamed node a unique name, so reports and candidate keys can refer to it. */
export function nameNodes(g: Graph): void {
  const used = new Set(g.nodes.map((n) => n.name).filter(Boolean));
  const counters = new Map<string, number>();
  for (const n of g.nodes) {
    if (n.name) continue;
    let k = counters.get(n.opType) ?? 0;
    let name: string;
    do name = `${n.opType}_${k++}`; while (used.has(name));
    counters.set(n.opType, k);
    used.add(name);
    n.name = name;
  }
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
