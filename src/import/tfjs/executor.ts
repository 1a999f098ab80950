// The differentiable executor: graph IR → a TensorFlow.js function whose weights are tf.Variables.
//
//   const exe = compile(model);
//   const { logits } = exe.run({ input });                       // forward (inside tf.tidy/grad/minimize too)
//   optimizer.minimize(() => loss(exe.run({ input }).logits), false, exe.trainableVariables);
//   exe.syncToModel();  saveModel(exe.model, 'trained.onnx');     // write the trained weights back
//
// - Weights (float initializers in weight positions: conv kernels and biases, Gemm/MatMul matrices, norm
//   scales/biases, embeddings, PRelu slopes, non-scalar bias/scale operands of Add/Mul) are trainable
//   variables; BatchNormalization running statistics are non-trainable variables (updated in training mode);
//   every other initializer (shapes, integer tensors, scalars) is a constant.
// - Nodes whose inputs are all constants (shape chains, Constant nodes) are evaluated once at compile time.
// - Layout: values are NCHW by ONNX semantics; conv-family kernels compute in NHWC. A value produced by such a
//   kernel stays NHWC while the next ops can take it (conv, pool, BatchNormalization, elementwise ops, Concat
//   on channels) and is transposed back only where an op needs NCHW (and at the outputs), so the transposes
//   between consecutive convs cancel.
// - int64 values run as int32 (see registry.ts); graph outputs declared int64 come back as int32 tensors.
import { tf, type TfTensor, type KernelContext, type Kernel, tfDType, kernelError } from './registry.js';
import { lookupKernel } from './kernels.js';
import { topologicalOrder, Graph, opsetOf, nodeLabel, type Model, type Node, type ValueInfo } from '../ir.js';
import { Tensor, isFloat } from '../tensor.js';
import { LinfoldError } from '../../errors.js';
import { toTf, fromTf } from './convert.js';
import './gradients.js';
import { taping } from './conv-util.js';

export interface CompileOptions {
  /** Keep conv chains channels-last between ops (default true; false transposes around every conv). */
  layout?: boolean;
  /** Evaluate nodes whose inputs are all constants once, at compile time (default true). */
  foldConstants?: boolean;
  /** Overrides which float initializers become trainable variables (default: weights, see above). */
  trainable?: (name: string, tensor: Tensor, uses: { node: Node; input: number }[]) => boolean;
  /** Initializers that are trainable besides the default weights (e.g. a layer's single shared slope, which
   *  the default rule takes for a scalar constant). */
  alsoTrainable?: Iterable<string>;
}

export interface RunOptions {
  /** Values to return (default: the graph outputs); any intermediate value name is allowed. */
  outputs?: string[];
  /**
   * Overrides the model's own mode: true = BatchNormalization uses batch statistics and Dropout drops;
   * false = inference everywhere; undefined = as each node says.
   */
  training?: boolean;
  /** Write BatchNormalization running statistics back to their variables (default: when training is true). */
  updateStats?: boolean;
}

export interface Executable {
  readonly model: Model;
  /** Values a caller feeds (graph inputs without initializers). */
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  /** Every variable by initializer name (trainable weights and non-trainable running statistics). */
  readonly variables: Map<string, tf.Variable>;
  /** The trainable ones, for optimizer.minimize(f, false, varList). */
  readonly trainableVariables: tf.Variable[];
  /** Runs the graph; feeds of int64 inputs are int32 tensors. Returned tensors belong to the caller. */
  run(feeds: Record<string, TfTensor>, opts?: RunOptions): Record<string, TfTensor>;
  /** Writes the current variable values into `model` (default: the compiled model) in place. */
  syncToModel(model?: Model): void;
  /** A copy of the compiled model with the current variable values as initializers. */
  toModel(): Model;
  dispose(): void;
}

export interface UnsupportedOp { op: string; domain: string; opset: number; count: number }

