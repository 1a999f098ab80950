// The graph IR every folder works on: ONNX semantics (NCHW), typed values, initializers as lazy typed arrays.
import { LinfoldError } from '../errors.js';
import { type DType, Tensor } from './tensor.js';
import type { Proto } from './onnx-schema.js';

export { Tensor };
export type { DType };

/** A dimension: a size, or the name of a symbolic dimension ('batch'). */
export type Dim = number | string;
export type Shape = Dim[];

export interface ValueInfo {
  name: string;
  dtype?: DType;
  /** undefined = rank unknown */
  shape?: Shape;
  /** Fields the IR does not model (doc_string, metadata, non-tensor types), written back unchanged. */
  passthrough?: Proto;
}

export type Attr =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: Tensor }
  | { type: 'tensors'; value: Tensor[] }
  /** Subgraphs, sparse tensors, type protos, references to function attributes: kept as decoded protobuf. */
  | { type: 'opaque'; proto: Proto };

/** Typed attribute constructors. */
export const attr = {
  i: (value: number): Attr => ({ type: 'int', value }),
  f: (value: number): Attr => ({ type: 'float', value }),
  s: (value: string): Attr => ({ type: 'string', value }),
  ints: (value: number[]): Attr => ({ type: 'ints', value }),
  floats: (value: number[]): Attr => ({ type: 'floats', value }),
  t: (value: Tensor): Attr => ({ type: 'tensor', value }),
};

export interface Node {
  name: string;
  opType: string;
  /** '' is the default ONNX domain. */
  domain: string;
  /** '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
  passthrough?: Proto;
}

export interface OpsetId { domain: string; version: number }

export class Graph {
  name = '';
  nodes: Node[] = [];
  inputs: ValueInfo[] = [];
  outputs: ValueInfo[] = [];
  initializers = new Map<string, Tensor>();
  /** Shapes of intermediate values (from the file or from shape inference). */
  valueInfo = new Map<string, ValueInfo>();
  passthrough?: Proto;

  /** Graph inputs that are not initializers: what a caller feeds. */
  get feeds(): ValueInfo[] {
    return this.inputs.filter((i) => !this.initializers.has(i.name));
  }

  /** Dtype and shape of any value: input, output, initializer or intermediate. */
  info(name: string): ValueInfo | undefined {
    const init = this.initializers.get(name);
    if (init) return { name, dtype: init.dtype, shape: init.dims };
    return this.valueInfo.get(name) ?? this.inputs.find((v) => v.name === name) ?? this.outputs.find((v) => v.name === name);
  }

  /** value name → the node producing it */
  producers(): Map<string, Node> {
    const m = new Map<string, Node>();
    for (const n of this.nodes) for (const o of n.outputs) if (o) m.set(o, n);
    return m;
  }

  /** value name → nodes reading it */
  consumers(): Map<string, Node[]> {
    const m = new Map<string, Node[]>();
    for (const n of this.nodes)
      for (const i of n.inputs) {
        if (!i) continue;
        const l = m.get(i);
        if (l) l.push(n);
        else m.set(i, [n]);
      }
    return m;
  }

  /** Sorts nodes so every value is produced before it is read (stable: keeps file order where possible). */
  sortTopologically(): void {
    this.nodes = topologicalOrder(this);
  }


  /** A name not yet used by any value or node, built from `base`. */
  uniqueName(base: string): string {
    const used = this.usedNames();
    if (!used.has(base)) return base;
    for (let k = 1; ; k++) if (!used.has(`${base}_${k}`)) return `${base}_${k}`;
  }

  private usedNames(): Set<string> {
    const s = new Set<string>([...this.initializers.keys(), ...this.inputs.map((i) => i.name)]);
    for (const n of this.nodes) {
      s.add(n.name);
      for (const o of n.outputs) s.add(o);
    }
    return s;
  }
}

