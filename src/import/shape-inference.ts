// Static shape inference: walks the graph in topological order, applies each op's registry rule, and
// evaluates small constant subgraphs on the way so that shape-computing chains (Shape → Gather → Concat →
// Reshape) resolve. Symbolic dims ('batch') flow through; dims no rule can resolve get fresh names (unk__N).
import { LinfoldError } from '../errors.js';
import { Graph, nodeLabel, opsetOf, type Dim, type Model, type Shape, type ValueInfo } from './ir.js';
import type { Tensor } from './tensor.js';
import './ops/index.js';
import { CannotEvaluate, MAX_PARTIAL, toTensor } from './ops/common.js';
import { lookupOp, type OpContext, type OutputType } from './ops/registry.js';

export interface InferOptions {
  /** Concrete shapes for graph inputs, replacing their symbolic dims (the graph's inputs are updated). */
  inputShapes?: Record<string, number[]>;
  /** Evaluate a node on constant inputs only when its inputs and outputs hold at most this many elements each (default 100 000). */
  maxEvalElements?: number;
}

export interface UnknownOp { node: string; opType: string; domain: string }

export interface ShapeInferenceResult {
  /** Nodes whose op (at the model's opset) has no rule: their outputs keep the file's shapes, if any. */
  unknownOps: UnknownOp[];
  /** Every value known to be constant: initializers, Constant nodes and nodes evaluated on constants. */
  constants: Map<string, Tensor>;
}

/** The opset assumed for the default domain when a model does not import it. */
export const LATEST_OPSET = 21;

/**
 * Fills `model.graph.valueInfo` with the dtype and shape of every node output (sorting the nodes
 * topologically first) and refines the declared graph outputs. Throws LinfoldError naming the node when
 * its inputs are inconsistent (channel mismatch, inner dims of a MatMul, element count of a Reshape…).
 */
export function inferShapes(model: Model, opts: InferOptions = {}): ShapeInferenceResult {
  const g = model.graph;
  g.sortTopologically();
  const maxEval = opts.maxEvalElements ?? 1e5;
  const taken = symbolsOf(g);
  const freshNames = new Set<string>();
  let next = 0;
  const freshDim = (): string => {
    let s: string;
    do s = `unk__${next++}`;
    while (taken.has(s));
    freshNames.add(s);
    return s;
  };
  const sanitize = (s: Shape | undefined) => s?.map((d) => (d === '?' ? freshDim() : d));

  const infos = new Map<string, ValueInfo>();
  const constants = new Map<string, Tensor>();
  /** Partially known small values (Shape of a symbolic shape and arithmetic on it), entries possibly symbolic. */
  const partials = new Map<string, Dim[]>();
  applyInputShapes(g, opts.inputShapes ?? {});
  for (const inp of g.inputs) infos.set(inp.name, { name: inp.name, dtype: inp.dtype, shape: sanitize(inp.shape) });
  for (const [name, t] of g.initializers) {
    infos.set(name, { name, dtype: t.dtype, shape: t.dims });
    constants.set(name, t);
  }

  const old = g.valueInfo;
  const declared = new Map(g.outputs.map((o) => [o.name, o]));
  const valueInfo = new Map<string, ValueInfo>();
  const unknownOps: UnknownOp[] = [];
  for (const node of g.nodes) {
    const domain = node.domain === 'ai.onnx' ? '' : node.domain;
    const opset = opsetOf(model, domain) ?? (domain === '' ? LATEST_OPSET : 1);
    const spec = lookupOp(node.opType, domain, opset);
    const infer = spec?.infer;
    let outs: OutputType[] = [];
    if (!spec || !infer) unknownOps.push({ node: nodeLabel(node), opType: node.opType, domain });
    else {
      const ctx: OpContext = {
        node, opset, freshDim,
        inputs: node.inputs.map((n) => (n ? infos.get(n) ?? { name: n } : undefined)),
        values: node.inputs.map((n) => (n ? constants.get(n) : undefined)),
        partial: node.inputs.map((n) => (n ? partials.get(n) : undefined)),
      };
      outs = guard(ctx, () => infer(ctx));
      const allConst = node.inputs.every((n, i) => !n || ctx.values[i]);
      const small = ctx.values.every((t) => !t || t.size <= maxEval) && outs.every((o) => !o.shape || elements(o.shape) <= maxEval);
      if (spec.evaluate && allConst && small && node.outputs.some((n, i) => n && !outs[i]?.value)) {
        const ts = attempt(ctx, () => spec.evaluate!(ctx)) ?? [];
        ts.forEach((t, i) => (outs[i] = { dtype: t.dtype, shape: t.dims, value: t }));
      }
      // partial values: Shape of a symbolic shape, and what shape arithmetic makes of it
      if (spec.partial && node.outputs.some((n, i) => n && !outs[i]?.value)) {
        (attempt(ctx, () => spec.partial!(ctx)) ?? []).forEach((p, i) => {
          const o = outs[i];
          if (!p || !o || o.value || !node.outputs[i] || p.length > MAX_PARTIAL) return;
          partials.set(node.outputs[i], p);
          // fully numeric after all (Shape(x)[1] of ['batch', 3, …]): a constant
          if (p.every((d) => typeof d === 'number') && o.dtype && o.shape?.every((d) => typeof d === 'number') && elements(o.shape) === p.length)
            try {
              o.value = toTensor(node.outputs[i], { dtype: o.dtype, dims: o.shape as number[], v: p as number[] });
            } catch (e) {
              if (!(e instanceof CannotEvaluate)) throw e;
            }
        });
      }
    }
    node.outputs.forEach((name, i) => {
      if (!name) return;
      const o = outs[i] ?? {};
      const prev = old.get(name) ?? (infer ? undefined : declared.get(name));
      const info: ValueInfo = { name, dtype: o.dtype ?? prev?.dtype, shape: o.shape ?? sanitize(prev?.shape) };
      if (old.get(name)?.passthrough) info.passthrough = old.get(name)!.passthrough;
      infos.set(name, info);
      valueInfo.set(name, info);
      if (o.value) constants.set(name, o.value.name === name ? o.value : o.value.withName(name));
    });
  }
  g.valueInfo = valueInfo;

  // declared graph outputs: take the inferred type, keeping declared dims where inference only has a fresh name
  for (const out of g.outputs) {
    const inf = infos.get(out.name);
    if (!inf) continue;
    out.dtype = inf.dtype ?? out.dtype;
    if (inf.shape) {
      const decl = out.shape?.length === inf.shape.length ? out.shape : undefined;
      out.shape = inf.shape.map((d, k): Dim => (typeof d === 'string' && freshNames.has(d) && decl && decl[k] !== '?' ? decl[k] : d));
    }
  }
  return { unknownOps, constants };
}

