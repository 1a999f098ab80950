// The core network: the activation layers that still have a nonlinear channel, and how they connect
// (through any number of linear ops and fully linear activation layers, which fold away).
import type { Graph, Node } from '../import/ir.js';
import type { ActivationLayer } from './census.js';

export interface CoreNode {
  /** 'input:<name>' / 'output:<name>' for the graph's ends, the layer name for layers. */
  id: string;
  type: 'input' | 'layer' | 'output';
  kind?: string;
  channels?: number;
  /** Effective width. */
  nonlinearChannels?: number;
}

export interface CoreNetwork {
  /** Inputs, core layers in topological order, outputs. */
  nodes: CoreNode[];
  /** `from` feeds `to` through linear ops only. */
  edges: { from: string; to: string }[];
}

export function coreNetwork(graph: Graph, order: Node[], layers: ActivationLayer[]): CoreNetwork {
  const byOutput = new Map(layers.map((l) => [l.output, l]));
  const inside = new Set(layers.flatMap((l) => l.nodes));
  const front = new Map<string, Set<string>>();
  const nodes: CoreNode[] = [];
  const edges: { from: string; to: string }[] = [];
  const seen = new Set<string>();
  const edge = (from: string, to: string) => {
    const k = `${from}\u0000${to}`;
    if (seen.has(k)) return;
    seen.add(k);
    edges.push({ from, to });
  };
  for (const v of graph.feeds) {
    const id = `input:${v.name}`;
    nodes.push({ id, type: 'input' });
    front.set(v.name, new Set([id]));
  }
  const union = (vals: string[]) => {
    const s = new Set<string>();
    for (const v of vals) for (const x of front.get(v) ?? []) s.add(x);
    return s;
  };
  for (const n of order) {
    const label = n.name || n.outputs[0];
    for (const o of n.outputs) {
      const l = byOutput.get(o);
      if (l) {
        const src = front.get(l.input) ?? new Set<string>();
        if (l.nonlinearChannels > 0) {
          nodes.push({ id: l.name, type: 'layer', kind: l.kind, channels: l.channels, nonlinearChannels: l.nonlinearChannels });
          for (const f of src) edge(f, l.name);
          front.set(o, new Set([l.name]));
        } else front.set(o, src);
      }
    }
    if (inside.has(label)) continue;
    const s = union(n.inputs);
    if (!s.size) continue;
    for (const o of n.outputs) if (o && !front.has(o)) front.set(o, s);
  }
  for (const o of graph.outputs) {
    const id = `output:${o.name}`;
    nodes.push({ id, type: 'output' });
    for (const f of front.get(o.name) ?? []) edge(f, id);
  }
  return { nodes, edges };
}
