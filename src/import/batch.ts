// makeBatchSymbolic: frees the batch of a model exported with torch.onnx.export's defaults (inputs [1, …], the
// batch baked into Reshape constants such as [1, -1] or MultiheadAttention's [seq, batch·heads, head_dim]).
//
// The fixed-1 leading dim of the inputs becomes the symbol 'batch'. Then one sweep in topological order judges
// every node with a shape operand (Reshape; Expand, Tile, ConstantOfShape), knowing the graph before it at
// batch 2 and 3 by shape inference (run segment by segment, so the sweep costs a few inferences in all):
// - a Reshape whose data carries the batch gets the batch-1 target with -1 at the entry that holds the batch
//   (where the batch lands in the row-major layout: a dim of its own, the outer factor of a merged dim like
//   batch·heads, or an inner one like seq·batch — the first of these that keeps the shapes consistent up to
//   the next such node). A target computed from the input's shape (Shape → Gather → Concat) is kept when it
//   already follows the batch, and replaced the same way when it holds a constant 1 for it (torchvision's
//   Swin); the other input dims are fixed, so the batch is the only dim that varies;
// - Expand/Tile/ConstantOfShape keep a constant operand unless that breaks the shapes downstream; then its
//   leading 1 becomes the batch size, read with Shape → Gather → Concat from the first batched input.
// The rewrite is verified with onnxruntime: the original run on three random examples one by one against the
// rewritten model on the three as one batch (and on the first alone). When the batch cannot be freed the
// result says why, naming the node. The rewritten model keeps the symbolic batch when written.
import { product } from './shape-math.js';
import { LinfoldError } from '../errors.js';
import { Graph, nodeLabel, type Model, type Node, type Shape } from './ir.js';
import { Tensor, allocArray, compareValues, type DType, type TypedArray } from './tensor.js';
import { inferShapes } from './shape-inference.js';
import { randomFeeds } from './random.js';
import { ortSession, runOrt } from './ort.js';
import { cloneModel, makeNode, nameNodes } from './ir-edit.js';
import { deadCode } from './ir-edit.js';

export const BATCH = 'batch';

export interface BatchRewrite {
  node: string;
  op: string;
  /** the constant before and what replaced it ('batch' stands for the Shape → Gather subgraph) */
  from: number[];
  to: (number | 'batch')[];
}

export interface BatchResult {
  /** The rewritten model (the input itself when nothing changed or the batch cannot be freed). */
  model: Model;
  changed: boolean;
  /** inputs whose leading dim is a fixed 1 (when `changed`, it became 'batch') */
  inputs: string[];
  rewrites: BatchRewrite[];
  /** why the batch cannot be freed (one line, naming the node); the model is then returned unchanged */
  reason?: string;
  /** max relative error of the verification (batch 3 vs the original per example) */
  verifiedError?: number;
}

export interface BatchOptions {
  /** verify with onnxruntime (default true) */
  verify?: boolean;
  seed?: number;
  /** relative tolerance of the verification (default 1e-4) */
  tolerance?: number;
}

/** Shape operand of the nodes that can pin the batch. */
const SHAPE_INPUT: Record<string, number> = { Reshape: 1, Expand: 1, Tile: 1, ConstantOfShape: 0 };

interface Inferred { shapes: Map<string, Shape>; constants: Map<string, Tensor>; dtypes: Map<string, DType> }
const empty = (): Inferred => ({ shapes: new Map(), constants: new Map(), dtypes: new Map() });