function applyInputShapes(g: Graph, shapes: Record<string, number[]>): void {
  const feeds = g.feeds;
  for (const [name, dims] of Object.entries(shapes)) {
    const inp = feeds.find((i) => i.name === name);
    if (!inp) throw new LinfoldError(`inputShapes: '${name}' is not an input of the graph (inputs: ${feeds.map((i) => i.name).join(', ') || 'none'})`);
    if (!Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0))
      throw new LinfoldError(`inputShapes: the shape given for input '${name}' must be a list of non-negative integers, got ${JSON.stringify(dims)}`);
    const s = inp.shape;
    if (s && s.length !== dims.length)
      throw new LinfoldError(`inputShapes: input '${name}' has rank ${s.length} [${s.join(',')}], but [${dims.join(',')}] was given`);
    const k = s?.findIndex((d, i) => typeof d === 'number' && d !== dims[i]) ?? -1;
    if (k >= 0) throw new LinfoldError(`inputShapes: input '${name}' has dim ${k} fixed to ${s![k]}, but [${dims.join(',')}] was given`);
    inp.shape = [...dims];
  }
}

/** Runs a rule, turning an internal failure into an error naming the node. */
function guard<T>(ctx: OpContext, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof LinfoldError) throw e;
    throw new LinfoldError(`node ${nodeLabel(ctx.node)}: shape inference failed (${(e as Error).message})`, 2, { cause: e });
  }
}

/** Like guard, for evaluators: undefined when the evaluator cannot handle its inputs. */
function attempt<T>(ctx: OpContext, f: () => T): T | undefined {
  return guard(ctx, () => {
    try {
      return f();
    } catch (e) {
      if (e instanceof CannotEvaluate) return undefined;
      throw e;
    }
  });
}

const elements = (s: Shape): number => s.reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1);

function symbolsOf(g: Graph): Set<string> {
  const s = new Set<string>();
  for (const v of [...g.inputs, ...g.outputs, ...g.valueInfo.values()]) for (const d of v.shape ?? []) if (typeof d === 'string') s.add(d);
  return s;
}
