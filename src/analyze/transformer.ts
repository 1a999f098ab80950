// What the audit says about transformers: how each GELU is spelled, the FFNs (activation between two dense
// layers) and what folding can do with them, and the per-token path length.
//
// Per-token path length. In a [batch, tokens, features] tensor linfold's units are the features (the last
// axis); every token position carries the same per-unit path state, because position-wise layers (the FFN,
// the projections, LayerNorm) act alike on every token and attention only mixes positions of the same units:
// Softmax(QKᵀ)·V is counted as a merge of its operands (the MatMul of two input-dependent tensors) plus one
// "other nonlinear" op, never as activation units. So a path runs from one input feature of a token to one
// output feature of a (possibly other) token, and the audit's APL/NAPL are per token: the expected number of
// nonlinear activation units such a path meets. Softmax and LayerNorm are counted apart, per path (otherNonlinearPerPath),
// and by number of ops.
import type { Graph, Node } from '../import/ir.js';
import { attrInt } from '../import/ir.js';
import type { ActivationLayer, OtherNonlinearOp } from './census.js';
import type { PathCounts } from './path-length.js';

/** How an activation layer is written in the file: e.g. 'Erf chain', 'tanh approximation', 'Gelu op', 'blend around Erf chain'. */
export function spelling(l: Pick<ActivationLayer, 'kind' | 'form' | 'baseForm' | 'params'>): string {
  const base = l.form === 'blend' ? l.baseForm : l.form;
  let s: string;
  if (l.kind === 'gelu') {
    const tanh = l.params.approximate === 'tanh';
    s = base === 'op' ? (tanh ? 'Gelu op (tanh approximation)' : 'Gelu op') : tanh ? 'tanh approximation' : 'Erf chain';
  } else s = base === 'op' ? `${l.kind} op` : `${l.kind} pattern`;
  return l.form === 'blend' ? `blend around ${s}` : s;
}

export interface FfnRow {
  /** the activation layer (census name) */
  activation: string;
  spelling: string;
  /** the dense layers before and after it (node names) */
  fc1: string;
  fc2: string;
  dIn: number;
  hidden: number;
  dOut: number;
  linearChannels: number;
  nonlinearChannels: number;
  /** what folding can do: merge into one dIn×dOut layer, split off a linear bypass, or nothing */
  fold: 'merge' | 'split' | 'none';
  /** weight MACs per token as it is, and after that fold */
  macsPerToken: number;
  foldedMacsPerToken: number;
}

export interface TransformerInfo {
  /** the audit's APL/NAPL, per token (see the header) */
  perToken: PathCounts;
  /** Softmax and LayerNorm ops, counted apart from the activations (their per-path counts are in otherNonlinearPerPath) */
  softmax: number;
  layerNorm: number;
  /** activation layers per spelling */
  spellings: Record<string, number>;
  ffn: FfnRow[];
}

/** A Gemm/MatMul with a constant weight reading `x` as its first operand: its [K, N], or undefined. */
function denseDims(g: Graph, n: Node | undefined, producers: Map<string, Node>): { K: number; N: number } | undefined {
  if (!n || (n.domain && n.domain !== 'ai.onnx') || (n.opType !== 'MatMul' && n.opType !== 'Gemm')) return undefined;
  let w = n.inputs[1];
  // untrained deep-copied layers export shared weights behind Identity nodes
  for (let p = producers.get(w); p?.opType === 'Identity'; p = producers.get(w)) w = p.inputs[0];
  const dims = g.initializers.get(w)?.dims ?? (producers.get(w)?.opType === 'Constant' ? g.info(w)?.shape : undefined);
  if (!dims || dims.length !== 2 || typeof dims[0] !== 'number' || typeof dims[1] !== 'number') return undefined;
  if (n.opType === 'Gemm' && attrInt(n, 'transA', 0)) return undefined;
  return n.opType === 'Gemm' && attrInt(n, 'transB', 0) ? { K: dims[1], N: dims[0] } : { K: dims[0], N: dims[1] };
}

/** The FFNs of the graph: activation layers on the last axis between two dense layers (a bias Add allowed after the first). */
export function ffnRows(g: Graph, layers: ActivationLayer[]): FfnRow[] {
  const producers = g.producers();
  const consumers = g.consumers();
  const out: FfnRow[] = [];
  for (const l of layers) {
    let p = producers.get(l.input);
    if (p?.opType === 'Add') p = p.inputs.map((i) => producers.get(i)).find((q) => q?.opType === 'MatMul' || q?.opType === 'Gemm');
    const fc1 = p && denseDims(g, p, producers);
    const rd = consumers.get(l.output) ?? [];
    const fc2 = rd.length === 1 && rd[0].inputs[0] === l.output ? denseDims(g, rd[0], producers) : undefined;
    if (!fc1 || !fc2 || fc1.N !== l.channels || fc2.K !== l.channels) continue;
    const { K: dIn } = fc1, { N: dOut } = fc2, h = l.channels, n = l.nonlinearChannels;
    const macs = dIn * h + h * dOut;
    const split = dIn * n + n * dOut + dIn * dOut;
    const fold: FfnRow['fold'] = n === 0 ? 'merge' : l.linearChannels > 0 && split < macs ? 'split' : 'none';
    out.push({
      activation: l.name, spelling: spelling(l), fc1: p!.name || p!.outputs[0], fc2: rd[0].name || rd[0].outputs[0], dIn, hidden: h, dOut,
      linearChannels: l.linearChannels, nonlinearChannels: n, fold, macsPerToken: macs,
      foldedMacsPerToken: fold === 'merge' ? dIn * dOut : fold === 'split' ? split : macs,
    });
  }
  return out;
}

/** The transformer section of an audit, when the model has attention (a Softmax) or an FFN; undefined otherwise. */
export function transformerInfo(g: Graph, layers: ActivationLayer[], other: OtherNonlinearOp[], perToken: PathCounts): TransformerInfo | undefined {
  const ffn = ffnRows(g, layers);
  const softmax = other.filter((o) => o.kind === 'softmax').length;
  if (!softmax && !ffn.length) return undefined;
  const spellings: Record<string, number> = {};
  for (const l of layers) spellings[spelling(l)] = (spellings[spelling(l)] ?? 0) + 1;
  return { perToken: { ...perToken }, softmax, layerNorm: other.filter((o) => o.kind === 'layernorm').length, spellings, ffn };
}
