// Editing the IR in place: who reads a value, rewiring readers, inserting and removing nodes, fresh
// initializers, dead code, snapshots and copies. Used by import (fixed-batch rewrites), the fold passes and
// linearize.
import { Graph, attr, type Attr, type Model, type Node } from './ir.js';
import { Tensor } from './tensor.js';

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

/** Removes dead nodes and unused initializers in place; returns whether anything went. */
export function deadCode(g: Graph): boolean {
  let changed = false;
  const outputs = new Set(g.outputs.map((o) => o.name));
  for (;;) {
    const read = new Set<string>(outputs);
    for (const n of g.nodes) for (const i of n.inputs) if (i) read.add(i);
    const before = g.nodes.length;
    g.nodes = g.nodes.filter((n) => n.outputs.some((o) => o && read.has(o)));
    if (g.nodes.length === before) break;
    changed = true;
  }
  const read = new Set<string>(outputs);
  for (const n of g.nodes) for (const i of n.inputs) if (i) read.add(i);
  for (const name of [...g.initializers.keys()]) {
    if (read.has(name)) continue;
    g.initializers.delete(name);
    // IR < 4 lists initializers among the graph inputs too
    g.inputs = g.inputs.filter((i) => i.name !== name);
    changed = true;
  }
  const exists = new Set<string>([...g.inputs.map((i) => i.name), ...outputs, ...g.initializers.keys()]);
  for (const n of g.nodes) for (const o of n.outputs) exists.add(o);
  for (const name of [...g.valueInfo.keys()]) if (!exists.has(name)) g.valueInfo.delete(name);
  return changed;
}

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
