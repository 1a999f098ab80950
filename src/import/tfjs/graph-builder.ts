// A small IR graph builder for tests and benchmarks: typed attributes, initializers, single-opset models.
import { seededRandom, gaussian } from '../random.js';
import { Graph, type Attr, type Model, type Node, type Dim } from '../ir.js';
import { Tensor, type DType } from '../tensor.js';

export const attr = {
  i: (value: number): Attr => ({ type: 'int', value }),
  f: (value: number): Attr => ({ type: 'float', value }),
  s: (value: string): Attr => ({ type: 'string', value }),
  ints: (value: number[]): Attr => ({ type: 'ints', value }),
  floats: (value: number[]): Attr => ({ type: 'floats', value }),
  t: (value: Tensor): Attr => ({ type: 'tensor', value }),
};

export class GraphBuilder {
  readonly graph = new Graph();
  private count = 0;

  constructor(name = 'g') {
    this.graph.name = name;
  }

  input(name: string, shape: Dim[], dtype: DType = 'float32'): string {
    this.graph.inputs.push({ name, dtype, shape });
    return name;
  }

  /** An initializer (float32 from numbers unless a Tensor is given). */
  init(name: string, dims: number[], values: ArrayLike<number> | Tensor): string {
    const t = values instanceof Tensor ? values.withName(name) : Tensor.f32(name, dims, values);
    this.graph.initializers.set(name, t);
    return name;
  }

  initI64(name: string, values: number[], dims = [values.length]): string {
    this.graph.initializers.set(name, Tensor.i64(name, dims, values));
    return name;
  }

  /** Adds a node; returns its output names (`outputs` of them, named after the op). */
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs = 1, domain = ''): string[] {
    const k = this.count++;
    const outs = Array.from({ length: outputs }, (_, i) => `${opType.toLowerCase()}${k}${outputs > 1 ? `_${i}` : ''}`);
    const n: Node = { name: `${opType}_${k}`, opType, domain, inputs, outputs: outs, attrs };
    this.graph.nodes.push(n);
    return outs;
  }

  /** Adds a node with one output and returns it. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    return this.node(opType, inputs, attrs)[0];
  }

  output(name: string, dtype: DType = 'float32', shape?: Dim[]): void {
    this.graph.outputs.push({ name, dtype, shape });
  }

  model(opset = 17, extraOpsets: { domain: string; version: number }[] = []): Model {
    return {
      irVersion: 8,
      opsets: [{ domain: '', version: opset }, ...extraOpsets],
      producerName: 'linfold-test',
      producerVersion: '0',
      domain: '',
      modelVersion: 1,
      docString: '',
      graph: this.graph,
      passthrough: {},
    };
  }
}

/** Seeded normal / uniform numbers for tests and benchmarks. */
/** Seeded draws for building test graphs: uniforms, normals, and arrays of scaled normals. */
export function seededDraws(seed: number): { normal(): number; uniform(): number; normals(n: number, scale?: number): Float32Array } {
  const uniform = seededRandom(seed);
  const normal = () => gaussian(uniform);
  return { uniform, normal, normals: (n, scale = 1) => Float32Array.from({ length: n }, () => normal() * scale) };
}