export async function makeBatchSymbolic(source: Model, opts: BatchOptions = {}): Promise<BatchResult> {
  // rank 2 and more: a [1] input is a scalar option more often than a batch of one
  const batchFeeds = source.graph.feeds.filter((f) => f.shape && f.shape.length >= 2 && f.shape[0] === 1).map((f) => f.name);
  const unchanged = (reason?: string): BatchResult => ({ model: source, changed: false, inputs: batchFeeds, rewrites: [], ...(reason ? { reason } : {}) });
  if (!batchFeeds.length) return unchanged();
  const label = source.path ?? 'model';
  const m = cloneModel(source);
  const g = m.graph;
  nameNodes(g);
  g.sortTopologically();
  const feedSet = new Set(batchFeeds);

  const feedNames = new Set(g.inputs.map((i) => i.name));
  /**
   * Shape inference of `nodes` (a run of the topological order) at a concrete batch, given what is known of
   * the values they read from before the run (`known`): linear in the graph over a whole sweep.
   */
  const infer = (nodes: Node[], batch: number, known?: Inferred): Inferred | Error => {
    const h = new Graph();
    h.nodes = [...nodes];
    const produced = new Set(nodes.flatMap((n) => n.outputs));
    const reads = new Set(nodes.flatMap((n) => n.inputs).filter((v) => v && !produced.has(v)));
    for (const v of reads) {
      const init = g.initializers.get(v), c = known?.constants.get(v), feed = g.inputs.find((i) => i.name === v);
      if (init && !feedNames.has(v)) h.initializers.set(v, init);
      else if (feed) h.inputs.push(feedSet.has(v) ? { ...feed, shape: [batch, ...feed.shape!.slice(1)] } : { ...feed });
      else if (c) h.initializers.set(v, c.withName(v));
      else h.inputs.push({ name: v, dtype: known?.dtypes.get(v), shape: known?.shapes.get(v) });
    }
    try {
      const r = inferShapes({ ...m, graph: h });
      const out: Inferred = { shapes: new Map(), constants: r.constants, dtypes: new Map() };
      for (const v of [...h.inputs, ...h.valueInfo.values()]) {
        if (v.shape) out.shapes.set(v.name, v.shape);
        if (v.dtype) out.dtypes.set(v.name, v.dtype);
      }
      return out;
    } catch (e) {
      return e as Error;
    }
  };
  const merge = (into: Inferred, r: Inferred) => {
    for (const k of ['shapes', 'constants', 'dtypes'] as const) for (const [n, v] of r[k]) (into[k] as Map<string, unknown>).set(n, v);
  };
  const s1 = infer(g.nodes, 1);
  if (s1 instanceof Error) return unchanged(`${label}: shape inference fails at batch 1 (${s1.message})`);

  // values computed from constants only (not from any graph input)
  const isStatic = new Set<string>([...g.initializers.keys()].filter((k) => !feedNames.has(k)));
  for (const n of g.nodes)
    if (n.inputs.every((i) => !i || isStatic.has(i)) && !/^Random/.test(n.opType)) n.outputs.forEach((o) => o && isStatic.add(o));

  // Sweep in topological order: before each node with a shape operand, the graph so far is known at batch 2
  // and 3; its candidates are judged on the run up to the next such node.
  const pins = g.nodes.filter((n) => (n.domain === '' || n.domain === 'ai.onnx') && SHAPE_INPUT[n.opType] !== undefined && n.inputs[SHAPE_INPUT[n.opType]]);
  const known: Record<number, Inferred> = { 2: empty(), 3: empty() };
  for (const b of [2, 3])
    for (const i of g.feeds) {
      if (i.shape) known[b].shapes.set(i.name, feedSet.has(i.name) ? [b, ...i.shape.slice(1)] : i.shape);
      if (i.dtype) known[b].dtypes.set(i.name, i.dtype);
    }
  const rewrites: BatchRewrite[] = [];
  let pos = 0;
  const advance = (to: number): string | undefined => {
    for (const b of [2, 3]) {
      const r = infer(g.nodes.slice(pos, to), b, known[b]);
      if (r instanceof Error) return r.message;
      merge(known[b], r);
    }
    pos = to;
    return undefined;
  };
  for (let p = 0; p < pins.length; p++) {
    const n = pins[p];
    const err = advance(g.nodes.indexOf(n));
    if (err) return unchanged(`${label}: ${err}`);
    const cands = candidates(n, s1, known[2], isStatic.has(n.inputs[SHAPE_INPUT[n.opType]]));
    if (typeof cands === 'string') return unchanged(`${label}: node ${nodeLabel(n)} pins the batch: ${cands}`);
    if (!cands.length) continue;
    const upTo = () => (pins[p + 1] ? g.nodes.indexOf(pins[p + 1]) : g.nodes.length);
    let chosen: Candidate | undefined, firstError = '';
    for (const c of cands) {
      const undo = apply(g, n, c, batchFeeds[0]);
      const bad = [2, 3].map((b) => infer(g.nodes.slice(pos, upTo()), b, known[b])).find((r): r is Error => r instanceof Error);
      if (!bad) {
        chosen = c;
        break;
      }
      firstError ||= bad.message;
      undo();
    }
    if (!chosen) return unchanged(`${label}: node ${nodeLabel(n)} pins the batch: no target shape for it keeps the graph consistent at batch 2 (${firstError})`);
    if (chosen.to) rewrites.push({ node: n.name, op: n.opType, from: chosen.from, to: chosen.to });
  }
  const err = advance(g.nodes.length);
  if (err) return unchanged(`${label}: ${err}`);
  // shape chains the rewritten constants replaced
  deadCode(g);

  // outputs: their leading dim must carry the batch
  const s2 = known[2];
  const producers = g.producers();
  const outputs: string[] = [];
  for (const o of g.outputs) {
    const a = s1.shapes.get(o.name), b = s2.shapes.get(o.name);
    if (a?.[0] === 1 && b?.[0] === 2 && a.slice(1).join() === b.slice(1).join()) {
      outputs.push(o.name);
      continue;
    }
    const sink = batchSink(o.name, s1, s2, producers);
    if (sink) return unchanged(`${label}: node ${nodeLabel(sink)} pins the batch: its output [${s1.shapes.get(sink.outputs[0])?.join(', ')}] does not keep the batch as its own leading axis${o.name !== sink.outputs[0] ? ` (graph output '${o.name}' at batch 2 is [${b?.join(', ')}])` : ''}`);
  }
  for (const i of g.inputs) if (feedSet.has(i.name)) i.shape = [BATCH, ...i.shape!.slice(1)];
  for (const o of g.outputs) if (outputs.includes(o.name)) o.shape = [BATCH, ...(o.shape ?? s1.shapes.get(o.name)!).slice(1)];
  g.valueInfo = new Map();
  try {
    inferShapes(m);
  } catch (e) {
    return unchanged(`${label}: after freeing the batch: ${(e as Error).message}`);
  }
  const result: BatchResult = { model: m, changed: true, inputs: batchFeeds, rewrites };
  if (opts.verify === false) return result;
  // float values whose leading axis holds the batch (outermost), to locate a failure
  const probes = g.nodes.flatMap((n) => n.outputs).filter((v) => {
    const a = s1.shapes.get(v), b = s2.shapes.get(v);
    return v && g.valueInfo.get(v)?.dtype === 'float32' && a && b && a.length && b[0] === 2 * (a[0] as number) && a.slice(1).join() === b.slice(1).join();
  });
  const v = await verifyBatch(source, m, batchFeeds, probes, opts);
  if (typeof v === 'string') return unchanged(`${label}: ${v}`);
  result.verifiedError = v;
  return result;
}

