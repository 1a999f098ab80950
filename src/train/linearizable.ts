// Makes every activation channel-wise linearizable (DESIGN.md §1): the ReLU family becomes PRelu (ReLU at
// slope 0, LeakyReLU(α) at α, PRelu at its own slopes); smooth activations get the blend
// y = σ(x) + a ⊙ (x − σ(x)) starting at a = 0 — or a plain PRelu with `asPrelu`. At step 0 the model
// computes the same function as before (except with asPrelu).
import { blendNodes } from '../import/blend.js';
import { LinfoldError, option } from '../errors.js';
import { type Model, type Node, type Graph, nodeLabel } from '../import/ir.js';
import { Tensor } from '../import/tensor.js';
import { inferShapes } from '../import/shape-inference.js';
import { census, type ActivationLayer } from '../analyze/census.js';
import { cloneModel, deadCode } from '../import/ir-edit.js';
import { shareSlopes, slopeBlocks } from './block-slopes.js';

export interface LinearizableOptions {
  /** Replace smooth activations by a plain PRelu (slope 0) instead of the blend. Changes the function. */
  asPrelu?: boolean;
  /** Only layers whose name matches. */
  only?: RegExp;
  /** Skip layers whose name matches. */
  skip?: RegExp;
  /** Also replace squeeze-excite gates (off by default: a gate stays multiplicative even when linear). */
  includeGates?: boolean;
  /** One slope per channel (default) or one per layer, shared by its channels: a layer then ends either
   *  linear or as a LeakyRelu, which onnxruntime fuses into the preceding Conv/Gemm (no PRelu left). */
  granularity?: Granularity;
  inputShapes?: Record<string, number[]>;
}

/** 'block': one slope per layer, shared by layers joined by one linear layer (src/train/block-slopes.ts). */
export type Granularity = 'channel' | 'layer' | 'block';

/** One learnable slope tensor: a ∈ ℝ^C (or one a for the layer), 0 = the original activation, 1 = the identity. */
export interface Slope {
  /** Initializer name of the slope tensor. */
  name: string;
  layer: string;
  kind: ActivationLayer['kind'];
  form: 'prelu' | 'blend';
  channels: number;
  /** Values in the slope tensor: `channels`, or 1 when the layer shares one slope. */
  size: number;
  channelAxis: number;
}

export interface Linearizable { model: Model; slopes: Slope[]; skipped: { layer: string; reason: string }[] }

