// dead-code: nodes none of whose outputs is read (by a node or as a graph output) are dropped, repeatedly;
// then initializers no node reads, and value_info entries of values that no longer exist.
import type { Graph } from '../import/ir.js';
import { deadCode } from '../import/ir-edit.js';
import type { Candidate, FoldPass } from './pass.js';

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
