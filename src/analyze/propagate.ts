// One pass over the graph in topological order that follows, for every input-dependent value, its unit
// layout (which axes are channels) and the per-unit path state of units.ts. Census, path length and the
// core-network map all read its result.
//
// Rules (DESIGN.md §1, "Average path length"):
// - graph inputs: logN = 0, E = En = 0 per unit; float inputs have one unit axis (1 for rank 2 and NCHW,
//   the last for [batch, tokens, features]); integer inputs (token ids) are a single unit;
// - dense layers (Conv: dense within each group; ConvTranspose; Gemm; MatMul/Einsum with a constant
//   operand): every output unit collects its input units — logN = logsumexp, E = N-weighted mean, En =
//   plain mean; a depthwise conv keeps channels apart;
// - elementwise, unary, pooling, per-channel normalization and layout ops keep per-unit state (transposes
//   and reshapes of the channel axis are followed exactly; where they cannot be followed the state
//   collapses to its average unit, broadcast to the new layout — see units.ts collapseState);
// - Add/Sum/Sub/Mean of k input-dependent branches: logN = logsumexp, E = N-weighted mean, En = mean of the
//   branches; a Mul (gating) or MatMul/Einsum of two input-dependent tensors merges its operands the same way;
// - Concat along a unit axis concatenates the units (constant parts are units without paths);
// - an activation layer adds its per-channel nonlinearity indicator to E and En; nonlinear ops that are
//   not activations (Softmax, LayerNorm, MaxPool, gating Mul, …) add 1 to O and On instead.
// Every rule is built from the primitives of units.ts, which also carry the count distributions P/Pn and
// record the linear map the per-layer contributions are read back through; activation layers are numbered
// in the order this pass meets them (= Propagation.layers, = the census order). The distributions of a
// value are released once the last op reading it has run (graph outputs keep theirs).
import { topologicalOrder, type Graph, type Node, type Shape, type Tensor, attrInt, attrInts, attrString, nodeLabel } from '../import/ir.js';
import { normAxis } from '../import/shape-math.js';
import { Constants, completeShapes, intsArg, isNum, reduceAxes, carriesUnits } from './shapes.js';
import { opFacts, type OtherNonlinearKind } from '../import/ops/index.js';
import { type ActivationMatch, type OtherPatternMatch, matchPatterns } from './patterns.js';
import {
  type UnitState, inputState, emptyState, broadcastState, unionLayout, mergeStates, reduceUnits, collapseState, remapAxes,
  selectUnits, concatUnits, addIndicator, addEverywhere, unitCount, stackUnits, releaseVectors,
} from './units.js';

export type { OtherNonlinearKind };

/** A nonlinear op that is not an activation; counted per path in O/On, not in APL unless asked. */
export interface OtherNonlinearOp {
  kind: OtherNonlinearKind;
  /** Name of the node (the last node for a decomposed pattern). */
  node: string;
  opType: string;
  /** All nodes of a decomposed pattern (LayerNorm as ReduceMean/Sub/Pow/…); [node] otherwise. */
  nodes: string[];
}

/** An Add/Sum/Sub/Mean of two or more input-dependent branches (a residual merge). */
export interface MergeOp { node: string; opType: string; branches: number }

/** An op linfold does not know: treated as an elementwise pass-through merging its dynamic inputs. */
export interface OpaqueOp { node: string; opType: string; domain: string }

export interface LayerLayout {
  match: ActivationMatch;
  /** Rank of the activation's tensor, when known. */
  rank?: number;
  /** The channel axes of the activation (one axis except in unusual layouts), and their sizes. */
  channelAxes: number[];
  channelDims: number[];
  /** Per channel, flat over channelAxes: true = identity on the whole real line. */
  linearMask: boolean[];
}

export interface PropagateOptions {
  /** Tolerance on |a − 1| (PRelu/LeakyRelu slope, blend coefficient) for a channel to count as linear. Default 0.01. */
  eps?: number;
  /** Values folded to constants by shape inference. */
  constants?: Map<string, Tensor>;
  /** Shapes at batch 1, for reshapes that mix the batch with unit axes (see reshape); computed on first need. */
  exampleShapes?: () => Map<string, Shape> | undefined;
  /** The model's default-domain opset, for the shape rules of values without a shape (default: the latest). */
  opset?: number;
}

export interface Propagation {
  /**
   * Per input-dependent value, its unit state. The count distributions (P/Pn) are kept only for graph
   * outputs: for other values they are released once the last op reading them has run (`released` set).
   */
  states: Map<string, UnitState>;
  layers: LayerLayout[];
  others: OtherNonlinearOp[];
  merges: MergeOp[];
  opaque: OpaqueOp[];
  warnings: string[];
  /** Values that are the output of a Sigmoid/HardSigmoid gate. */
  gateOutputs: Set<string>;
  order: Node[];
  shapes: Map<string, Shape | undefined>;
  consts: Constants;
  otherPatterns: OtherPatternMatch[];
}

export function propagate(graph: Graph, opts: PropagateOptions = {}): Propagation {
  return new Engine(graph, opts).run();
}

class Engine {
  private readonly eps: number;
  private readonly consts: Constants;
  private readonly order: Node[];
  private readonly shapes: Map<string, Shape | undefined>;
  private readonly states = new Map<string, UnitState>();
  private readonly layers: LayerLayout[] = [];
  private readonly others: OtherNonlinearOp[] = [];
  private readonly merges: MergeOp[] = [];
  private readonly opaque: OpaqueOp[] = [];
  private readonly warnings: string[] = [];
  private readonly warned = new Set<string>();
  private readonly gateOutputs = new Set<string>();
  private readonly gatingMuls = new Set<Node>();
  private readonly prod: Map<string, Node>;
  private readonly cons: Map<string, Node[]>;
  private readonly actByNode = new Map<Node, ActivationMatch>();
  private readonly otherByNode = new Map<Node, OtherPatternMatch>();
  private otherPatterns: OtherPatternMatch[] = [];

  private readonly exampleShapesOf?: () => Map<string, Shape> | undefined;
  private exampleShapes?: Map<string, Shape>;

