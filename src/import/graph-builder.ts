// Builds IR graphs in code, for tests and benchmarks: inputs and outputs, float32 initializers (given,
// deterministic or seeded normals), int64 initializers, Constant nodes, nodes with typed or plain attributes,
// optional declared value shapes (graph.valueInfo, no shape inference), a few layer helpers, single-opset models.
import { product } from './shape-math.js';
import { seededRandom, gaussian } from './random.js';
import { Graph, attr, type Attr, type Model, type Dim } from './ir.js';
import { Tensor, type DType } from './tensor.js';

export { attr } from './ir.js';

/**
 * An attribute as given to the builder: a typed Attr, or a plain value — an integer number is an int, any other
 * number a float (write `attr.f(1)` for a whole-number float), an array ints, a string a string.
 */
export type AttrValue = Attr | number | number[] | string;

export function toAttrs(attrs: Record<string, AttrValue>): Record<string, Attr> {
  const out: Record<string, Attr> = {};
  for (const [key, v] of Object.entries(attrs)) {
    if (Array.isArray(v)) out[key] = attr.ints(v);
    else if (typeof v === 'string') out[key] = attr.s(v);
    else if (typeof v === 'number') out[key] = Number.isInteger(v) ? attr.i(v) : attr.f(v);
    else out[key] = v;
  }
  return out;
}

/** A seeded stream of uniforms in [0, 1), standard normals, and arrays of scaled normals. */
export interface Draws {
  uniform(): number;
  normal(): number;
  normals(n: number, scale?: number): Float32Array;
}

export function seededDraws(seed: number): Draws {
  const uniform = seededRandom(seed);
  const normal = () => gaussian(uniform);
  return { uniform, normal, normals: (n, scale = 1) => Float32Array.from({ length: n }, () => normal() * scale) };
}

export interface GraphBuilderOptions {
  /** The graph's name (default ''). */
  name?: string;
  /** Seed of the stream `normal()` and the layer helpers draw weights from (default 7)… */
  seed?: number;
  /** …or a stream shared with the caller (feeds drawn from the same stream interleave with the weights). */
  draws?: Draws;
  /** Default opset of `model()` (17). */
  opset?: number;
}

export interface ConvOptions {
  stride?: number;
  /** One pad for all sides, or ONNX pads [begin…, end…]. */
  pad?: number | number[];
  group?: number;
  dilation?: number;
  /** Default true. */
  bias?: boolean;
}

export interface GemmOptions {
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** Default true. */
  bias?: boolean;
}


/**
 * Value names given by the caller are kept; others are generated from one counter: `w<k>` float initializers,
 * `i<k>` int64 initializers, `<op><k>` node outputs (`<op><k>_<j>` when there are several), nodes `/<op><k>`
 * (a one-output node is named `/` + its output, as in torch exports).
 * Every method that creates a value returns its name.
 */
export class GraphBuilder {
  readonly graph = new Graph();
  private readonly draws: Draws;
  private readonly opset: number;
  private count = 0;

  constructor(opts: GraphBuilderOptions = {}) {
    if (opts.name !== undefined) this.graph.name = opts.name;
    this.draws = opts.draws ?? seededDraws(opts.seed ?? 7);
    this.opset = opts.opset ?? 17;
  }

  input(name: string, shape: Dim[], dtype: DType = 'float32'): string {
    this.graph.inputs.push({ name, dtype, shape });
    return name;
  }

  /** Declares a graph output; its shape defaults to the one declared for the value (op shape or input). */
  output(name: string, dtype: DType = 'float32', shape?: Dim[]): this {
    shape ??= this.graph.valueInfo.get(name)?.shape ?? this.graph.inputs.find((i) => i.name === name)?.shape;
    this.graph.outputs.push(shape ? { name, dtype, shape } : { name, dtype });
    return this;
  }

  /** A float32 initializer: the values given (numbers or a Tensor), else the deterministic 0.01, 0.02, 0.03, …. */
  init(dims: number[], values?: ArrayLike<number> | Tensor, name = `w${this.count++}`): string {
    const t = values instanceof Tensor ? values.withName(name)
      : Tensor.f32(name, dims, values ?? Array.from({ length: product(dims) }, (_, i) => 0.01 * (i + 1)));
    return this.addInitializer(t);
  }

  /** A float32 initializer of seeded normals `mean + scale·N(0, 1)`, drawn from the builder's stream. */
  normal(dims: number[], scale = 1, mean = 0, name?: string): string {
    return this.init(dims, Array.from({ length: product(dims) }, () => {
      const z = scale * this.draws.normal();
      return mean === 0 ? z : mean + z;
    }), name);
  }

