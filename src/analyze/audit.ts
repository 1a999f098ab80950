// audit(): shape inference, activation census, path lengths, core network and cost in one JSON-able report.
// The report's fields are documented in report-schema.md; bump schemaVersion on any incompatible change.
import { basename } from 'node:path';
import { LinfoldError } from '../errors.js';
import { opsetOf, type Model, type Shape, type Tensor } from '../import/ir.js';
import { inferShapes as defaultInferShapes } from '../import/shape-inference.js';
import { cloneModel } from '../import/ir-edit.js';
import { type ActivationForm, type ActivationKind, type MergeOp, type OpaqueOp, type OtherNonlinearKind, type OtherNonlinearOp, censusOf } from './census.js';
import { type CoreNetwork, coreNetwork } from './core.js';
import { type CostReport, cost } from './cost.js';
import { type OutputPathLength, type PathCounts, pathLengthOf } from './path-length.js';
import { propagate } from './propagate.js';
import { type TransformerInfo, spelling, transformerInfo } from './transformer.js';

export const SCHEMA_VERSION = 1;

/** The shape inference audit runs (the import layer's by default). */
export type InferShapesFn = (
  model: Model,
  opts?: { inputShapes?: Record<string, number[]> },
) => { unknownOps: { node: string; opType: string; domain: string }[]; constants: Map<string, Tensor> };

export interface AuditOptions {
  /** Concrete shapes for graph inputs (replacing symbolic dims such as batch or sequence length). */
  inputShapes?: Record<string, number[]>;
  /** |a − 1| ≤ eps makes a PRelu/LeakyRelu/blend channel linear. Default 0.01. */
  eps?: number;
  /** Add nonlinear non-activation ops (Softmax, LayerNorm, gating Mul, …) to APL/NAPL. Default false. */
  countOtherNonlinear?: boolean;
  /** Shape inference to run; false = use the shapes stored in the file. Default: src/import/shape-inference. */
  inferShapes?: InferShapesFn | false;
}

export interface AuditReport {
  schemaVersion: 1;
  model: ModelInfo;
  options: { eps: number; countOtherNonlinear: boolean; inputShapes?: Record<string, number[]> };
  summary: AuditSummary;
  /** Per graph output; the headline numbers in `summary` are the first output's. */
  pathLengths: OutputPathLength[];
  layers: LayerRow[];
  otherNonlinear: { counts: Partial<Record<OtherNonlinearKind, number>>; ops: OtherNonlinearOp[] };
  merges: MergeOp[];
  core: CoreNetwork;
  cost: CostReport;
  opaque: OpaqueOp[];
  /** Models with attention (a Softmax) or an FFN: GELU spellings, FFNs and what folds them, per-token path length (transformer.ts). */
  transformer?: TransformerInfo;
  warnings: string[];
}

export interface ModelInfo {
  /** File name (null when the model was built in memory). */
  file: string | null;
  path: string | null;
  graphName: string;
  producer: string;
  irVersion: number;
  opsets: { domain: string; version: number }[];
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  nodeCount: number;
  opCounts: Record<string, number>;
}

export interface TensorInfo { name: string; dtype: string | null; shape: (number | string)[] | null }

export interface AuditSummary {
  apl: number;
  napl: number;
  /** = napl. */
  effectiveDepth: number;
  /** Nonlinear non-activation ops per path (not in apl/napl unless options.countOtherNonlinear). */
  otherNonlinearPerPath: PathCounts;
  activationLayers: number;
  /** Layers with at least one nonlinear channel (the core network's layers). */
  nonlinearLayers: number;
  /** Layers whose every channel is linear (foldable). */
  linearLayers: number;
  channels: number;
  nonlinearChannels: number;
  linearChannels: number;
  params: number;
  macs: number;
}

export interface LayerRow {
  name: string;
  kind: ActivationKind;
  form: ActivationForm;
  /** How it is written: 'Erf chain', 'tanh approximation', 'Gelu op', 'blend around Erf chain', 'relu op', … */
  spelling: string;
  channelAxis: number | null;
  channels: number;
  linearChannels: number;
  /** Effective width. */
  nonlinearChannels: number;
  /** Per channel (flat over the channel axes, row-major): true = linear (the identity). Kept for every width. */
  linearMask: boolean[];
  /**
   * Expected number of this layer's nonlinear units on a path to the first output: uniform over paths (apl)
   * and normalized (napl). Summed over layers = pathLengths[0].activations.
   */
  contribution: PathCounts;
  isGate: boolean;
  input: string;
  output: string;
  nodes: string[];
  params: Record<string, number | string>;
}

/**
 * Audits a model: shape inference, activation census, APL/NAPL per output, core network, params/MACs.
 * Shape inference updates the model in place (graph.valueInfo, node order, and the input shapes given in
 * `inputShapes`); nothing else is changed. An op the audit does not know is reported in `opaque` and
 * treated as an elementwise pass-through; a model shape inference rejects is audited with the shapes in
 * the file, with a warning. Throws LinfoldError for bad options.
 */
