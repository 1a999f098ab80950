// dead-code: nodes none of whose outputs is read (by a node or as a graph output) are dropped, repeatedly;
// then initializers no node reads, and value_info entries of values that no longer exist.
import type { Graph } from '../import/ir.js';
import type { Candidate, FoldPass, PassContext } from './pass.js';

/** Removes dead nodes and unused initializers in place; returns whether anything went. */
export function deadCode(g: Graph, _ctx: Partial<PassContext> = {}): boolean {
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

export const deadCodePass: FoldPass = {
  name: 'dead-code',
  kind: 'cleanup',
  candidates(g: Graph): Candidate[] {
    const outputs = new Set(g.outputs.map((o) => o.name));
    const read = new Set<string>(outputs);
    for (const n of g.nodes) for (const i of n.inputs) if (i) read.add(i);
    const deadNodes = g.nodes.filter((n) => !n.outputs.some((o) => o && read.has(o)));
    const deadInits = [...g.initializers.keys()].filter((k) => !read.has(k));
    if (!deadNodes.length && !deadInits.length) return [];
    return [{
      what: `${deadNodes.length} dead node(s)${deadInits.length ? ` and ${deadInits.length} unused initializer(s)` : ''}`,
      nodes: deadNodes.length ? deadNodes.map((n) => n.name) : deadInits.map((k) => `init:${k}`),
      apply: () => void deadCode(g),
    }];
  },
};