interface Candidate { from: number[]; to?: (number | 'batch')[] }

/**
 * Replacement targets for a node's shape operand, best first; [] when the node does not touch the batch. An
 * operand computed from the input (a Shape chain) is tried unchanged first: it may already follow the batch.
 */
function candidates(n: Node, s1: Inferred, s2: Inferred, isStatic: boolean): Candidate[] | string {
  const shapeName = n.inputs[SHAPE_INPUT[n.opType]];
  const t = s1.constants.get(shapeName);
  if (!t) return [];
  const from = t.numbers();
  if (!isStatic) {
    if (n.opType !== 'Reshape') return [];
    const layout = candidates(n, s1, s2, true);
    return typeof layout === 'string' || !layout.length ? layout : [{ from }, ...layout.filter((c) => c.to)];
  }
  if (n.opType !== 'Reshape') {
    // Expand/Tile/ConstantOfShape: unchanged first; else the leading 1 becomes the batch
    const data = n.opType === 'ConstantOfShape' ? undefined : n.inputs[0];
    if (data && s1.shapes.get(data)?.join() !== s2.shapes.get(data)?.join()) return [];
    return from[0] === 1 ? [{ from }, { from, to: ['batch', ...from.slice(1)] }] : [];
  }
  const x1 = s1.shapes.get(n.inputs[0]), x2 = s2.shapes.get(n.inputs[0]), out1 = s1.shapes.get(n.outputs[0]);
  if (!x1 || !x2 || x1.join() === x2.join()) return [];
  if (!isNums(x1) || !isNums(x2) || !isNums(out1)) return `shapes [${x1}] → [${out1 ?? '?'}] are not static`;
  const axes = x1.map((_, k) => k).filter((k) => x1[k] !== x2[k]);
  if (axes.length !== 1 || x2[axes[0]] !== 2 * x1[axes[0]]) return `its input [${x1}] grows as [${x2}] at batch 2`;
  if (out1.includes(0)) return `target [${out1}] has a zero dim`;
  const a = axes[0], pre = product(x1.slice(0, a)), post = product(x1.slice(a + 1));
  // the batch sits in dim a as [o | batch | x1[a]/o]: try every outer factor o
  const best = new Map<number, number>();
  for (let o = 1; o <= x1[a]; o++) {
    if (x1[a] % o) continue;
    const P = pre * o, S = (x1[a] / o) * post;
    for (let k = 0; k < out1.length; k++) {
      const pk = product(out1.slice(0, k));
      if (P % pk || out1[k] % (P / pk)) continue;
      const outer = P / pk, inner = out1[k] / outer;
      if (inner * product(out1.slice(k + 1)) !== S) continue;
      // a dim of its own, then the outer factor of a merged dim (batch·heads), then inner (seq·batch)
      const rank = out1[k] === 1 ? 0 : outer === 1 ? 1 : 2;
      best.set(k, Math.min(best.get(k) ?? 3, rank));
    }
  }
  return [...best].sort((p, q) => p[1] - q[1] || p[0] - q[0]).map(([k]) => {
    const to = out1.map((d, j) => (j === k ? -1 : d));
    return to.join() === from.join() ? { from } : { from, to }; // already batch-free: keep it
  });
}

