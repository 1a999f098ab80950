// One ONNX graph for one training step: forward, loss (task + prior), backward, optimizer update.
//   inputs : the model's data input, target (one-hot labels) and/or teacher logits, λ, learning rates and bias
//            corrections, every trainable tensor and its optimizer state
//   outputs: loss, task_loss, prior_loss, the updated trainables and optimizer state (`<name>__next`, ...),
//            and with `gradients` the raw gradients (`<name>__grad`)
import { LinfoldError } from '../../errors.js';
import { nodeLabel, opsetOf, type Graph, type Model, type Node, type ValueInfo } from '../../import/ir.js';
import { isFloat } from '../../import/tensor.js';
import { cloneModel } from '../../import/ir-edit.js';
import { inferShapes } from '../../import/shape-inference.js';
import type { PriorKind } from '../objective.js';
import { Emitter } from './emit.js';
import { backward } from './autodiff.js';
import { gradRule } from './grad/index.js';

export interface TrainingGraphOptions {
  /** Slope tensors (trainable besides the default weights) and the channel count each value stands for. */
  slopes: { name: string; weight: number }[];
  loss?: 'ce' | 'distill' | 'both';
  ceWeight?: number;
  distillWeight?: number;
  distillKind?: 'kl' | 'mse';
  temperature?: number;
  prior?: PriorKind;
  optimizer?: 'adam' | 'sgd';
  momentum?: number;
  clipNorm?: number;
  trainWeights?: boolean;
  trainSlopes?: boolean;
  /** Also output the gradients (before clipping). */
  gradients?: boolean;
}

export interface TrainingGraph {
  model: Model;
  /** The model's data input. */
  input: string;
  /** Trainable tensors (weights, then slopes): fed every step, updated when trained. */
  params: string[];
  /** Those updated by this graph. */
  trained: string[];
  /** Optimizer state tensors per trained tensor (Adam: m, v; momentum: accumulation), as input names. */
  state: Map<string, string[]>;
  /** Scalar inputs: lambda, lr_w, lr_s (learning rate × Adam's first bias correction), bc2_w, bc2_s. */
  scalars: string[];
  targets: ('target' | 'teacher')[];
}

export const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };
export const next = (name: string) => `${name}__next`;
export const gradName = (name: string) => `${name}__grad`;

/** The trainable tensors as the tfjs executor picks them: float initializers a rule marks as weights, plus slopes. */
export function trainableTensors(model: Model, slopes: string[]): string[] {
  const g = model.graph;
  const also = new Set(slopes);
  const out: string[] = [];
  for (const [name, t] of g.initializers) {
    if (!isFloat(t.dtype) || also.has(name)) continue;
    const weight = g.nodes.some((n) => n.inputs.some((i, k) => {
      if (i !== name) return false;
      const r = gradRule(n.opType, n.domain);
      return Boolean(r?.weights?.includes(k)) && (!r!.elementwise || t.size > 1);
    }));
    if (weight) out.push(name);
  }
  return [...out, ...slopes];
}

/** The training graph's interface as it is built: inputs (data, trainables, targets, scalars, state) and outputs. */
class Interface {
  readonly scalars: string[] = [];
  readonly outputs: ValueInfo[] = [];
  /** Output name → the value it names (nameOutputs gives each its name at the end). */
  readonly named: [string, string][] = [];
  constructor(readonly inputs: ValueInfo[]) {}

  input(name: string, shape: (number | string)[]): string {
    this.inputs.push({ name, dtype: 'float32', shape });
    return name;
  }

  scalar(name: string): string {
    this.scalars.push(name);
    return this.input(name, []);
  }

  output(name: string, value: string, shape?: (number | string)[]): void {
    this.named.push([name, value]);
    this.outputs.push({ name, dtype: 'float32', shape });
  }

  shapeOf(name: string): (number | string)[] {
    return this.inputs.find((i) => i.name === name)!.shape!;
  }
}