/** The opset a node runs at (1 when the model imports no opset for its domain). */
function nodeOpset(model: Model, node: Node): number {
  return opsetOf(model, node.domain) ?? 1;
}

/** Ops of the model that have no tfjs kernel at the model's opset. */
export function unsupportedOps(model: Model): UnsupportedOp[] {
  const out = new Map<string, UnsupportedOp>();
  for (const n of model.graph.nodes) {
    const opset = nodeOpset(model, n);
    if (lookupKernel(n.opType, n.domain, opset)) continue;
    const key = `${n.domain}::${n.opType}`;
    const e = out.get(key);
    if (e) e.count++;
    else out.set(key, { op: n.opType, domain: n.domain, opset, count: 1 });
  }
  return [...out.values()];
}

export function describeUnsupported(list: UnsupportedOp[]): string {
  return list.map((u) => `${u.domain ? `${u.domain}.` : ''}${u.op} (opset ${u.opset}, ${u.count}×)`).join(', ');
}

interface Step { node: Node; kernel: Kernel; opset: number }
interface Slot { t: TfTensor; nhwc: boolean; alt?: TfTensor }

let compileCount = 0;

export function compile(model: Model, opts: CompileOptions = {}): Executable {
  const layout = opts.layout ?? true;
  const g = model.graph;
  const missing = unsupportedOps(model);
  if (missing.length) throw new LinfoldError(`${model.path ?? 'model'}: no TensorFlow.js kernel for ${describeUnsupported(missing)}`);
  const order = topologicalOrder(g);
  const kernelOf = new Map<Node, Kernel>();
  for (const n of order) kernelOf.set(n, lookupKernel(n.opType, n.domain, nodeOpset(model, n))!);
  const { variables, trainableVariables, constants } = loadInitializers(g, order, kernelOf, opts);
  const derived = derivedCache(variables, constants);
  const ctx: KernelContext & { opset: number } = { opset: 1, values: hostValues, onnxDType: (name) => g.info(name)?.dtype, training: undefined };
  const plan = evaluateConstants(model, order, kernelOf, constants, ctx, opts.foldConstants ?? true);
  const stepsFor = stepSelector(plan);
  const feedInfos = g.feeds;

  let disposed = false;
  const exe: Executable = {
    model,
    inputs: feedInfos,
    outputs: g.outputs,
    variables,
    trainableVariables,
    run(feeds, runOpts = {}) {
      if (disposed) throw new LinfoldError('this compiled model was disposed');
      const wanted = runOpts.outputs ?? g.outputs.map((o) => o.name);
      const values = { variables, constants, feedInfos };
      return tf.tidy(() => runSteps(stepsFor(wanted), wanted, feeds, values, { ...ctx, derived: derived.get, training: runOpts.training }, runOpts, layout));
    },
    syncToModel(target = model) {
      for (const [name, v] of variables) {
        const old = target.graph.initializers.get(name);
        target.graph.initializers.set(name, fromTf(name, v, old?.dtype ?? 'float32'));
      }
    },
    toModel() {
      const copy = new Graph();
      Object.assign(copy, g);
      copy.nodes = g.nodes.slice();
      copy.inputs = g.inputs.slice();
      copy.outputs = g.outputs.slice();
      copy.valueInfo = new Map(g.valueInfo);
      copy.initializers = new Map(g.initializers);
      const m: Model = { ...model, graph: copy };
      exe.syncToModel(m);
      return m;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const v of variables.values()) v.dispose();
      for (const t of constants.values()) t.dispose();
      derived.dispose();
      variables.clear();
      constants.clear();
      trainableVariables.length = 0;
    },
  };
  return exe;
}

type Uses = Map<string, { node: Node; input: number }[]>;