export function makeLinearizable(source: Model, opts: LinearizableOptions = {}): Linearizable {
  const model = cloneModel(source);
  inferShapes(model, { inputShapes: opts.inputShapes });
  const g = model.graph;
  const { layers } = census(model);
  const blocks = opts.granularity === 'block' ? slopeBlocks(g, layers) : undefined;
  let slopes: Slope[] = [];
  const skipped: Linearizable['skipped'] = [];
  for (const layer of layers) {
    if (opts.only && !opts.only.test(layer.name)) continue;
    if (opts.skip?.test(layer.name)) continue;
    if (layer.isGate && !opts.includeGates) {
      skipped.push({ layer: layer.name, reason: 'squeeze-excite gate (use includeGates)' });
      continue;
    }
    const rank = g.info(layer.input)?.shape?.length;
    if (layer.channelAxis === null || rank === undefined) {
      skipped.push({ layer: layer.name, reason: `rank of its input is unknown (give ${option('inputShapes')})` });
      continue;
    }
    const size = opts.granularity === 'layer' || blocks ? 1 : layer.channels;
    const slopeDims = [size, ...new Array(rank - 1 - layer.channelAxis).fill(1)];
    const slopeName = g.uniqueName(`${layer.name.replace(/^\//, '').replace(/[/.]/g, '_')}_slope`);
    const base = { layer: layer.name, kind: layer.kind, channels: layer.channels, size, channelAxis: layer.channelAxis };
    const last = findNode(g, layer.output);
    if (layer.form === 'blend' || (layer.form === 'op' && layer.kind === 'prelu')) {
      // already linearizable: make sure the slope is per channel and owned by this layer alone
      const node = layer.form === 'blend' ? blendMul(g, layer) : last;
      const k = layer.form === 'blend' ? node.inputs.findIndex((i) => g.initializers.has(i)) : 1;
      const current = g.initializers.get(node.inputs[k]);
      if (!current) throw new LinfoldError(`${nodeLabel(node)}: its slope is not a constant, cannot train it`);
      const values = broadcastChannels(current, layer.channels);
      if (size === 1 && values.some((v) => v !== values[0]))
        throw new LinfoldError(`${layer.name}: its slopes differ between channels, so it cannot share one slope (use ${option('granularity')} 'channel', or ${option('skip')} it)`);
      g.initializers.set(slopeName, Tensor.f32(slopeName, slopeDims, values.slice(0, size)));
      node.inputs[k] = slopeName;
      slopes.push({ ...base, name: slopeName, form: layer.form === 'blend' ? 'blend' : 'prelu' });
    } else if ((layer.form === 'op' && (layer.kind === 'relu' || layer.kind === 'leakyrelu')) || opts.asPrelu) {
      const start = layer.kind === 'leakyrelu' ? Number(layer.params.alpha ?? 0.01) : 0;
      g.initializers.set(slopeName, Tensor.f32(slopeName, slopeDims, new Array(size).fill(start)));
      const prelu: Node = { name: g.uniqueName(`${layer.name}_prelu`), opType: 'PRelu', domain: '', inputs: [layer.input, slopeName], outputs: [layer.output], attrs: {} };
      last.outputs = last.outputs.map((o) => (o === layer.output ? g.uniqueName(`${layer.output}_replaced`) : o));
      g.nodes.splice(g.nodes.indexOf(last) + 1, 0, prelu);
      slopes.push({ ...base, name: slopeName, form: 'prelu' });
    } else {
      // blend: s = σ(x) keeps its nodes; y = s + A ⊙ (x − s)
      const s = g.uniqueName(`${layer.output}_act`);
      last.outputs = last.outputs.map((o) => (o === layer.output ? s : o));
      g.initializers.set(slopeName, Tensor.f32(slopeName, slopeDims, new Array(size).fill(0)));
      g.nodes.splice(g.nodes.indexOf(last) + 1, 0, ...blendNodes(g, layer.name, layer.input, s, slopeName, layer.output));
      slopes.push({ ...base, name: slopeName, form: 'blend' });
    }
  }
  if (blocks) slopes = shareSlopes(g, slopes, blocks);
  deadCode(g);
  g.sortTopologically();
  inferShapes(model, { inputShapes: opts.inputShapes });
  const result = { model, slopes, skipped };
  assertSlopesUsed(result);
  return result;
}

function findNode(g: Graph, output: string): Node {
  const n = g.nodes.find((x) => x.outputs.includes(output));
  if (!n) throw new LinfoldError(`no node produces '${output}'`);
  return n;
}

/** The Mul of a blend y = s + A ⊙ (x − s): the node reading the A initializer. */
function blendMul(g: Graph, layer: ActivationLayer): Node {
  const names = new Set(layer.nodes);
  const mul = g.nodes.find((n) => names.has(n.name || n.outputs[0]) && n.opType === 'Mul' && n.inputs.some((i) => g.initializers.has(i)));
  if (!mul) throw new LinfoldError(`blend layer ${layer.name}: cannot find its A ⊙ (x − s) multiplication`);
  return mul;
}

function broadcastChannels(t: Tensor, channels: number): number[] {
  const v = t.numbers();
  if (v.length === channels) return v;
  if (v.length === 1) return new Array(channels).fill(v[0]);
  throw new LinfoldError(`slope '${t.name}' has ${v.length} values for ${channels} channels`);
}

/** Every slope initializer is read by the node it was made for (guards the rewrite above). */
export function assertSlopesUsed(l: Linearizable): void {
  const read = new Set(l.model.graph.nodes.flatMap((n) => n.inputs));
  for (const s of l.slopes) if (!read.has(s.name)) throw new LinfoldError(`internal: slope of ${s.layer} is not read by any node`);
}