/** Points the node at a new constant (or a Shape → Gather → Concat subgraph); returns the undo. */
function apply(g: Graph, n: Node, c: Candidate, batchFeed: string): () => void {
  if (!c.to) return () => {};
  const idx = SHAPE_INPUT[n.opType];
  const old = n.inputs[idx];
  const added: string[] = [];
  const addConst = (base: string, v: number[]) => {
    const name = g.uniqueName(base);
    g.initializers.set(name, Tensor.i64(name, [v.length], v));
    added.push(name);
    return name;
  };
  const newNodes: Node[] = [];
  if (c.to[0] !== 'batch') n.inputs[idx] = addConst(`${old}_batch`, c.to as number[]);
  else {
    const shape = makeNode(g, 'Shape', [batchFeed], [g.uniqueName(`${n.name}_batch_shape`)], {}, `${n.name}_batch_shape`);
    newNodes.push(shape);
    g.nodes.splice(g.nodes.indexOf(n), 0, shape);
    const gather = makeNode(g, 'Gather', [shape.outputs[0], addConst(`${n.name}_batch_index`, [0])], [g.uniqueName(`${n.name}_batch_size`)], { axis: { type: 'int', value: 0 } }, `${n.name}_batch_size`);
    newNodes.push(gather);
    g.nodes.splice(g.nodes.indexOf(n), 0, gather);
    let target = gather.outputs[0];
    if (c.to.length > 1) {
      const concat = makeNode(g, 'Concat', [target, addConst(`${n.name}_batch_rest`, c.to.slice(1) as number[])], [g.uniqueName(`${n.name}_batch_target`)], { axis: { type: 'int', value: 0 } }, `${n.name}_batch_target`);
      newNodes.push(concat);
      g.nodes.splice(g.nodes.indexOf(n), 0, concat);
      target = concat.outputs[0];
    }
    n.inputs[idx] = target;
  }
  return () => {
    n.inputs[idx] = old;
    for (const k of added) g.initializers.delete(k);
    g.nodes = g.nodes.filter((x) => !newNodes.includes(x));
  };
}

/** The node nearest to `value` whose inputs carry the batch while its output has lost it. */
function batchSink(value: string, s1: Inferred, s2: Inferred, producers: Map<string, Node>): Node | undefined {
  const scales = (v: string) => s1.shapes.get(v)?.join() !== s2.shapes.get(v)?.join();
  const seen = new Set<string>();
  const walk = (v: string): Node | undefined => {
    if (seen.has(v)) return undefined;
    seen.add(v);
    const p = producers.get(v);
    if (!p) return undefined;
    if (p.inputs.some((i) => i && scales(i)) && !p.outputs.every((o) => !o || scales(o) && leadingBatch(o))) return p;
    for (const i of p.inputs) if (i) {
      const r = walk(i);
      if (r) return r;
    }
    return undefined;
  };
  const leadingBatch = (o: string) => s1.shapes.get(o)?.[0] === 1 && s2.shapes.get(o)?.[0] === 2;
  return walk(value);
}

const isNums = (s: Shape | undefined): s is number[] => !!s && s.every((d) => typeof d === 'number');

/**
 * The original on three random examples, one at a time, against the rewritten model on the three as one
 * batch and on the first alone. Returns the max relative error, or why it failed (naming the first node whose
 * output differs).
 */
