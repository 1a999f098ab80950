// Hand-built graphs for the analysis tests: every node output gets the shape it is given in graph.valueInfo
// (no shape inference), weights are deterministic, scalars can be Constant nodes as torch exports them.
import { Graph, Tensor, type Attr, type Model, type Shape } from '../../src/import/ir.js';

export type AttrIn = Attr | number | number[] | string;

export class GB {
  g = new Graph();
  private k = 0;
  input(name: string, shape: Shape): string {
    this.g.inputs.push({ name, dtype: 'float32', shape });
    return name;
  }
  w(dims: number[], values?: number[]): string {
    const name = `w${this.k++}`;
    const size = dims.reduce((a, b) => a * b, 1);
    this.g.initializers.set(name, Tensor.f32(name, dims, values ?? Array.from({ length: size }, (_, i) => 0.01 * (i + 1))));
    return name;
  }
  i64(values: number[]): string {
    const name = `i${this.k++}`;
    this.g.initializers.set(name, Tensor.i64(name, [values.length], values));
    return name;
  }
  /** A scalar Constant node (how torch exports the 1.4142, 1, 0.5 of the GELU chain). */
  c(v: number): string {
    const out = `const${this.k++}`;
    this.g.nodes.push({ name: `/${out}`, opType: 'Constant', domain: '', inputs: [], outputs: [out], attrs: { value: { type: 'tensor', value: Tensor.f32(out, [], [v]) } } });
    return out;
  }
  op(opType: string, inputs: string[], shape?: Shape, attrs: Record<string, AttrIn> = {}, domain = ''): string {
    const out = `t${this.k++}`;
    const a: Record<string, Attr> = {};
    for (const [key, v] of Object.entries(attrs)) {
      if (typeof v === 'object' && !Array.isArray(v)) a[key] = v;
      else if (Array.isArray(v)) a[key] = { type: 'ints', value: v };
      else if (typeof v === 'string') a[key] = { type: 'string', value: v };
      else a[key] = Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v };
    }
    this.g.nodes.push({ name: `/${out}`, opType, domain, inputs, outputs: [out], attrs: a });
    if (shape) this.g.valueInfo.set(out, { name: out, dtype: 'float32', shape });
    return out;
  }
  /** 3×3 conv, padding 1, stride 1. */
  conv(x: string, cin: number, cout: number, hw: number, group = 1): string {
    return this.op('Conv', [x, this.w([cout, cin / group, 3, 3]), this.w([cout])], [1, cout, hw, hw], { group, pads: [1, 1, 1, 1], kernel_shape: [3, 3] });
  }
  output(name: string): void {
    this.g.outputs.push({ name, dtype: 'float32', shape: this.g.valueInfo.get(name)?.shape ?? this.g.inputs.find((i) => i.name === name)?.shape });
  }
  model(opset = 17): Model {
    return { irVersion: 8, opsets: [{ domain: '', version: opset }], producerName: 'test', producerVersion: '', domain: '', modelVersion: 0, docString: '', graph: this.g, passthrough: {} };
  }
}