  /** An int64 initializer, 1-D unless `dims` is given. */
  initI64(values: number[], name = `i${this.count++}`, dims = [values.length]): string {
    return this.addInitializer(Tensor.i64(name, dims, values));
  }

  /** A Constant node holding a float32 scalar (how torch exports the 1.4142, 1, 0.5 of a GELU) or a tensor. */
  constant(value: number | Tensor): string {
    const [out] = this.node('Constant', [], {});
    const t = typeof value === 'number' ? Tensor.f32(out, [], [value]) : value.withName(out);
    this.graph.nodes[this.graph.nodes.length - 1].attrs.value = attr.t(t);
    return out;
  }

  /** Adds a node; returns its `outputs` output names. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, domain = ''): string[] {
    const k = this.count++;
    const base = `${opType.toLowerCase()}${k}`;
    const outs = Array.from({ length: outputs }, (_, i) => (outputs > 1 ? `${base}_${i}` : base));
    this.graph.nodes.push({ name: `/${base}`, opType, domain, inputs, outputs: outs, attrs: toAttrs(attrs) });
    return outs;
  }

  /** Adds a node with one output and returns it; `shape` declares the output's float32 shape in valueInfo. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, shape?: Dim[], domain = ''): string {
    const [out] = this.node(opType, inputs, attrs, 1, domain);
    if (shape) this.graph.valueInfo.set(out, { name: out, dtype: 'float32', shape });
    return out;
  }

  /** Conv with seeded weights N(0, 1/fan-in) and bias N(0, 0.25); every attribute is written out. */
  conv(x: string, cin: number, cout: number, k: number | number[], o: ConvOptions = {}): string {
    const ks = Array.isArray(k) ? k : [k, k];
    const group = o.group ?? 1;
    const w = this.normal([cout, cin / group, ...ks], 1 / Math.sqrt((cin / group) * ks[0] * ks[1]));
    const b = o.bias === false ? [] : [this.normal([cout], 0.5)];
    const pad = o.pad ?? 0;
    return this.op('Conv', [x, w, ...b], {
      kernel_shape: ks, strides: [o.stride ?? 1, o.stride ?? 1], pads: Array.isArray(pad) ? pad : [pad, pad, pad, pad],
      group: attr.i(group), dilations: [o.dilation ?? 1, o.dilation ?? 1],
    });
  }

  /** Gemm x[·, k] → [·, n] with seeded weights N(0, 1/k) and bias N(0, 0.25). */
  gemm(x: string, k: number, n: number, o: GemmOptions = {}): string {
    const w = this.normal(o.transB ? [n, k] : [k, n], 1 / Math.sqrt(k));
    const b = o.bias === false ? [] : [this.normal([n], 0.5)];
    const attrs: Record<string, Attr> = {};
    if (o.transB) attrs.transB = attr.i(1);
    if (o.alpha !== undefined) attrs.alpha = attr.f(o.alpha);
    if (o.beta !== undefined) attrs.beta = attr.f(o.beta);
    return this.op('Gemm', [x, w, ...b], attrs);
  }

  /** MatMul by seeded weights N(0, 1/k), then Add(bias, ·) as torch exports a Linear. */
  matmul(x: string, k: number, n: number, bias = true): string {
    const y = this.op('MatMul', [x, this.normal([k, n], 1 / Math.sqrt(k))]);
    return bias ? this.op('Add', [this.normal([n], 0.5), y]) : y;
  }

  /** PRelu with the given slopes (shape [C, 1, 1] unless `dims` is given). */
  prelu(x: string, slopes: number[], dims?: number[]): string {
    return this.op('PRelu', [x, this.init(dims ?? [slopes.length, 1, 1], slopes)]);
  }

  model(opset = this.opset, extraOpsets: { domain: string; version: number }[] = []): Model {
    return {
      irVersion: 8,
      opsets: [{ domain: '', version: opset }, ...extraOpsets],
      producerName: 'linfold-test',
      producerVersion: '',
      domain: '',
      modelVersion: 0,
      docString: '',
      graph: this.graph,
      passthrough: {},
    };
  }

  private addInitializer(t: Tensor): string {
    if (this.graph.initializers.has(t.name)) throw new Error(`graph builder: initializer '${t.name}' defined twice`);
    this.graph.initializers.set(t.name, t);
    return t.name;
  }
}