export function buildTrainingGraph(source: Model, o: TrainingGraphOptions): TrainingGraph {
  const model = cloneModel(source);
  inferShapes(model);
  const g = model.graph;
  const opset = opsetOf(model) ?? 0;
  if (opset < 13) throw new LinfoldError(`${source.path ?? 'model'}: opset ${opset}; the native backend needs opset 13 or newer`);
  // opsets 13..17 differ only by additions the forward ops do not use; 17 brings ScatterElements' reduction
  model.opsets = model.opsets.map((s) => (s.domain === '' || s.domain === 'ai.onnx' ? { ...s, version: Math.max(17, s.version) } : s));
  const e = new Emitter(g, Math.max(17, opset));
  const forward = [...g.nodes];
  if (g.feeds.length !== 1 || g.outputs.length < 1) throw new LinfoldError(`${source.path ?? 'model'}: the native backend trains models with one input (this one has ${g.feeds.length})`);
  const input = g.feeds[0].name;
  const slopeSet = new Set(o.slopes.map((s) => s.name));
  const params = trainableTensors(model, [...slopeSet]);
  const trained = params.filter((p) => (slopeSet.has(p) ? o.trainSlopes !== false : o.trainWeights !== false));
  // trainables become inputs
  const io = new Interface([g.inputs.find((i) => i.name === input)!]);
  g.inputs = io.inputs;
  for (const p of params) {
    io.input(p, g.initializers.get(p)!.dims);
    g.initializers.delete(p);
  }
  const { task, dz, targets } = taskLoss(e, io, o);
  const prior = priorTerm(e, io, o);
  const grads = backward(e, forward, new Map([[g.outputs[0].name, dz]]), trained);
  lowerForward(e, g, forward);
  const total = new Map<string, string>();
  for (const p of trained) {
    const parts = [grads.get(p), prior.grads.get(p)].filter((v): v is string => Boolean(v));
    total.set(p, parts.length ? e.sum(parts) : e.op('Mul', [p, e.f32(0)]));
  }
  if (o.gradients) for (const p of trained) io.output(gradName(p), total.get(p)!, io.shapeOf(p));
  if (o.clipNorm) {
    const sq = trained.map((p) => e.op('ReduceSum', [e.op('Mul', [total.get(p)!, total.get(p)!])], { keepdims: 0 }));
    const norm = e.op('Sqrt', [e.sum(sq)]);
    const scale = e.op('Min', [e.f32(1), e.op('Div', [e.f32(o.clipNorm), norm])]);
    for (const p of trained) total.set(p, e.op('Mul', [total.get(p)!, scale]));
  }
  const state = optimizerStep(e, io, o, total, slopeSet);
  io.output('loss', e.op('Add', [task, prior.value]), []);
  io.output('task_loss', task, []);
  io.output('prior_loss', prior.value, []);
  nameOutputs(g, io.named, (value, name) => ({ name: e.fresh('out'), opType: 'Identity', domain: '', inputs: [value], outputs: [name], attrs: {} }));
  g.outputs = io.outputs;
  return { model, input, params, trained, state, scalars: io.scalars, targets };
}

/** The task loss on the model's first output as [batch, classes] (CE on one-hot targets and/or distillation from
 *  teacher logits, KL at a temperature or MSE), and its gradient with respect to that output. */