  constructor(private readonly graph: Graph, opts: PropagateOptions) {
    this.eps = opts.eps ?? 0.01;
    this.exampleShapesOf = opts.exampleShapes;
    this.consts = new Constants(graph, opts.constants);
    this.order = topologicalOrder(graph);
    this.shapes = completeShapes(graph, this.order, this.consts, opts.opset);
    this.prod = graph.producers();
    this.cons = graph.consumers();
  }

  run(): Propagation {
    const matches = matchPatterns(this.graph, this.consts);
    for (const m of matches.activations) {
      for (const n of m.nodes) this.actByNode.set(n, m);
      if (m.gatingMuls.length) this.gateOutputs.add(m.output);
      for (const g of m.gatingMuls) this.gatingMuls.add(g);
    }
    for (const m of matches.others) for (const n of m.nodes) this.otherByNode.set(n, m);
    this.otherPatterns = matches.others;
    const { byPos: lastUse, read } = this.lastUses(matches.activations, matches.others);
    const keep = new Set(this.graph.outputs.map((o) => o.name));
    const release = (v: string) => {
      const s = this.states.get(v);
      if (s && !s.released && !keep.has(v)) this.states.set(v, releaseVectors(s));
    };
    this.initInputs();
    for (const v of this.graph.feeds) if (!read.has(v.name)) release(v.name);
    for (let i = 0; i < this.order.length; i++) {
      this.step(this.order[i]);
      // distributions of values no later op reads are dropped (memory stays proportional to the live values)
      for (const v of lastUse.get(i) ?? []) release(v);
    }
    return {
      states: this.states, layers: this.layers, others: this.others, merges: this.merges, opaque: this.opaque,
      warnings: this.warnings, gateOutputs: this.gateOutputs, order: this.order, shapes: this.shapes, consts: this.consts,
      otherPatterns: this.otherPatterns,
    };
  }

  /**
   * For each position in `order`, the values read for the last time when that node is processed. A node
   * inside an activation or other-op pattern is processed with the pattern's output node (the pattern reads
   * its input then), so its reads count at the latest of the pattern's nodes. Values nothing reads are
   * released right after the node that writes them.
   */
  private lastUses(acts: ActivationMatch[], others: OtherPatternMatch[]): { byPos: Map<number, string[]>; read: Set<string> } {
    const pos = new Map<Node, number>();
    this.order.forEach((n, i) => pos.set(n, i));
    const at = new Map<Node, number>(pos);
    for (const m of [...acts, ...others]) {
      const end = Math.max(...m.nodes.map((n) => pos.get(n) ?? -1));
      for (const n of m.nodes) if (at.has(n) && at.get(n)! < end) at.set(n, end);
    }
    const last = new Map<string, number>();
    for (const n of this.order) {
      const i = at.get(n)!;
      for (const v of n.inputs) if (v && (last.get(v) ?? -1) < i) last.set(v, i);
    }
    const read = new Set(last.keys());
    this.order.forEach((n, i) => {
      for (const o of n.outputs) if (o && !last.has(o)) last.set(o, i);
    });
    const byPos = new Map<number, string[]>();
    for (const [v, i] of last) {
      const l = byPos.get(i);
      if (l) l.push(v);
      else byPos.set(i, [v]);
    }
    return { byPos, read };
  }