async function verifyBatch(original: Model, rewritten: Model, batchFeeds: string[], probes: string[], opts: BatchOptions): Promise<number | string> {
  const tolerance = opts.tolerance ?? 1e-4, seed = opts.seed ?? 4321;
  const base = randomFeeds(original.graph, { seed, batch: 1 });
  const examples = [0, 1, 2].map((k) => {
    const f = randomFeeds(original.graph, { seed: seed + k, batch: 1 });
    return Object.fromEntries(Object.entries(base).map(([name, t]) => [name, batchFeeds.includes(name) ? f[name] : t]));
  });
  const batched: Record<string, Tensor> = { ...base };
  for (const name of batchFeeds) batched[name] = concat0(examples.map((e) => e[name]));
  const compare = async (names?: string[]): Promise<{ worst: number; at?: string }> => {
    const [orig, rew] = names ? [withOutputs(original, names), withOutputs(rewritten, names)] : [original, rewritten];
    const so = await ortSession(orig, `${original.path ?? 'model'} (original)`);
    const refs: Record<string, Tensor>[] = [];
    try {
      for (const e of examples) refs.push(await runOrt(so, e));
    } finally {
      await so.release();
    }
    const sr = await ortSession(rew, `${original.path ?? 'model'} with a free batch`);
    try {
      const one = await runOrt(sr, examples[0]);
      const three = await runOrt(sr, batched);
      let worst = 0;
      for (const name of names ?? rewritten.graph.outputs.map((o) => o.name)) {
        const parts = split0(three[name], 3);
        const errs = [compareValues(one[name].numbers(), refs[0][name].numbers()), ...parts.map((p, k) => compareValues(p, refs[k][name].numbers()))];
        const e = Math.max(...errs.map((c) => c.maxRelError));
        if (names && e > tolerance) return { worst: e, at: name };
        worst = Math.max(worst, e);
      }
      return { worst };
    } finally {
      await sr.release();
    }
  };
  let r: { worst: number; at?: string };
  try {
    r = await compare();
  } catch (e) {
    return (e as Error).message;
  }
  if (r.worst <= tolerance) return r.worst;
  // the first node (in order) whose batched output differs per example
  let at: string | undefined;
  try {
    at = (await compare(probes)).at;
  } catch {
    at = undefined;
  }
  const node = at ? rewritten.graph.producers().get(at) : undefined;
  return `with the batch freed, outputs of a batch of 3 differ from the examples run one at a time (relative error ${r.worst.toExponential(2)})${node ? `; first at node ${nodeLabel(node)}` : ''}`;
}

function withOutputs(m: Model, names: string[]): Model {
  const c = cloneModel(m);
  const have = new Set(c.graph.outputs.map((o) => o.name));
  for (const n of names) if (!have.has(n)) c.graph.outputs.push({ name: n, dtype: 'float32' });
  return c;
}

function concat0(ts: Tensor[]): Tensor {
  const t0 = ts[0];
  const out = allocArray(t0.dtype, t0.size * ts.length);
  ts.forEach((t, k) => (out as unknown as { set(a: TypedArray, o: number): void }).set(t.data, k * t0.size));
  return Tensor.fromArray(t0.name, t0.dtype, [t0.dims[0] * ts.length, ...t0.dims.slice(1)], out);
}

function split0(t: Tensor, k: number): number[][] {
  const v = t.numbers(), n = v.length / k;
  if (!Number.isInteger(n) || t.dims[0] % k) return Array.from({ length: k }, () => [NaN]);
  return Array.from({ length: k }, (_, i) => v.slice(i * n, (i + 1) * n));
}

/**
 * For callers that load a model to train, check or fold: frees the batch when the inputs fix it at 1, logs
 * the rewritten nodes, and returns the model to use. When the batch cannot be freed: `required` throws the
 * reason (one line naming the node), otherwise it is logged and the model is returned as it is.
 */
export async function freeBatch(model: Model, opts: { log?: (msg: string) => void; required?: boolean } = {}): Promise<Model> {
  const r = await makeBatchSymbolic(model);
  const log = opts.log ?? (() => {});
  if (r.reason) {
    if (opts.required) throw new LinfoldError(`${r.reason}; export it with dynamic_axes={'${model.graph.feeds[0]?.name}': {0: 'batch'}}`);
    log(`batch: kept fixed (${r.reason})`);
    return model;
  }
  if (r.changed) log(describeBatch(r));
  return r.model;
}

/** One line: which inputs were fixed at 1 and which nodes were rewritten. */
export function describeBatch(r: BatchResult): string {
  const what = r.rewrites.map((w) => `${w.node} [${w.from.join(',')}]→[${w.to.join(',')}]`).join(', ');
  const verified = r.verifiedError !== undefined ? ` (verified with onnxruntime, a batch of 3 vs one at a time: max relative error ${r.verifiedError.toExponential(1)})` : '';
  return `batch: input${r.inputs.length > 1 ? 's' : ''} ${r.inputs.join(', ')} fixed at 1 → '${BATCH}'; ${r.rewrites.length ? `rewrote ${what}` : 'no constant to rewrite'}${verified}`;
}