function taskLoss(e: Emitter, io: Interface, o: TrainingGraphOptions): { task: string; dz: string; targets: TrainingGraph['targets'] } {
  const output = e.g.outputs[0].name;
  let z = output;
  const zShape = e.g.info(z)?.shape;
  if (!zShape) throw new LinfoldError(`native backend: the shape of output '${z}' is unknown`);
  if (zShape.length !== 2) z = e.op('Flatten', [z], { axis: 1 });
  const classes = zShape.slice(1).reduce<number>((a, b) => a * (typeof b === 'number' ? b : NaN), 1);
  const batch = e.op('Cast', [e.op('Gather', [e.op('Shape', [z]), e.i64([0], [])], { axis: 0 })], { to: 1 });
  const invB = e.op('Reciprocal', [batch]);
  const loss = o.loss ?? 'ce';
  const targets: TrainingGraph['targets'] = [];
  const taskParts: string[] = [], dzParts: string[] = [];
  if (loss !== 'distill') {
    targets.push('target');
    io.input('target', ['batch', classes]);
    const logp = e.op('LogSoftmax', [z], { axis: 1 });
    const w = o.ceWeight ?? 1;
    taskParts.push(e.op('Mul', [e.op('Neg', [e.op('ReduceSum', [e.op('Mul', ['target', logp])], { keepdims: 0 })]), e.op('Mul', [invB, e.f32(w)])]));
    dzParts.push(e.op('Mul', [e.op('Sub', [e.op('Exp', [logp]), 'target']), e.op('Mul', [invB, e.f32(w)])]));
  }
  if (loss !== 'ce') {
    targets.push('teacher');
    io.input('teacher', ['batch', classes]);
    const w = loss === 'both' ? o.distillWeight ?? 1 : 1;
    if ((o.distillKind ?? 'kl') === 'mse') {
      const diff = e.op('Sub', [z, 'teacher']);
      const scale = e.op('Mul', [invB, e.f32(w / classes)]);
      taskParts.push(e.op('Mul', [e.op('ReduceSum', [e.op('Mul', [diff, diff])], { keepdims: 0 }), scale]));
      dzParts.push(e.op('Mul', [diff, e.op('Mul', [scale, e.f32(2)])]));
    } else {
      const T = o.temperature ?? 2;
      const invT = e.f32(1 / T);
      const logT = e.op('LogSoftmax', [e.op('Mul', ['teacher', invT])], { axis: 1 });
      const logS = e.op('LogSoftmax', [e.op('Mul', [z, invT])], { axis: 1 });
      const t = e.op('Exp', [logT]);
      taskParts.push(e.op('Mul', [e.op('ReduceSum', [e.op('Mul', [t, e.op('Sub', [logT, logS])])], { keepdims: 0 }), e.op('Mul', [invB, e.f32(w * T * T)])]));
      dzParts.push(e.op('Mul', [e.op('Sub', [e.op('Exp', [logS]), t]), e.op('Mul', [invB, e.f32(w * T)])]));
    }
  }
  const task = e.sum(taskParts), dz = e.sum(dzParts);
  return { task, dz: z === output ? dz : e.op('Reshape', [dz, e.op('Shape', [output])]), targets };
}

/** The prior λ Σ_k w_k Σ |1 − a|^p on the slopes (p = 1, or ½ as √(|1 − a| + 1e-8)) and its gradient per slope. */
function priorTerm(e: Emitter, io: Interface, o: TrainingGraphOptions): { value: string; grads: Map<string, string> } {
  const lambda = io.scalar('lambda');
  const parts: string[] = [], grads = new Map<string, string>();
  for (const s of o.slopes) {
    const d = e.op('Sub', [e.f32(1), s.name]);
    const ad = e.op('Abs', [d]);
    const lw = e.op('Mul', [lambda, e.f32(s.weight)]);
    const negSign = e.op('Neg', [e.op('Sign', [d])]);
    if ((o.prior ?? 'l1') === 'l1') {
      parts.push(e.op('Mul', [e.op('ReduceSum', [ad], { keepdims: 0 }), lw]));
      grads.set(s.name, e.op('Mul', [negSign, lw]));
    } else {
      const r = e.op('Sqrt', [e.op('Add', [ad, e.f32(1e-8)])]);
      parts.push(e.op('Mul', [e.op('ReduceSum', [r], { keepdims: 0 }), lw]));
      grads.set(s.name, e.op('Mul', [e.op('Div', [negSign, r]), e.op('Mul', [lw, e.f32(0.5)])]));
    }
  }
  return { value: parts.length ? e.sum(parts) : e.f32(0), grads };
}

/** One optimizer step of every trained tensor (gradient in `total`) as graph outputs `<name>__next`, its state as
 *  inputs and outputs: Adam (m, v; lr_* carries the first bias correction, bc2_* the second), SGD with momentum
 *  (acc), plain SGD (no state). Returns the state input names per tensor. */
