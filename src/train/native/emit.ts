// Emits ONNX nodes into the training graph: fresh names, int64/float constants, the value shapes the IR knows,
// and the two helpers every gradient rule needs (sum of contributions, reduction of a broadcast gradient).
import { LinfoldError, option } from '../../errors.js';
import { type Attr, type Dim, type Graph, type Node, nodeLabel } from '../../import/ir.js';
import { Tensor } from '../../import/tensor.js';
import { toAttrs, type AttrValue } from '../../import/graph-builder.js';

export class Emitter {
  private counter = 0;
  private readonly consts = new Map<string, string>();
  constructor(readonly g: Graph, readonly opset: number) {}

  /** A fresh value name. */
  fresh(base: string): string {
    const clean = base.replace(/^\//, '').replace(/[^A-Za-z0-9_.]/g, '_');
    return `${clean}__g${++this.counter}`;
  }

  /** Appends a node; returns its outputs (count `outputs`). */
  nodeN(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, base = opType): string[] {
    const outs = Array.from({ length: outputs }, () => this.fresh(base));
    const n: Node = { name: this.fresh(`n_${opType}`), opType, domain: '', inputs, outputs: outs, attrs: toAttrs(attrs) as Record<string, Attr> };
    this.g.nodes.push(n);
    return outs;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, base = opType): string {
    return this.nodeN(opType, inputs, attrs, 1, base)[0];
  }

  /** An int64 constant (shared between uses). */
  i64(values: number[], dims: number[] = [values.length]): string {
    return this.constant('i64', values, dims, (n, d, v) => Tensor.i64(n, d, v));
  }

  /** A float32 constant (shared between uses); a scalar unless dims are given. */
  f32(values: number[] | number, dims: number[] = []): string {
    return this.constant('f32', typeof values === 'number' ? [values] : values, dims, (n, d, v) => Tensor.f32(n, d, v));
  }

  private constant(kind: 'i64' | 'f32', values: number[], dims: number[], make: (name: string, dims: number[], values: number[]) => Tensor): string {
    const key = `${kind}:${dims}:${values}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh(`const_${kind}`);
      this.g.initializers.set(name, make(name, dims, values));
      this.consts.set(key, name);
    }
    return name;
  }

  /** The shape the IR knows for a value (symbolic dims as strings); throws when its rank is unknown. */
  shape(name: string, at?: Node): Dim[] {
    const s = this.g.info(name)?.shape;
    if (!s) throw new LinfoldError(`native backend: the shape of '${name}'${at ? ` (read by ${nodeLabel(at)})` : ''} is unknown (give ${option('inputShapes')})`);
    return s;
  }

  /** Static dims of a value, or an error naming the node. */
  staticShape(name: string, at: Node): number[] {
    const s = this.shape(name, at);
    if (s.some((d) => typeof d !== 'number')) throw new LinfoldError(`native backend: ${nodeLabel(at)} needs the static shape of '${name}', which is [${s}]`);
    return s as number[];
  }

  /** Sum of gradient contributions (one Sum node for several). */
  sum(parts: string[]): string {
    return parts.length === 1 ? parts[0] : this.op('Sum', parts);
  }

  /** The gradient of a value broadcast from `inName` into `outName`'s shape, summed back to `inName`'s shape. */
  /** `matrix` trailing axes are left alone (MatMul: the gradient's last two dims are the operand's own). */
  unbroadcast(grad: string, inName: string, outName: string, at: Node, matrix = 0): string {
    const inS = this.shape(inName, at), outS = this.shape(outName, at);
    const lead = outS.length - inS.length;
    const axes: number[] = [];
    for (let k = 0; k < outS.length - matrix; k++) {
      if (k < lead) axes.push(k);
      else if (inS[k - lead] === 1 && outS[k] !== 1) axes.push(k);
    }
    if (!axes.length) return grad;
    const r = this.op('ReduceSum', [grad, this.i64(axes)], { keepdims: 1 });
    if (lead === 0) return r;
    return this.op('Reshape', [r, this.op('Shape', [inName])]);
  }
}