/** Initializers as trainable variables (weights), non-trainable variables (running statistics) or constants. */
function loadInitializers(g: Graph, order: Node[], kernelOf: Map<Node, Kernel>, opts: CompileOptions) {
  const uses: Uses = new Map();
  for (const n of order)
    n.inputs.forEach((name, input) => {
      if (!name) return;
      const l = uses.get(name) ?? [];
      l.push({ node: n, input });
      uses.set(name, l);
    });
  const prefix = `linfold${++compileCount}/`;
  const variables = new Map<string, tf.Variable>();
  const trainableVariables: tf.Variable[] = [];
  const constants = new Map<string, TfTensor>();
  const also = new Set(opts.alsoTrainable ?? []);
  const isWeight = (name: string, t: Tensor, u: { node: Node; input: number }[]) => {
    if (also.has(name)) return true;
    if (opts.trainable) return opts.trainable(name, t, u);
    return u.some(({ node, input }) => {
      const k = kernelOf.get(node)!;
      if (!k.weights?.includes(input)) return false;
      // Add/Mul operands are weights when they are vectors or larger (biases, layer scales), not scalars
      return k.elementwise ? t.size > 1 : true;
    });
  };
  for (const [name, t] of g.initializers) {
    const u = uses.get(name) ?? [];
    if (u.length === 0) continue;
    if (isFloat(t.dtype)) {
      const stat = u.some(({ node, input }) => kernelOf.get(node)!.stats?.includes(input));
      const trainable = !stat && isWeight(name, t, u);
      if (trainable || stat) {
        const v = tf.tidy(() => tf.variable(toTf(t), trainable, prefix + name));
        variables.set(name, v);
        if (trainable) trainableVariables.push(v);
        continue;
      }
    }
    constants.set(name, tf.keep(toTf(t)));
  }
  return { variables, trainableVariables, constants };
}

/** Tensors derived from weights and constants (conv filters in tfjs layout, ...), kept across runs. */
function derivedCache(variables: Map<string, tf.Variable>, constants: Map<string, TfTensor>) {
  const cache = new Map<TfTensor, Map<string, { dataId: object; t: TfTensor }>>();
  let persistent: Set<TfTensor> | undefined;
  const get = (src: TfTensor, tag: string, make: () => TfTensor): TfTensor => {
    persistent ??= new Set<TfTensor>([...variables.values(), ...constants.values()]);
    if (!persistent.has(src) || taping()) return make();
    const byTag = cache.get(src) ?? new Map<string, { dataId: object; t: TfTensor }>();
    cache.set(src, byTag);
    const hit = byTag.get(tag);
    // a variable keeps its object across assign() but gets a new dataId
    if (hit && hit.dataId === src.dataId) return hit.t;
    hit?.t.dispose();
    const t = tf.keep(make());
    byTag.set(tag, { dataId: src.dataId, t });
    return t;
  };
  const dispose = () => {
    for (const byTag of cache.values()) for (const { t } of byTag.values()) t.dispose();
    cache.clear();
  };
  return { get, dispose };
}

/** Evaluates nodes whose inputs are all constants once (their outputs join `constants`); returns the steps left to run. */
function evaluateConstants(model: Model, order: Node[], kernelOf: Map<Node, Kernel>, constants: Map<string, TfTensor>, ctx: KernelContext & { opset: number }, fold: boolean): Step[] {
  const plan: Step[] = [];
  for (const n of order) {
    const kernel = kernelOf.get(n)!;
    const opset = nodeOpset(model, n);
    const foldable = fold && !kernel.random && n.inputs.every((i) => i === '' || constants.has(i));
    if (!foldable) {
      plan.push({ node: n, kernel, opset });
      continue;
    }
    ctx.opset = opset;
    const outs = tf.tidy(() => callKernel(kernel, n, n.inputs.map((i) => (i ? constants.get(i)! : undefined)) as TfTensor[], ctx));
    n.outputs.forEach((o, k) => {
      if (o && outs[k]) constants.set(o, tf.keep(outs[k]));
      else outs[k]?.dispose();
    });
  }
  return plan;
}