function optimizerStep(e: Emitter, io: Interface, o: TrainingGraphOptions, total: Map<string, string>, slopeSet: Set<string>): Map<string, string[]> {
  const trained = [...total.keys()];
  const state = new Map<string, string[]>();
  const lrW = trained.some((p) => !slopeSet.has(p)) ? io.scalar('lr_w') : '';
  const lrS = trained.some((p) => slopeSet.has(p)) ? io.scalar('lr_s') : '';
  const adam = (o.optimizer ?? 'adam') === 'adam';
  const bc2W = adam && lrW ? io.scalar('bc2_w') : '', bc2S = adam && lrS ? io.scalar('bc2_s') : '';
  for (const [p, gr] of total) {
    const shape = io.shapeOf(p);
    const isSlope = slopeSet.has(p);
    const lr = isSlope ? lrS : lrW;
    if (adam) {
      const m = io.input(`${p}__m`, shape), v = io.input(`${p}__v`, shape);
      state.set(p, [m, v]);
      const m1 = e.op('Add', [e.op('Mul', [m, e.f32(ADAM.beta1)]), e.op('Mul', [gr, e.f32(1 - ADAM.beta1)])]);
      const v1 = e.op('Add', [e.op('Mul', [v, e.f32(ADAM.beta2)]), e.op('Mul', [e.op('Mul', [gr, gr]), e.f32(1 - ADAM.beta2)])]);
      const denom = e.op('Add', [e.op('Sqrt', [e.op('Mul', [v1, isSlope ? bc2S : bc2W])]), e.f32(ADAM.epsilon)]);
      io.output(next(p), e.op('Sub', [p, e.op('Mul', [e.op('Div', [m1, denom]), lr])]), shape);
      io.output(next(m), m1, shape);
      io.output(next(v), v1, shape);
    } else if ((o.momentum ?? 0.9) === 0) {
      // plain SGD: no state to carry
      state.set(p, []);
      io.output(next(p), e.op('Sub', [p, e.op('Mul', [gr, lr])]), shape);
    } else {
      const a = io.input(`${p}__acc`, shape);
      state.set(p, [a]);
      const a1 = e.op('Add', [e.op('Mul', [a, e.f32(o.momentum ?? 0.9)]), gr]);
      io.output(next(p), e.op('Sub', [p, e.op('Mul', [a1, lr])]), shape);
      io.output(next(a), a1, shape);
    }
  }
  return state;
}

/** Replaces each forward node whose rule has a faster composite (PRelu) by it, in place (topological order kept). */
export function lowerForward(e: Emitter, g: Graph, forward: Node[]): void {
  for (const n of forward) {
    const lower = gradRule(n.opType, n.domain)?.forward;
    if (!lower) continue;
    const start = g.nodes.length;
    const values = lower(e, n);
    const composite = g.nodes.splice(start);
    const renamed = new Map(n.outputs.map((o, k) => [values[k], o]));
    if (!n.outputs.every((_, k) => composite.some((c) => c.outputs.includes(values[k])))) throw new Error(`lowering ${nodeLabel(n)}: an output is not computed by the composite`);
    for (const c of composite) {
      c.inputs = c.inputs.map((i) => renamed.get(i) ?? i);
      c.outputs = c.outputs.map((o) => renamed.get(o) ?? o);
    }
    g.nodes.splice(g.nodes.indexOf(n), 1, ...composite);
  }
}

/** Gives each output its name: the producing node's output is renamed (readers rewired) where it is a value of
 *  its own, else an Identity copies it (a graph input, or a value given two names). Each Identity that
 *  onnxruntime cannot remove (it feeds a graph output) is a copy and a kernel launch per step. */
function nameOutputs(g: Graph, named: [string, string][], identity: (value: string, name: string) => Node): void {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const renamed = new Map<string, string>();
  for (const [name, value] of named) {
    const n = producer.get(value);
    if (n && !renamed.has(value) && !g.outputs.some((o) => o.name === value)) {
      n.outputs[n.outputs.indexOf(value)] = name;
      renamed.set(value, name);
    } else g.nodes.push(identity(renamed.get(value) ?? value, name));
  }
  if (renamed.size) for (const n of g.nodes) n.inputs = n.inputs.map((i) => renamed.get(i) ?? i);
}