  private step(n: Node): void {
    const act = this.actByNode.get(n);
    if (act) {
      if (n.outputs.includes(act.output)) this.activation(act);
      return;
    }
    const other = this.otherByNode.get(n);
    if (other) {
      if (n.outputs.includes(other.output)) this.otherPattern(other);
      return;
    }
    try {
      this.node(n);
      this.secondaryOutputs(n);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith('internal:')) throw e;
      // a layout this pass did not anticipate: keep going with the average unit
      this.warn(`${nodeLabel(n)}: channel layout not followed (${e.message.slice(10)}); its outputs use the average unit`);
      const ins = this.dynInputs(n);
      if (ins.length) for (const o of n.outputs) if (o) this.states.set(o, mergeStates(ins.map(collapseState), undefined));
    }
  }

  /**
   * Outputs an op rule left without state (BatchNorm/LayerNorm statistics, Dropout masks, TopK/MaxPool
   * indices, …) still depend on the input: they get the average unit of the node's dynamic inputs.
   */
  private secondaryOutputs(n: Node): void {
    if (opFacts(n.opType, n.domain)?.path?.rule === 'none') return;
    const missing = n.outputs.filter((o) => o && !this.states.has(o));
    if (!missing.length) return;
    const ins = this.dynInputs(n);
    if (!ins.length) return;
    const avg = mergeStates(ins.map(collapseState), undefined);
    for (const o of missing) this.set(o, avg);
  }

  private warn(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    this.warnings.push(msg);
  }

  // ---- helpers ----
  private shape(v: string): Shape | undefined {
    return v ? this.shapes.get(v) ?? this.consts.get(v)?.dims : undefined;
  }
  private rank(v: string): number | undefined {
    return this.shape(v)?.length;
  }
  private dim(v: string, axis: number): number | undefined {
    const d = this.shape(v)?.[axis];
    return isNum(d) ? d : undefined;
  }
  private st(v: string): UnitState | undefined {
    return v ? this.states.get(v) : undefined;
  }
  private dynInputs(n: Node): UnitState[] {
    return n.inputs.map((i) => this.st(i)).filter((s): s is UnitState => !!s);
  }

  /** Aligns a state to a (larger) rank: numpy broadcasting prepends axes. */
  private toRank(s: UnitState, rank: number | undefined): UnitState {
    if (!s.axes.length) return { ...s, rank };
    if (rank === undefined) return collapseState(s);
    if (s.rank === rank) return s;
    if (s.rank !== undefined && s.rank < rank) return { ...s, rank, axes: s.axes.map((a) => a + rank - s.rank!) };
    return collapseState(s);
  }

  /**
   * Stores an output state after checking it against the output's shape: a unit axis whose size disagrees
   * with the shape (a Pad or Tile along channels, a resize we do not model) is averaged and re-broadcast.
   */
  private set(v: string, s: UnitState): void {
    if (!v) return;
    const shape = this.shape(v);
    const R = shape?.length;
    if (R !== undefined && s.axes.length && s.rank !== R) {
      this.warn(`'${v}': rank ${R} but the channel layout was followed at rank ${s.rank}; using the average unit`);
      s = collapseState(s);
    }
    if (R !== undefined && s.axes.length) {
      const bad = s.axes.filter((a, j) => isNum(shape![a]) && shape![a] !== s.dims[j] && s.dims[j] !== 1);
      if (bad.length) s = reduceUnits(s, bad, true);
      const dims = s.axes.map((a, j) => (isNum(shape![a]) ? (shape![a] as number) : s.dims[j]));
      if (dims.some((d, j) => d !== s.dims[j])) s = broadcastState(s, R, s.axes, dims);
    }
    this.states.set(v, { ...s, rank: R ?? s.rank });
  }

  /** Reduces unit axes outside `axes` (averaging positions) and broadcasts to exactly `axes`/`dims`. */
  private fitState(s: UnitState, rank: number | undefined, axes: number[], dims: number[]): UnitState {
    let t = this.toRank(s, rank);
    const extra = t.axes.filter((a) => !axes.includes(a));
    if (extra.length) t = reduceUnits(t, extra, true);
    const bad = t.axes.some((a, j) => t.dims[j] !== 1 && t.dims[j] !== dims[axes.indexOf(a)]);
    if (bad) t = collapseState(t);
    return broadcastState(t, rank, axes, dims);
  }

  /** Channel axis for a tensor whose layout was not followed: from the ops that produced it. */
  private defaultAxis(v: string, rank: number | undefined): number | undefined {
    if (rank === undefined || rank === 0) return undefined;
    if (rank <= 2) return rank - 1;
    let cur: string | undefined = v;
    for (let hop = 0; cur && hop < 16; hop++) {
      const p = this.prod.get(cur);
      if (!p) break;
      const channels = opFacts(p.opType, p.domain)?.channels;
      if (channels) return channels === 'first' ? 1 : rank - 1;
      cur = p.inputs.find((i) => this.states.has(i));
    }
    return rank >= 4 ? 1 : rank - 1;
  }

  // ---- inputs ----
  private initInputs(): void {
    for (const v of this.graph.feeds) {
      const shape = this.shape(v.name) ?? v.shape;
      const rank = shape?.length;
      if (!carriesUnits(v.dtype) || rank === undefined || rank === 0) {
        this.states.set(v.name, inputState(rank, [], []));
        continue;
      }
      let axis = rank <= 2 ? rank - 1 : 1;
      if (rank === 3 && !this.feedsConv(v.name)) axis = 2;
      const d = shape![axis];
      if (!isNum(d)) this.warn(`input '${v.name}': channel dimension ${axis} is symbolic ('${d}'); counted as one unit`);
      this.states.set(v.name, inputState(rank, [axis], [isNum(d) ? d : 1]));
    }
  }

  /** Whether a rank-3 input reaches a Conv-like op before a dense one (Conv1d layout: channels on axis 1). */
  private feedsConv(v: string): boolean {
    const seen = new Set<string>();
    const queue = [v];
    while (queue.length) {
      const cur = queue.shift()!;
      if (seen.has(cur)) continue;
      seen.add(cur);
      for (const c of this.cons.get(cur) ?? []) {
        const channels = opFacts(c.opType, c.domain)?.channels;
        if (channels) return channels === 'first';
        queue.push(...c.outputs.filter(Boolean));
      }
    }
    return false;
  }

  // ---- activations ----
  private activation(m: ActivationMatch): void {
    const s0 = this.st(m.input);
    const R = this.rank(m.input) ?? this.rank(m.output) ?? s0?.rank;
    let axes: number[] = [];
    let dims: number[] = [];
    const slope = m.slope?.tensor;
    let slopeUnits: number[] | undefined;
    if (slope && slope.size > 1) {
      const q = slope.dims.length;
      const r = Math.max(R ?? q, q);
      slope.dims.forEach((d, t) => {
        if (d > 1) {
          axes.push(r - q + t);
          dims.push(d);
        }
      });
      slopeUnits = slope.numbers();
    }
    const base = s0 ? this.toRank(s0, R) : undefined;
    if (!axes.length) {
      if (base && base.axes.length) {
        axes = [...base.axes];
        dims = [...base.dims];
      } else {
        const a = this.defaultAxis(m.input, R);
        if (a !== undefined) {
          axes = [a];
          dims = [this.dim(m.input, a) ?? this.dim(m.output, a) ?? 1];
        }
      }
    } else if (base && base.axes.length && (base.axes.length !== axes.length || base.axes.some((a, j) => a !== axes[j]))) {
      this.warn(`${this.layerLabel(m)}: slope '${m.slope!.value}' varies along axis ${axes.join(',')} but the tensor's channels are on axis ${base.axes.join(',')}`);
    }
    const units = unitCount(dims);
    let linear: boolean[];
    if (m.identity) linear = new Array(units).fill(true);
    else if (m.scalarSlope !== undefined) linear = new Array(units).fill(Math.abs(m.scalarSlope - 1) <= this.eps);
    else if (m.slope && !slope) {
      this.warn(`${this.layerLabel(m)}: slope '${m.slope.value}' is computed at run time; all channels counted nonlinear`);
      linear = new Array(units).fill(false);
    } else if (slope && slope.size === 1) linear = new Array(units).fill(Math.abs(slope.numbers()[0] - 1) <= this.eps);
    else if (slopeUnits) linear = slopeUnits.map((a) => Math.abs(a - 1) <= this.eps);
    else linear = new Array(units).fill(false);
    const layer = this.layers.length;
    this.layers.push({ match: m, rank: R, channelAxes: axes, channelDims: dims, linearMask: linear });
    if (!base) return;
    const ind = linear.map((l) => (l ? 0 : 1));
    let s = base;
    const lay = unionLayout([s, inputState(R, axes, dims)], R);
    if (!lay) s = collapseState(s);
    this.set(m.output, addIndicator(s, R, axes, dims, ind, 'act', layer));
  }

  private layerLabel(m: ActivationMatch): string {
    const last = m.nodes[m.nodes.length - 1];
    return nodeLabel(last);
  }

  private otherPattern(m: OtherPatternMatch): void {
    const s = this.st(m.input);
    const last = m.nodes[m.nodes.length - 1];
    this.others.push({ kind: m.kind, node: last.name || last.outputs[0], opType: m.kind === 'layernorm' ? 'LayerNormalization (decomposed)' : 'RMSNormalization (decomposed)', nodes: m.nodes.map((n) => n.name || n.outputs[0]) });
    if (s) this.set(m.output, addEverywhere(this.toRank(s, this.rank(m.output)), 1, 'other'));
  }

  private other(n: Node, kind: OtherNonlinearKind): void {
    this.others.push({ kind, node: n.name || n.outputs[0], opType: n.opType, nodes: [n.name || n.outputs[0]] });
  }

  // ---- ops ----
  /** Applies the op's path rule (src/import/ops/: the op's spec); an op without one is opaque. */
  private node(n: Node): void {
    if (!this.dynInputs(n).length) return;
    const path = opFacts(n.opType, n.domain)?.path;
    if (!path) return this.opaqueOp(n);
    const transposed = (name: string) => attrInt(n, name, 0) === 1;
    switch (path.rule) {
      case 'none': return;
      case 'elementwise': return this.elementwise(n, path.nonlinear, path.merge);
      case 'unary': return this.unary(n, path.nonlinear);
      case 'conv': return this.conv(n, path.weight ?? 1, path.bias ?? 2);
      case 'gemm': return this.gemm(n);
      case 'matmul': return this.matmul(n, transposed('transA'), transposed('transB'), path.weight ?? 1);
      case 'einsum': return this.einsum(n);
      case 'gather': return this.gather(n);
      case 'transpose': return this.transpose(n);
      case 'reshape': return this.reshape(n);
      case 'concat': return this.concat(n);
      case 'slice': return this.slice(n);
      case 'split': return this.split(n);
      case 'depth-space': return this.depthSpace(n);
      case 'reduce': return this.reduce(n, path.nonlinear);
      case 'recurrent': return this.recurrent(n);
      case 'batchnorm': return this.unary(n, transposed('training_mode') ? 'batchnorm_training' : undefined);
      case 'product': {
        if (n.inputs.filter((i) => this.states.has(i)).length < 2) return this.elementwise(n);
        if (n.opType === 'Div') return this.elementwise(n, 'activation_div');
        return this.elementwise(n, this.gatingMuls.has(n) ? 'gating_mul' : 'activation_mul');
      }
      case 'power': {
        const e = this.consts.scalar(n.inputs[1]);
        return this.elementwise(n, e === 1 && !this.states.has(n.inputs[1]) ? undefined : 'elementwise');
      }
      case 'skip-norm': {
        const s = this.mergeInputs(n, n.inputs.slice(0, 2), true);
        this.other(n, path.nonlinear!);
        if (s) this.set(n.outputs[0], addEverywhere(s, 1, 'other'));
        return;
      }
    }
  }

  private opaqueOp(n: Node): void {
    this.opaque.push({ node: n.name || n.outputs[0], opType: n.opType, domain: n.domain });
    const ins = this.dynInputs(n);
    for (const o of n.outputs) {
      if (!o) continue;
      const R = this.rank(o);
      const sameRank = ins.every((s) => !s.axes.length || (s.rank !== undefined && R !== undefined && s.rank <= R));
      this.set(o, mergeStates(sameRank ? ins.map((s) => this.toRank(s, R)) : ins.map(collapseState), sameRank ? R : undefined));
    }
  }

  /** Merges the dynamic inputs among `names`, aligned to the output's rank. */
  private mergeInputs(n: Node, names: string[], record: boolean): UnitState | undefined {
    const R = this.rank(n.outputs[0]) ?? Math.max(...names.map((i) => this.st(i)?.rank ?? 0));
    const ss = names.map((i) => this.st(i)).filter((s): s is UnitState => !!s).map((s) => this.toRank(s, R));
    if (!ss.length) return undefined;
    if (record && ss.length >= 2) this.merges.push({ node: n.name || n.outputs[0], opType: n.opType, branches: ss.length });
    return mergeStates(ss, R);
  }

  /** Elementwise op (any arity): merges input-dependent operands; optional nonlinear-op count. */
  private elementwise(n: Node, kind?: OtherNonlinearKind, merge = false): void {
    let s = this.mergeInputs(n, n.inputs, merge);
    if (!s) return;
    if (kind) {
      this.other(n, kind);
      s = addEverywhere(s, 1, 'other');
    }
    this.set(n.outputs[0], s);
    // secondary outputs (Dropout mask, …) carry no signal
  }

  /** Per-unit op on its first input (normalizations, pools, softmax); other dynamic inputs merge in. */
  private unary(n: Node, kind?: OtherNonlinearKind): void {
    const op = n.opType;
    let s = this.mergeInputs(n, n.inputs, false);
    if (!s) return;
    if (/Pool$/.test(op) || op === 'MaxRoiPool') {
      // pooling mixes positions, not channels: unit axes other than the channel axis are averaged
      const spatial = s.axes.filter((a) => a > 1);
      if (spatial.length) s = reduceUnits(s, spatial, true);
    }
    if (kind) {
      this.other(n, kind);
      s = addEverywhere(s, 1, 'other');
    }
    this.set(n.outputs[0], s);
  }

  private reduce(n: Node, kind: OtherNonlinearKind | undefined): void {
    const x = this.st(n.inputs[0]);
    if (!x) return this.elementwise(n);
    const R = this.rank(n.inputs[0]) ?? x.rank;
    let s = this.toRank(x, R);
    if (R === undefined) {
      s = collapseState(s);
    } else {
      const axes = reduceAxes(n, R, this.consts) ?? [...Array(R).keys()];
      const keep = attrInt(n, 'keepdims', 1) === 1;
      const unitAxes = s.axes.filter((a) => axes.includes(a));
      // a reduction over channels sums their paths (a dense layer with one output)
      if (unitAxes.length) s = reduceUnits(s, unitAxes);
      if (!keep) {
        const outRank = R - axes.length;
        s = remapAxes(s, outRank, (a) => a - axes.filter((r) => r < a).length);
      }
    }
    if (kind) {
      this.other(n, kind);
      s = addEverywhere(s, 1, 'other');
    }
    this.set(n.outputs[0], s);
  }

  private conv(n: Node, wi: number, bi: number): void {
    const x = this.st(n.inputs[0]);
    const out = n.outputs[0];
    const wDyn = this.st(n.inputs[wi] ?? '');
    const bDyn = this.st(n.inputs[bi] ?? '');
    const wShape = this.shape(n.inputs[wi] ?? '');
    const R = this.rank(n.inputs[0]) ?? this.rank(out) ?? x?.rank ?? wShape?.length;
    const g = attrInt(n, 'group', 1);
    const transposed = n.opType === 'ConvTranspose';
    const C = this.dim(n.inputs[0], 1) ?? (isNum(wShape?.[transposed ? 0 : 1]) ? (wShape![transposed ? 0 : 1] as number) * (transposed ? 1 : g) : undefined);
    const M = this.dim(out, 1) ?? (isNum(wShape?.[transposed ? 1 : 0]) ? (wShape![transposed ? 1 : 0] as number) * (transposed ? g : 1) : undefined);
    let s: UnitState | undefined;
    if (x && R !== undefined && C !== undefined && M !== undefined && C % g === 0 && M % g === 0) {
      const xs = this.fitState(x, R, [1], [C]);
      s = groupedDense(xs, g, M / g);
    } else if (x) {
      this.warn(`${nodeLabel(n)}: channel counts unknown; treated as one dense unit`);
      s = collapseState(x);
    }
    const extra = [wDyn, bDyn].filter((t): t is UnitState => !!t).map(collapseState);
    if (wDyn) this.other(n, 'activation_matmul');
    if (extra.length) s = mergeStates([...(s ? [s] : []), ...extra.map((e) => this.toRank(e, R))], R);
    if (wDyn && s) s = addEverywhere(s, 1, 'other');
    if (s) this.set(out, s);
  }

  private gemm(n: Node): void {
    const tA = attrInt(n, 'transA', 0) === 1;
    const tB = attrInt(n, 'transB', 0) === 1;
    this.contract(n, [
      { value: n.inputs[0], letters: tA ? ['k', 'i'] : ['i', 'k'] },
      { value: n.inputs[1], letters: tB ? ['j', 'k'] : ['k', 'j'] },
    ], ['i', 'j'], n.inputs[2] ? [n.inputs[2]] : []);
  }

  private matmul(n: Node, tA: boolean, tB: boolean, bi = 1): void {
    const ra = this.rank(n.inputs[0]) ?? this.st(n.inputs[0])?.rank;
    const rb = this.rank(n.inputs[bi]) ?? this.st(n.inputs[bi])?.rank;
    if (ra === undefined || rb === undefined) return this.fallbackDense(n);
    const nb = Math.max(ra, rb, 2) - 2;
    const batch = Array.from({ length: nb }, (_, i) => `b${i}`);
    const la = ra === 1 ? ['k'] : [...batch.slice(nb - (ra - 2)), ...(tA ? ['k', 'i'] : ['i', 'k'])];
    const lb = rb === 1 ? ['k'] : [...batch.slice(nb - (rb - 2)), ...(tB ? ['j', 'k'] : ['k', 'j'])];
    const lo = [...batch, ...(ra === 1 ? [] : ['i']), ...(rb === 1 ? [] : ['j'])];
    this.contract(n, [{ value: n.inputs[0], letters: la }, { value: n.inputs[bi], letters: lb }], lo, []);
  }

  private einsum(n: Node): void {
    const eq = attrString(n, 'equation', '').replace(/\s+/g, '');
    const [lhs, rhs0] = eq.split('->');
    const terms = lhs.split(',');
    const ranks = n.inputs.map((i) => this.rank(i) ?? this.st(i)?.rank);
    if (ranks.some((r) => r === undefined) || terms.length !== n.inputs.length) return this.fallbackDense(n);
    let ell = 0;
    terms.forEach((t, k) => {
      if (t.includes('...')) ell = Math.max(ell, ranks[k]! - (t.length - 3));
    });
    const E = Array.from({ length: ell }, (_, i) => `.${i}`);
    const expand = (t: string, r: number): string[] => {
      const parts = t.split('...');
      if (parts.length === 1) return [...t];
      const k = r - (parts[0].length + parts[1].length);
      return [...parts[0], ...E.slice(ell - k), ...parts[1]];
    };
    const letters = terms.map((t, k) => expand(t, ranks[k]!));
    let out: string[];
    if (rhs0 !== undefined) out = expand(rhs0, rhs0.replace('...', '').length + ell);
    else {
      const count = new Map<string, number>();
      for (const l of letters.flat()) if (!l.startsWith('.')) count.set(l, (count.get(l) ?? 0) + 1);
      out = [...E, ...[...count.keys()].filter((l) => count.get(l) === 1).sort()];
    }
    this.contract(n, n.inputs.map((v, k) => ({ value: v, letters: letters[k] })), out, []);
  }

  /**
   * A contraction (Gemm, MatMul, Einsum) in einsum terms. For each input-dependent operand: unit axes whose
   * letter is summed over are reduced densely; the others move to their output position. One dynamic
   * operand whose channels were contracted takes its new channels from the letters only constant operands
   * bring (a Linear layer's output features). Two or more dynamic operands merge like an Add and count as
   * an activation MatMul.
   */
  private contract(n: Node, operands: { value: string; letters: string[] }[], out: string[], extras: string[]): void {
    const outV = n.outputs[0];
    const R = out.length;
    const contribs: UnitState[] = [];
    let contractedUnits = false;
    let dynLetters: string[] = [];
    for (const o of operands) {
      const x = this.st(o.value);
      if (!x) continue;
      const r = o.letters.length;
      let s = this.toRank(x, r);
      if (!s.axes.length) {
        // layout lost (or a single-unit tensor): the contracted axes are taken to be channels
        const ax = o.letters.map((l, a) => (out.includes(l) ? -1 : a)).filter((a) => a >= 0);
        const dims = ax.map((a) => this.dim(o.value, a) ?? 1);
        s = broadcastState(s, r, ax, dims);
      }
      const gone = s.axes.filter((a) => !out.includes(o.letters[a]));
      if (gone.length) {
        contractedUnits = true;
        s = reduceUnits(s, gone);
      }
      s = remapAxes(s, R, (a) => out.indexOf(o.letters[a]));
      contribs.push(s);
      dynLetters = dynLetters.concat(o.letters);
    }
    if (!contribs.length) return;
    let s: UnitState;
    if (contribs.length === 1) {
      s = contribs[0];
      if (contractedUnits) {
        const fresh = out.map((l, a) => ({ l, a })).filter(({ l }) => !dynLetters.includes(l) && operands.some((o) => o.letters.includes(l)));
        const axes = fresh.map(({ a }) => a);
        if (axes.length) {
          const dims = fresh.map(({ l, a }) => this.dim(outV, a) ?? this.letterDim(operands, l) ?? 1);
          const lay = unionLayout([s, inputState(R, axes, dims)], R)!;
          s = broadcastState(s, R, lay.axes, lay.dims);
        }
      }
    } else {
      this.other(n, 'activation_matmul');
      s = addEverywhere(mergeStates(contribs, R), 1, 'other');
    }
    const extra = extras.map((e) => this.st(e)).filter((t): t is UnitState => !!t);
    if (extra.length) s = mergeStates([s, ...extra.map((t) => this.toRank(t, R))], R);
    this.set(outV, s);
  }

  private letterDim(operands: { value: string; letters: string[] }[], l: string): number | undefined {
    for (const o of operands) {
      const a = o.letters.indexOf(l);
      if (a >= 0) {
        const d = this.dim(o.value, a);
        if (d !== undefined) return d;
      }
    }
    return undefined;
  }

  /** A dense op whose operand ranks are unknown: the average unit, one dense step. */
  private fallbackDense(n: Node): void {
    this.warn(`${nodeLabel(n)}: operand ranks unknown; treated as one dense unit`);
    const ins = this.dynInputs(n).map(collapseState);
    if (ins.length >= 2) this.other(n, 'activation_matmul');
    let s = mergeStates(ins, undefined);
    if (ins.length >= 2) s = addEverywhere(s, 1, 'other');
    this.set(n.outputs[0], s);
  }

  private gather(n: Node): void {
    const data = this.st(n.inputs[0]);
    const idx = this.st(n.inputs[1]);
    const out = n.outputs[0];
    const R = this.rank(out);
    const rd = this.rank(n.inputs[0]) ?? data?.rank;
    const ri = this.rank(n.inputs[1]) ?? idx?.rank ?? this.consts.get(n.inputs[1])?.dims.length;
    if (rd === undefined || ri === undefined) return this.opaqueLike(n);
    const axis = normAxis(attrInt(n, 'axis', 0), rd);
    const outRank = R ?? rd - 1 + ri;
    const shift = (a: number) => (a < axis ? a : a + ri - 1);
    if (data && !idx) {
      let s = this.toRank(data, rd);
      if (s.axes.includes(axis)) {
        const ids = this.consts.numbers(n.inputs[1]);
        const d = s.dims[s.axes.indexOf(axis)];
        if (ids && ri <= 1) {
          s = selectUnits(s, axis, ids.map((i) => (i < 0 ? i + d : i)));
          if (ri === 0) s = remapAxes(reduceUnits(s, [axis], true), outRank, shift);
          else s = remapAxes(s, outRank, shift);
        } else {
          s = remapAxes(reduceUnits(s, [axis], true), outRank, shift);
        }
      } else s = remapAxes(s, outRank, shift);
      return this.set(out, s);
    }
    if (idx && !data) {
      // embedding lookup: the table's remaining axes are the new channels, each reached from the ids' units
      let s = reduceUnits(idx, idx.axes);
      const axes: number[] = [];
      const dims: number[] = [];
      const dshape = this.shape(n.inputs[0]);
      for (let a = 0; a < rd; a++) {
        if (a === axis) continue;
        const oa = a < axis ? a : a + ri - 1;
        axes.push(oa);
        dims.push(this.dim(out, oa) ?? (isNum(dshape?.[a]) ? (dshape![a] as number) : 1));
      }
      const keep = axes.map((a, j) => ({ a, d: dims[j] })).filter(({ d }) => d > 1 || axes.length === 1);
      s = broadcastState({ ...s, rank: outRank }, outRank, keep.map((k) => k.a), keep.map((k) => k.d));
      return this.set(out, s);
    }
    return this.opaqueLike(n);
  }

  /** Merge of dynamic inputs with the output's layout kept when ranks allow (no opaque report). */
  private opaqueLike(n: Node): void {
    const ins = this.dynInputs(n);
    const R = this.rank(n.outputs[0]);
    const ok = ins.every((s) => !s.axes.length || (R !== undefined && s.rank !== undefined && s.rank <= R));
    this.set(n.outputs[0], mergeStates(ok ? ins.map((s) => this.toRank(s, R)) : ins.map(collapseState), ok ? R : undefined));
  }

  private transpose(n: Node): void {
    const x = this.st(n.inputs[0])!;
    const R = this.rank(n.inputs[0]) ?? x.rank;
    if (R === undefined) return this.set(n.outputs[0], collapseState(x));
    const perm = attrInts(n, 'perm') ?? [...Array(R).keys()].reverse();
    this.set(n.outputs[0], remapAxes(this.toRank(x, R), R, (a) => perm.indexOf(a)));
  }

  /**
   * Reshape/Flatten/Squeeze/Unsqueeze: dims are grouped from the right into runs with equal products; a run
   * holding a channel axis turns all its new axes into channel axes (row-major order is unchanged, so a
   * Flatten of [N, C, H, W] gives C·H·W units, each with its channel's state, and a split of 32 features
   * into 4 heads × 8 keeps every unit). A run that cannot be matched collapses to the average unit.
   */
  /** A reshape matched on the shapes at batch 1 (inferred once, the first time one is needed). */
  private reshapeAtBatchOne(x: UnitState, n: Node, rank: number): UnitState | undefined {
    this.exampleShapes ??= this.exampleShapesOf?.() ?? new Map();
    const exIn = this.exampleShapes.get(n.inputs[0]), exOut = this.exampleShapes.get(n.outputs[0]);
    if (!exIn?.every(isNum) || !exOut?.every(isNum) || exIn.length !== rank) return undefined;
    return reshapeUnits(this.toRank(x, rank), exIn, exOut);
  }

  private reshape(n: Node): void {
    const x = this.st(n.inputs[0])!;
    const inShape = this.shape(n.inputs[0]);
    const outShape = this.shape(n.outputs[0]);
    let s = x;
    if (inShape && outShape) {
      // attention's [seq, batch, d] → [seq, batch·heads, d/heads] cannot be matched while the batch is symbolic;
      // path lengths are per example, so it is matched on the shapes at batch 1
      const r = reshapeUnits(this.toRank(x, inShape.length), inShape, outShape) ?? this.reshapeAtBatchOne(x, n, inShape.length);
      if (r) return this.set(n.outputs[0], r);
      if (x.axes.length) this.warn(`${nodeLabel(n)}: channels not followed through [${inShape}] → [${outShape}]; using the average unit`);
      return this.set(n.outputs[0], { ...collapseState(x), rank: outShape.length });
    }
    const R = inShape?.length ?? x.rank;
    if ((n.opType === 'Squeeze' || n.opType === 'Unsqueeze') && R !== undefined) {
      const axes = intsArg(n, 'axes', 1, this.consts);
      if (axes) {
        s = this.toRank(x, R);
        if (n.opType === 'Unsqueeze') {
          const outR = R + axes.length;
          const na = axes.map((a) => normAxis(a, outR)).sort((p, q) => p - q);
          const map = (a: number) => { let p = a; for (const u of na) if (u <= p) p++; return p; };
          return this.set(n.outputs[0], remapAxes(s, outR, map));
        }
        const na = axes.map((a) => normAxis(a, R));
        s = reduceUnits(s, s.axes.filter((a) => na.includes(a)), true);
        return this.set(n.outputs[0], remapAxes(s, R - na.length, (a) => a - na.filter((q) => q < a).length));
      }
    }
    if (x.axes.length) this.warn(`${nodeLabel(n)}: shapes unknown; channels not followed`);
    this.set(n.outputs[0], { ...collapseState(x), rank: outShape?.length });
  }

  private concat(n: Node): void {
    const out = n.outputs[0];
    const R = this.rank(out) ?? Math.max(...this.dynInputs(n).map((s) => s.rank ?? 0));
    const axis = normAxis(attrInt(n, 'axis', 0), R);
    const parts = n.inputs.map((v) => ({ v, s: this.st(v) ? this.toRank(this.st(v)!, R) : undefined }));
    const onUnits = parts.some((p) => p.s?.axes.includes(axis));
    if (!onUnits) return this.set(out, mergeStates(parts.filter((p) => p.s).map((p) => p.s!), R));
    const lay = unionLayout(parts.filter((p) => p.s).map((p) => p.s!).map((s) => (s.axes.includes(axis) ? reduceUnits(s, [axis], true) : s)), R);
    const sizes = parts.map((p) => (p.s?.axes.includes(axis) ? p.s.dims[p.s.axes.indexOf(axis)] : this.dim(p.v, axis)));
    if (!lay || sizes.some((d) => d === undefined)) {
      this.warn(`${nodeLabel(n)}: concatenated channel counts unknown; using the average unit`);
      return this.set(out, mergeStates(parts.filter((p) => p.s).map((p) => collapseState(p.s!)), undefined));
    }
    const axes = [...lay.axes, axis].sort((a, b) => a - b);
    const full = parts.map((p, k) => {
      const dims = axes.map((a) => (a === axis ? sizes[k]! : lay.dims[lay.axes.indexOf(a)]));
      return p.s ? this.fitState(p.s, R, axes, dims) : emptyState(R, axes, dims);
    });
    this.set(out, concatUnits(full, axis));
  }

  private slice(n: Node): void {
    const x = this.st(n.inputs[0])!;
    const R = this.rank(n.inputs[0]) ?? x.rank;
    let s = this.toRank(x, R);
    const starts = intsArg(n, 'starts', 1, this.consts);
    const ends = intsArg(n, 'ends', 2, this.consts);
    if (!starts || !ends || R === undefined) {
      if (s.axes.length) this.warn(`${nodeLabel(n)}: slice bounds unknown`);
      return this.set(n.outputs[0], s);
    }
    const axes = (intsArg(n, 'axes', 3, this.consts) ?? starts.map((_, i) => i)).map((a) => normAxis(a, R));
    const steps = intsArg(n, 'steps', 4, this.consts) ?? starts.map(() => 1);
    axes.forEach((a, k) => {
      const j = s.axes.indexOf(a);
      if (j < 0) return;
      s = selectUnits(s, a, sliceIndices(s.dims[j], starts[k], ends[k], steps[k]));
    });
    this.set(n.outputs[0], s);
  }

  private split(n: Node): void {
    const x = this.st(n.inputs[0])!;
    const R = this.rank(n.inputs[0]) ?? x.rank;
    const s = this.toRank(x, R);
    const axis = R === undefined ? 0 : normAxis(attrInt(n, 'axis', 0), R);
    const j = s.axes.indexOf(axis);
    const outs = n.outputs;
    if (j < 0) {
      for (const o of outs) this.set(o, s);
      return;
    }
    const d = s.dims[j];
    let sizes = intsArg(n, 'split', 1, this.consts);
    if (!sizes) {
      const k = outs.length;
      const each = Math.ceil(d / k);
      sizes = outs.map((_, i) => Math.max(0, Math.min(each, d - i * each)));
    }
    let at = 0;
    outs.forEach((o, i) => {
      const ids = Array.from({ length: sizes![i] }, (_, t) => at + t);
      at += sizes![i];
      this.set(o, selectUnits(s, axis, ids));
    });
  }

  private depthSpace(n: Node): void {
    const x = this.st(n.inputs[0])!;
    const R = this.rank(n.inputs[0]) ?? x.rank ?? 4;
    const b = attrInt(n, 'blocksize', 1);
    const C = this.dim(n.inputs[0], 1) ?? (x.axes[0] === 1 ? x.dims[0] : undefined);
    if (C === undefined) return this.set(n.outputs[0], collapseState(x));
    const s = this.fitState(x, R, [1], [C]);
    if (n.opType === 'SpaceToDepth') {
      const ids = Array.from({ length: C * b * b }, (_, o) => o % C);
      return this.set(n.outputs[0], selectUnits(s, 1, ids));
    }
    // DepthToSpace: each output channel gathers b² input channels at different positions (a merge)
    const Co = C / (b * b);
    const crd = attrString(n, 'mode', 'DCR') === 'CRD';
    const parts: UnitState[] = [];
    for (let k = 0; k < b * b; k++)
      parts.push(selectUnits(s, 1, Array.from({ length: Co }, (_, c) => (crd ? c * b * b + k : k * Co + c))));
    this.set(n.outputs[0], mergeStates(parts, R));
  }

  private recurrent(n: Node): void {
    const x = this.st(n.inputs[0]);
    const H = attrInt(n, 'hidden_size', 1);
    this.other(n, 'recurrent');
    let s = x ? reduceUnits(this.toRank(x, 3), this.toRank(x, 3).axes) : undefined;
    const more = n.inputs.slice(1).map((i) => this.st(i)).filter((t): t is UnitState => !!t).map(collapseState);
    s = mergeStates([...(s ? [s] : []), ...more], undefined);
    s = addEverywhere(s, 1, 'other');
    n.outputs.forEach((o, k) => {
      if (!o) return;
      const R = k === 0 ? 4 : 3;
      this.set(o, broadcastState({ ...s!, rank: R }, R, [R - 1], [H]));
    });
  }
}


