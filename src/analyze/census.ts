// Activation census: every activation layer of a graph (as ops and as the patterns exporters emit, and
// linfold's blend form), with its channel axis, channel count and which channels are linear.
import { opsetOf, type Graph, type Model, type Tensor } from '../import/ir.js';
import type { ActivationForm, ActivationKind } from './patterns.js';
import { type MergeOp, type OpaqueOp, type OtherNonlinearOp, type Propagation, propagate } from './propagate.js';

export type { ActivationKind, ActivationForm } from './patterns.js';
export type { OtherNonlinearOp, OtherNonlinearKind, MergeOp, OpaqueOp } from './propagate.js';

/** One activation instance: the unit the method linearizes channel by channel. */
export interface ActivationLayer {
  /**
   * Unique, readable: the node name for a single op, the common name prefix of a pattern's nodes; a blend
   * takes the name of the activation it wraps (stable across linearization).
   */
  name: string;
  kind: ActivationKind;
  form: ActivationForm;
  /** For a blend: whether the wrapped activation is a single op or an exporter pattern. */
  baseForm?: 'op' | 'pattern';
  /** Names of every node the layer spans (node name, or its first output when the node is unnamed). */
  nodes: string[];
  input: string;
  output: string;
  /** Channel axis of the activation's tensor (batch included); null when the rank is unknown. */
  channelAxis: number | null;
  channels: number;
  /** Per channel: true when the function is the identity on the whole real line. */
  linearMask: boolean[];
  linearChannels: number;
  /** = effective width of the layer. */
  nonlinearChannels: number;
  /** A Sigmoid/HardSigmoid whose output multiplies a different tensor (squeeze-excite gate). */
  isGate: boolean;
  /** The gating Muls it feeds. */
  gatingMuls: string[];
  /** Function parameters: alpha/beta, Clip min/max, GELU approximation, SiLU beta. */
  params: Record<string, number | string>;
}

export interface Census {
  layers: ActivationLayer[];
  otherNonlinear: OtherNonlinearOp[];
  merges: MergeOp[];
  opaque: OpaqueOp[];
  warnings: string[];
}

export interface CensusOptions {
  /** |a − 1| ≤ eps makes a PRelu/LeakyRelu/blend channel linear. Default 0.01. */
  eps?: number;
  /** Values folded to constants by shape inference (Reshape targets computed from Shape chains, …). */
  constants?: Map<string, Tensor>;
}

const graphOf = (m: Model | Graph): Graph => ('graph' in m ? m.graph : m);

/**
 * The activation census of a graph. Shapes are read from `graph.valueInfo` (run shape inference first for
 * exact channel counts after reshapes; audit() does).
 */
export function census(model: Model | Graph, opts: CensusOptions = {}): Census {
  return censusOf(propagate(graphOf(model), { opset: 'graph' in model ? opsetOf(model) : undefined, ...opts }));
}

export function censusOf(p: Propagation): Census {
  const used = new Map<string, number>();
  const layers = p.layers.map((l): ActivationLayer => {
    const m = l.match;
    const nodes = m.nodes.map((n) => n.name || n.outputs[0]);
    // a blend is named after the activation it wraps, so a layer keeps its name once linearized
    const named = m.form === 'blend' ? m.nodes.slice(0, -3) : m.nodes;
    let name = layerName(named.map((n) => n.name), named[named.length - 1].outputs[0]);
    const k = used.get(name) ?? 0;
    used.set(name, k + 1);
    if (k) name = `${name}#${k + 1}`;
    const linearChannels = l.linearMask.filter(Boolean).length;
    const channelAxis = l.channelAxes.length ? l.channelAxes[l.channelAxes.length - 1] : null;
    return {
      name, kind: m.kind, form: m.form, ...(m.baseForm ? { baseForm: m.baseForm } : {}), nodes, input: m.input, output: m.output,
      channelAxis, channels: l.linearMask.length, linearMask: l.linearMask, linearChannels,
      nonlinearChannels: l.linearMask.length - linearChannels, isGate: m.gatingMuls.length > 0,
      gatingMuls: m.gatingMuls.map((n) => n.name || n.outputs[0]), params: m.params,
    };
  });
  return { layers, otherNonlinear: p.others, merges: p.merges, opaque: p.opaque, warnings: p.warnings };
}

/** A single node's name; for several, their common '/'-separated prefix (torch scopes: /layers.0/act/Erf → /layers.0/act). */
function layerName(names: string[], output: string): string {
  const named = names.filter(Boolean);
  if (!named.length) return output;
  if (names.length === 1) return named[0];
  const parts = named.map((n) => n.split('/'));
  const common: string[] = [];
  for (let i = 0; i < parts[0].length - 1; i++) {
    const seg = parts[0][i];
    if (parts.every((p) => p.length - 1 > i && p[i] === seg)) common.push(seg);
    else break;
  }
  const prefix = common.join('/');
  return prefix && prefix !== '' && common.some((c) => c !== '') ? prefix : named[named.length - 1];
}
