// Models written node by node (for shape rules and constant folding, where GraphBuilder's own shape
// bookkeeping would get in the way), and the typed attribute constructors every test uses.
import { Graph, type Model, type Node, type Shape, type ValueInfo } from '../../src/import/ir.js';
import type { Tensor } from '../../src/import/tensor.js';
import { attr } from '../../src/import/graph-builder.js';

export { attr };

/** A model of `nodes` (default domain) at `opset`; outputs default to the last node's first output. */
export function makeModel(opset: number, inputs: ValueInfo[], nodes: Node[], inits: Tensor[] = [], outputs?: ValueInfo[]): Model {
  const graph = new Graph();
  graph.name = 'test';
  graph.inputs = inputs;
  graph.nodes = nodes;
  for (const t of inits) graph.initializers.set(t.name, t);
  graph.outputs = outputs ?? [{ name: nodes[nodes.length - 1].outputs[0] }];
  return {
    irVersion: 8, opsets: [{ domain: '', version: opset }], producerName: 'linfold-test', producerVersion: '', domain: '',
    modelVersion: 0, docString: '', graph, passthrough: {},
  };
}

/** A default-domain node. */
export function node(opType: string, inputs: string[], outputs: string[], attrs: Node['attrs'] = {}, name = ''): Node {
  return { name, opType, domain: '', inputs, outputs, attrs };
}

/** A float32 graph input. */
export const f32in = (name: string, shape: Shape): ValueInfo => ({ name, dtype: 'float32', shape });