function sliceIndices(d: number, start: number, end: number, step: number): number[] {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  const out: number[] = [];
  if (step > 0) {
    s = clamp(s, 0, d);
    e = clamp(e, 0, d);
    for (let i = s; i < e; i += step) out.push(i);
  } else {
    s = clamp(s, -1, d - 1);
    e = clamp(e, -1, d - 1);
    for (let i = s; i > e; i += step) out.push(i);
  }
  return out;
}

/** Grouped dense layer over unit axis 1 (the only unit axis of `s`): g groups, `perGroup` outputs each. */
function groupedDense(s: UnitState, groups: number, perGroup: number): UnitState {
  const C = s.dims[0];
  const Cg = C / groups;
  const aggs: UnitState[] = [];
  for (let j = 0; j < groups; j++) {
    const part = Cg === C ? s : selectUnits(s, 1, Array.from({ length: Cg }, (_, c) => j * Cg + c));
    aggs.push(reduceUnits(part, [1]));
  }
  return stackUnits(aggs, perGroup, s.rank, 1);
}

/** See Engine.reshape. Returns undefined when the runs cannot be matched. */
export function reshapeUnits(s: UnitState, S: Shape, T: Shape): UnitState | undefined {
  if (!s.axes.length) return { ...s, rank: T.length };
  if (s.rank !== S.length) return undefined;
  const groups: { s: number[]; t: number[]; symbolic?: boolean }[] = [];
  let i = S.length - 1;
  let j = T.length - 1;
  while (i >= 0 || j >= 0) {
    if (i >= 0 && j >= 0 && !isNum(S[i]) && S[i] === T[j]) {
      groups.push({ s: [i--], t: [j--] });
      continue;
    }
    if ((i >= 0 && !isNum(S[i])) || (j >= 0 && !isNum(T[j]))) {
      groups.push({ s: range(0, i + 1), t: range(0, j + 1), symbolic: true });
      break;
    }
    const g = { s: [] as number[], t: [] as number[] };
    let ps = 1;
    let pt = 1;
    if (i >= 0) { ps *= S[i] as number; g.s.push(i--); }
    if (j >= 0) { pt *= T[j] as number; g.t.push(j--); }
    while (ps !== pt) {
      if (ps < pt) {
        if (i < 0 || !isNum(S[i])) return undefined;
        ps *= S[i] as number;
        g.s.push(i--);
      } else {
        if (j < 0 || !isNum(T[j])) return undefined;
        pt *= T[j] as number;
        g.t.push(j--);
      }
    }
    // absorb trailing size-1 dims on the left of the run into it
    groups.push(g);
  }
  const unitGroups = groups.filter((g) => g.s.some((a) => s.axes.includes(a)));
  if (unitGroups.some((g) => g.symbolic)) return undefined;
  const srcAxes = [...new Set([...s.axes, ...unitGroups.flatMap((g) => g.s)])].sort((a, b) => a - b);
  const srcDims = srcAxes.map((a) => {
    const k = s.axes.indexOf(a);
    return k >= 0 ? s.dims[k] : (S[a] as number);
  });
  if (srcAxes.some((a, k) => isNum(S[a]) && S[a] !== srcDims[k] && srcDims[k] !== 1)) return undefined;
  const b = broadcastState(s, S.length, srcAxes, srcAxes.map((a) => S[a] as number));
  const axes: number[] = [];
  for (const g of unitGroups) {
    const big = g.t.filter((a) => (T[a] as number) > 1);
    axes.push(...(big.length ? big : [Math.min(...g.t)]));
  }
  axes.sort((a, c) => a - c);
  return { ...b, rank: T.length, axes, dims: axes.map((a) => T[a] as number) };
}

function range(a: number, b: number): number[] {
  return Array.from({ length: Math.max(0, b - a) }, (_, k) => a + k);
}
