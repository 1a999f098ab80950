// Helpers for the fold tests: small graphs built with the IR and seeded random weights, and a check that
// runs a model before and after a rewrite in onnxruntime-node.
import assert from 'node:assert/strict';
import { Graph, type Model, type Attr } from '../../src/import/ir.js';
import { Tensor } from '../../src/import/tensor.js';
import { cloneModel } from '../../src/export/graph-utils.js';
import { passContext, type PassContext } from '../../src/export/pass.js';
import { staticShapes } from '../../src/export/shapes.js';
import { compareOutputs, randomFeeds, runModel } from '../../src/export/verify.js';
import { seededRandom, gaussian } from '../../src/import/random.js';

export class Builder {
  g = new Graph();
  private rand: () => number;
  private k = 0;
  constructor(seed = 7, readonly opset = 13) {
    this.rand = seededRandom(seed);
  }
  input(name: string, shape: (number | string)[]): string {
    this.g.inputs.push({ name, dtype: 'float32', shape });
    return name;
  }
  weight(dims: number[], scale = 0.3, around = 0): string {
    const name = `w${this.k++}`;
    const n = dims.reduce((a, b) => a * b, 1);
    this.g.initializers.set(name, Tensor.f32(name, dims, Array.from({ length: n }, () => around + scale * gaussian(this.rand))));
    return name;
  }
  constant(dims: number[], values: number[]): string {
    const name = `c${this.k++}`;
    this.g.initializers.set(name, Tensor.f32(name, dims, values));
    return name;
  }
  node(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, nOut = 1): string {
    const outs = Array.from({ length: nOut }, () => `v${this.k++}`);
    this.g.nodes.push({ name: `${opType.toLowerCase()}${this.k++}`, opType, domain: '', inputs, outputs: outs, attrs });
    return outs[0];
  }
  conv(x: string, cin: number, cout: number, k: number | number[], o: { stride?: number; pad?: number | number[]; group?: number; dilation?: number; bias?: boolean } = {}): string {
    const ks = Array.isArray(k) ? k : [k, k];
    const group = o.group ?? 1;
    const w = this.weight([cout, cin / group, ...ks], 1 / Math.sqrt((cin / group) * ks[0] * ks[1]));
    const b = o.bias === false ? [] : [this.weight([cout], 0.5)];
    const pad = o.pad ?? 0;
    const pads = Array.isArray(pad) ? pad : [pad, pad, pad, pad];
    return this.node('Conv', [x, w, ...b], {
      kernel_shape: { type: 'ints', value: ks }, strides: { type: 'ints', value: [o.stride ?? 1, o.stride ?? 1] },
      pads: { type: 'ints', value: pads }, group: { type: 'int', value: group },
      dilations: { type: 'ints', value: [o.dilation ?? 1, o.dilation ?? 1] },
    });
  }
  gemm(x: string, k: number, n: number, o: { transB?: boolean; alpha?: number; beta?: number; bias?: boolean } = {}): string {
    const w = this.weight(o.transB ? [n, k] : [k, n], 1 / Math.sqrt(k));
    const b = o.bias === false ? [] : [this.weight([n], 0.5)];
    const attrs: Record<string, Attr> = {};
    if (o.transB) attrs.transB = { type: 'int', value: 1 };
    if (o.alpha !== undefined) attrs.alpha = { type: 'float', value: o.alpha };
    if (o.beta !== undefined) attrs.beta = { type: 'float', value: o.beta };
    return this.node('Gemm', [x, w, ...b], attrs);
  }
  matmul(x: string, k: number, n: number, bias = true): string {
    const y = this.node('MatMul', [x, this.weight([k, n], 1 / Math.sqrt(k))]);
    return bias ? this.node('Add', [this.weight([n], 0.5), y]) : y;
  }
  prelu(x: string, slopes: number[], dims?: number[]): string {
    return this.node('PRelu', [x, this.constant(dims ?? [slopes.length, 1, 1], slopes)]);
  }
  model(...outputs: string[]): Model {
    this.g.outputs = outputs.map((name) => ({ name, dtype: 'float32' }));
    return { irVersion: 8, opsets: [{ domain: '', version: this.opset }], producerName: 'linfold-test', producerVersion: '', domain: '', modelVersion: 0, docString: '', graph: this.g, passthrough: {} };
  }
}

export const count = (m: Model, op: string): number => m.graph.nodes.filter((n) => n.opType === op).length;

/** A pass context with static shapes from seeded inputs (batch 1). */
export async function shapesCtx(m: Model, extra: Partial<PassContext> = {}): Promise<PassContext> {
  const feeds = randomFeeds(m.graph, { batch: 1, seed: 3 });
  return passContext({ shapes: await staticShapes(m, feeds), opset: m.opsets.find((o) => !o.domain || o.domain === 'ai.onnx')?.version, ...extra });
}

/**
 * Applies `rewrite` to a copy of the model and compares both in onnxruntime-node on seeded random inputs
 * (batch 3); returns the rewritten model and the relative error, asserting it is below `tol`.
 */
export async function foldAndCompare(m: Model, rewrite: (m: Model) => unknown | Promise<unknown>, tol = 1e-5): Promise<{ model: Model; rel: number }> {
  const after = cloneModel(m);
  await rewrite(after);
  after.graph.sortTopologically();
  const feeds = randomFeeds(m.graph, { batch: 3, seed: 11 });
  const ref = await runModel(m, feeds);
  const got = await runModel(after, feeds);
  const rel = compareOutputs(ref, got).maxRelError;
  assert.ok(rel < tol, `relative error ${rel} ≥ ${tol}`);
  return { model: after, rel };
}