export function audit(model: Model, opts: AuditOptions = {}): AuditReport {
  const eps = opts.eps ?? 0.01;
  if (!(eps >= 0)) throw new LinfoldError(`eps must be a non-negative number, got ${opts.eps}`);
  const countOtherNonlinear = opts.countOtherNonlinear ?? false;
  const warnings: string[] = [];
  const infer = opts.inferShapes === undefined ? (defaultInferShapes as InferShapesFn) : opts.inferShapes;
  let constants: Map<string, Tensor> | undefined;
  if (infer) {
    try {
      const r = infer(model, { inputShapes: opts.inputShapes });
      constants = r.constants;
      for (const u of r.unknownOps)
        warnings.push(`shape inference does not know ${u.domain ? `${u.domain}.` : ''}${u.opType} (${u.node}); shapes after it may be missing`);
    } catch (e) {
      if (!(e instanceof LinfoldError) || /^inputShapes:/.test(e.message)) throw e;
      warnings.push(`shape inference failed, using the shapes stored in the file: ${e.message}`);
    }
  } else if (opts.inputShapes) {
    for (const [name, dims] of Object.entries(opts.inputShapes)) {
      const inp = model.graph.feeds.find((i) => i.name === name);
      if (!inp) throw new LinfoldError(`inputShapes: '${name}' is not an input of the graph`);
      inp.shape = [...dims];
    }
  }
  const graph = model.graph;
  const p = propagate(graph, { eps, constants, opset: opsetOf(model), exampleShapes: infer ? () => shapesAtBatchOne(model, infer) : undefined });
  const c = censusOf(p);
  const paths = pathLengthOf(p, graph, { countOtherNonlinear });
  const costs = cost(model, { shapes: p.shapes, order: p.order });
  const core = coreNetwork(graph, p.order, c.layers);

  const counts: Partial<Record<OtherNonlinearKind, number>> = {};
  for (const o of c.otherNonlinear) counts[o.kind] = (counts[o.kind] ?? 0) + 1;
  const opCounts: Record<string, number> = {};
  for (const n of graph.nodes) {
    const k = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
    opCounts[k] = (opCounts[k] ?? 0) + 1;
  }
  const tinfo = (v: { name: string; dtype?: string; shape?: Shape }): TensorInfo => ({ name: v.name, dtype: v.dtype ?? null, shape: v.shape ? [...v.shape] : null });
  for (const o of paths.outputs) if (!o.dependsOnInput) warnings.push(`output '${o.output}' does not depend on any graph input`);
  const layers: LayerRow[] = c.layers.map((l, i) => ({
    name: l.name, kind: l.kind, form: l.form, spelling: spelling(l), channelAxis: l.channelAxis, channels: l.channels, linearChannels: l.linearChannels,
    nonlinearChannels: l.nonlinearChannels, linearMask: [...l.linearMask], contribution: { ...paths.layerContributions[i] },
    isGate: l.isGate, input: l.input, output: l.output, nodes: l.nodes, params: l.params,
  }));
  const channels = layers.reduce((s, l) => s + l.channels, 0);
  const tf = transformerInfo(graph, c.layers, c.otherNonlinear, { apl: paths.apl, napl: paths.napl });
  const nonlinearChannels = layers.reduce((s, l) => s + l.nonlinearChannels, 0);
  return {
    schemaVersion: SCHEMA_VERSION,
    model: {
      file: model.path ? basename(model.path) : null, path: model.path ?? null, graphName: graph.name,
      producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '), irVersion: model.irVersion,
      opsets: model.opsets.map((o) => ({ domain: o.domain, version: o.version })),
      inputs: graph.feeds.map(tinfo), outputs: graph.outputs.map(tinfo), nodeCount: graph.nodes.length, opCounts,
    },
    options: { eps, countOtherNonlinear, ...(opts.inputShapes ? { inputShapes: opts.inputShapes } : {}) },
    summary: {
      apl: paths.apl, napl: paths.napl, effectiveDepth: paths.effectiveDepth, otherNonlinearPerPath: paths.otherNonlinear,
      activationLayers: layers.length, nonlinearLayers: layers.filter((l) => l.nonlinearChannels > 0).length,
      linearLayers: layers.filter((l) => l.nonlinearChannels === 0).length, channels, nonlinearChannels,
      linearChannels: channels - nonlinearChannels, params: costs.params, macs: costs.macs,
    },
    pathLengths: paths.outputs,
    layers,
    otherNonlinear: { counts, ops: c.otherNonlinear },
    merges: c.merges,
    core,
    cost: costs,
    opaque: c.opaque,
    ...(tf ? { transformer: tf } : {}),
    warnings: [...warnings, ...c.warnings],
  };
}

/**
 * Shapes of every value with each input's leading symbolic dim (the batch) set to 1, when that makes every
 * input concrete; undefined otherwise or when inference fails at batch 1.
 */
function shapesAtBatchOne(model: Model, infer: InferShapesFn): Map<string, Shape> | undefined {
  const feeds = model.graph.feeds;
  if (!feeds.some((f) => typeof f.shape?.[0] === 'string')) return undefined;
  const inputShapes: Record<string, number[]> = {};
  for (const f of feeds) {
    const dims = f.shape?.map((d, k) => (k === 0 && typeof d === 'string' ? 1 : d));
    if (!dims || !dims.every((d): d is number => typeof d === 'number')) return undefined;
    inputShapes[f.name] = dims;
  }
  const copy = cloneModel(model);
  try {
    infer(copy, { inputShapes });
  } catch {
    return undefined;
  }
  return new Map([...copy.graph.valueInfo].map(([k, v]) => [k, v.shape ?? []]));
}
