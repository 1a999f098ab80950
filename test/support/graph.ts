// What a graph holds, for assertions: op counts and the op sequence. Imports nothing of linfold, so tests that
// reach the library through src/index.ts alone can use it.

type Nodes = { graph: { nodes: { opType: string }[] } };

/** How many nodes of type `op`. */
export const count = (m: Nodes, op: string): number => m.graph.nodes.filter((n) => n.opType === op).length;

/** The op types in node order. */
export const ops = (m: Nodes): string[] => m.graph.nodes.map((n) => n.opType);
