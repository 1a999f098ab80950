// What a graph holds, for assertions: op counts and the op sequence (type-only imports: usable from tests that
// reach linfold through src/index.ts alone).
import type { Model } from '../../src/import/ir.js';

type Nodes = Pick<Model, 'graph'> | { graph: { nodes: { opType: string }[] } };

/** How many nodes of type `op`. */
export const count = (m: Nodes, op: string): number => m.graph.nodes.filter((n) => n.opType === op).length;

/** The op types in node order. */
export const ops = (m: Nodes): string[] => m.graph.nodes.map((n) => n.opType);