/** The steps a set of wanted values needs, in plan order (cached per set). */
function stepSelector(plan: Step[]): (wanted: string[]) => Step[] {
  const producers = new Map<string, Step>();
  for (const s of plan) for (const o of s.node.outputs) if (o) producers.set(o, s);
  const cache = new Map<string, Step[]>();
  return (wanted) => {
    const key = wanted.join('\u0000');
    const hit = cache.get(key);
    if (hit) return hit;
    const need = new Set<Step>();
    const stack = [...wanted];
    while (stack.length) {
      const v = stack.pop()!;
      const s = producers.get(v);
      if (!s || need.has(s)) continue;
      need.add(s);
      for (const i of s.node.inputs) if (i) stack.push(i);
    }
    const steps = plan.filter((s) => need.has(s));
    cache.set(key, steps);
    return steps;
  };
}

interface RunValues { variables: Map<string, tf.Variable>; constants: Map<string, TfTensor>; feedInfos: ValueInfo[] }

/** One run inside tf.tidy: feeds in, steps executed, wanted values out (NCHW), running statistics updated. */
function runSteps(steps: Step[], wanted: string[], feeds: Record<string, TfTensor>, values: RunValues, ctx: KernelContext & { opset: number }, runOpts: RunOptions, layout: boolean): Record<string, TfTensor> {
  const { variables, constants, feedInfos } = values;
  const env = new Map<string, Slot>();
  for (const info of feedInfos) {
    const t = feeds[info.name];
    if (!t) continue;
    const want = info.dtype ? tfDType(info.dtype) : t.dtype;
    env.set(info.name, { t: t.dtype === want || t.dtype === 'string' ? t : tf.cast(t, want as 'float32'), nhwc: false });
  }
  const slot = (name: string, reader: Node | undefined): Slot => {
    let s = env.get(name);
    if (s) return s;
    const t = variables.get(name) ?? constants.get(name);
    if (!t) {
      const isFeed = feedInfos.some((f) => f.name === name);
      throw new LinfoldError(isFeed ? `input '${name}' was not fed` : `${reader ? nodeLabel(reader) : 'output'}: value '${name}' is not available`);
    }
    s = { t, nhwc: false };
    env.set(name, s);
    return s;
  };
  const pendingStats: [tf.Variable, TfTensor][] = [];
  if (runOpts.updateStats ?? runOpts.training === true)
    ctx.onStatUpdate = (name, value) => {
      const v = variables.get(name);
      if (v) pendingStats.push([v, value]);
    };
  for (const step of steps) {
    ctx.opset = step.opset;
    execute(step, slot, env, ctx, layout);
  }
  const out: Record<string, TfTensor> = {};
  for (const name of wanted) {
    const s = slot(name, undefined);
    const t = nchw(s);
    // never hand out a constant, variable or the caller's own feed: the caller may dispose it
    out[name] = t === s.t && (constants.has(name) || variables.has(name) || feeds[name] === t) ? tf.clone(t) : t;
  }
  for (const [v, value] of pendingStats) v.assign(value);
  return out;
}

// ---- one node ----
const nchw = (s: Slot): TfTensor => (s.nhwc ? (s.alt ??= tf.transpose(s.t, [0, 3, 1, 2])) : s.t);
const nhwc = (s: Slot): TfTensor => (s.nhwc ? s.t : (s.alt ??= tf.transpose(s.t, [0, 2, 3, 1])));

/** A broadcast operand of an NHWC elementwise op, moved to channels-last positions. */
function operandNHWC(s: Slot): TfTensor {
  if (s.nhwc) return s.t;
  const t = s.t;
  if (t.rank === 4) return nhwc(s);
  if (t.size === 1) return t;
  return tf.transpose(tf.reshape(t, [...Array(4 - t.rank).fill(1), ...t.shape]), [0, 2, 3, 1]);
}