function insertByOrder(list: Node[], n: Node, order: Map<Node, number>): void {
  const k = order.get(n)!;
  let i = list.length;
  while (i > 0 && order.get(list[i - 1])! > k) i--;
  list.splice(i, 0, n);
}

export interface Model {
  irVersion: number;
  opsets: OpsetId[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: number;
  docString: string;
  graph: Graph;
  /** metadata_props, training_info, functions: written back unchanged. */
  passthrough: Proto;
  /** The file it was read from, for messages. */
  path?: string;
}

/** The opset version a model imports for a domain ('' and 'ai.onnx' are the same domain). */
export function opsetOf(model: Pick<Model, 'opsets'>, domain = ''): number | undefined {
  const norm = (d: string) => (d === 'ai.onnx' ? '' : d);
  return model.opsets.find((o) => norm(o.domain) === norm(domain))?.version;
}

// ---- attribute accessors used by shape rules, analysis, executor and passes ----
export function attrInt(node: Node, name: string, dflt: number): number;
export function attrInt(node: Node, name: string): number | undefined;
export function attrInt(node: Node, name: string, dflt?: number): number | undefined {
  const a = node.attrs[name];
  return a && (a.type === 'int' || a.type === 'float') ? a.value : dflt;
}
/** attrInt and attrFloat read the same attributes (ONNX exporters write either type). */
export const attrFloat = attrInt;
export function attrInts(node: Node, name: string): number[] | undefined {
  const a = node.attrs[name];
  return a && (a.type === 'ints' || a.type === 'floats') ? a.value : undefined;
}
export const attrFloats = attrInts;
export function attrString(node: Node, name: string, dflt: string): string;
export function attrString(node: Node, name: string): string | undefined;
export function attrString(node: Node, name: string, dflt?: string): string | undefined {
  const a = node.attrs[name];
  return a && a.type === 'string' ? a.value : dflt;
}
export function attrTensor(node: Node, name: string): Tensor | undefined {
  const a = node.attrs[name];
  return a && a.type === 'tensor' ? a.value : undefined;
}

/** Human name of a node for messages: its name, else op type and first output. */
/** The nodes ordered so every value is produced before it is read (stable: keeps file order where possible); the graph is left as it is. */
export function topologicalOrder(g: Pick<Graph, 'inputs' | 'initializers' | 'nodes'>): Node[] {
  const available = new Set<string>([...g.inputs.map((i) => i.name), ...g.initializers.keys(), '']);
  const waiting = new Map<string, Node[]>();
  const missing = new Map<Node, number>();
  const ready: Node[] = [];
  for (const n of g.nodes) {
    const need = new Set(n.inputs.filter((i) => !available.has(i)));
    missing.set(n, need.size);
    if (need.size === 0) ready.push(n);
    for (const i of need) {
      const l = waiting.get(i);
      if (l) l.push(n);
      else waiting.set(i, [n]);
    }
  }
  const order = new Map(g.nodes.map((n, k) => [n, k]));
  const sorted: Node[] = [];
  // ready is kept as a min-heap on file order would be ideal; a sorted insert is fine at model sizes
  while (ready.length) {
    const n = ready.shift()!;
    sorted.push(n);
    for (const o of n.outputs) {
      if (!o || available.has(o)) continue;
      available.add(o);
      for (const c of waiting.get(o) ?? []) {
        const left = missing.get(c)! - 1;
        missing.set(c, left);
        if (left === 0) insertByOrder(ready, c, order);
      }
    }
  }
  if (sorted.length !== g.nodes.length) {
    const stuck = g.nodes.find((n) => !sorted.includes(n))!;
    const need = stuck.inputs.filter((i) => !available.has(i));
    throw new LinfoldError(`node '${stuck.name || stuck.opType}' reads '${need[0]}', which no node, input or initializer provides (or the graph has a cycle)`);
  }
  return sorted;
}

export function nodeLabel(n: Node): string {
  return n.name ? `${n.name} (${n.opType})` : `${n.opType} → ${n.outputs[0]}`;
}