function execute(step: Step, slot: (name: string, reader: Node) => Slot, env: Map<string, Slot>, ctx: KernelContext, layout: boolean): void {
  const { node, kernel } = step;
  const ins = node.inputs.map((n) => (n ? slot(n, node) : undefined));
  let mode: 'nchw' | 'nhwc' | 'elementwise' = 'nchw';
  let data: number[] = [];
  if (layout) {
    if (kernel.nhwc) {
      const spec = kernel.nhwc;
      data = spec.data === 'all' ? ins.map((s, i) => (s ? i : -1)).filter((i) => i >= 0) : (spec.data ?? [0]).filter((i) => ins[i]);
      const ranks = data.map((i) => ins[i]!.t.rank);
      const ok = spec.accepts ? spec.accepts(node, ranks, ctx) : ranks.every((r) => r === 4);
      if (ok && (spec.mode === 'required' || data.some((i) => ins[i]!.nhwc))) mode = 'nhwc';
    } else if (kernel.elementwise && ins.some((s) => s?.nhwc) && ins.every((s) => !s || s.t.rank <= 4)) {
      mode = 'elementwise';
    }
  }
  let outs: TfTensor[];
  let outNhwc = false;
  if (mode === 'nhwc') {
    const args = ins.map((s, i) => (s ? (data.includes(i) ? nhwc(s) : nchw(s)) : undefined)) as TfTensor[];
    outs = wrap(node, () => kernel.nhwc!.run(args, node, ctx));
    outNhwc = true;
  } else if (mode === 'elementwise') {
    const args = ins.map((s) => (s ? operandNHWC(s) : undefined)) as TfTensor[];
    outs = callKernel(kernel, node, args, ctx);
    outNhwc = true;
  } else {
    outs = callKernel(kernel, node, ins.map((s) => (s ? nchw(s) : undefined)) as TfTensor[], ctx);
  }
  node.outputs.forEach((o, k) => {
    if (!o) return;
    const t = outs[k];
    if (!t) throw kernelError(node, `output ${k} ('${o}') was not produced`);
    // only output 0 of an nhwc kernel is channels-last; all outputs of an elementwise op are
    env.set(o, { t, nhwc: outNhwc && t.rank === 4 && (mode === 'elementwise' || k === 0) });
  });
}

function callKernel(kernel: Kernel, node: Node, inputs: TfTensor[], ctx: KernelContext): TfTensor[] {
  return wrap(node, () => kernel.run(inputs, node, ctx));
}

function wrap(node: Node, f: () => TfTensor[]): TfTensor[] {
  try {
    return f();
  } catch (e) {
    if (e instanceof LinfoldError) throw e;
    throw kernelError(node, (e as Error).message.split('\n')[0]);
  }
}

const hostCache = new WeakMap<TfTensor, number[]>();
function hostValues(t: TfTensor): number[] {
  // a variable keeps its object across assign(): never cache its values
  if (t instanceof tf.Variable) return Array.from(t.dataSync() as ArrayLike<number>, Number);
  let v = hostCache.get(t);
  if (!v) {
    v = Array.from(t.dataSync() as ArrayLike<number>, Number);
    hostCache.set(t, v);
  }
  return v;
}

/** IR tensors → tfjs feeds (int64 → int32, float64 → float32); the caller disposes them. */
export function feedsToTf(feeds: Record<string, Tensor>): Record<string, TfTensor> {
  const out: Record<string, TfTensor> = {};
  for (const [k, v] of Object.entries(feeds)) out[k] = toTf(v);
  return out;
}

/** tfjs outputs → IR tensors with the dtypes the model declares. */
export function outputsToIR(exe: Executable, outputs: Record<string, TfTensor>): Record<string, Tensor> {
  const res: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(outputs)) res[k] = fromTf(k, v, exe.model.graph.info(k)?.dtype);
  return res;
}
