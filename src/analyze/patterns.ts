// Structural recognition of activations (as ops and as the subgraphs exporters emit) and of decomposed
// normalizations. Pure graph matching: which nodes form one activation, its input and output, its slope.
// Channel axis, channel count and the linear mask need the tensor layout and are filled in by propagate.ts.
import { matchBlendAt } from '../import/blend.js';
import type { Graph, Node, Tensor } from '../import/ir.js';
import { attrFloat, attrString } from '../import/ir.js';
import type { Constants } from './shapes.js';

export type ActivationKind =
  | 'relu' | 'leakyrelu' | 'prelu' | 'clip' | 'gelu' | 'silu' | 'hardswish' | 'hardsigmoid' | 'sigmoid' | 'tanh'
  | 'elu' | 'selu' | 'celu' | 'softplus' | 'softsign' | 'mish' | 'thresholdedrelu';

/**
 * 'op': one ONNX op (Relu, PRelu, HardSwish, …). 'pattern': a subgraph an exporter emits for one activation
 * (the Erf chain of GELU, x·Sigmoid(x), x·Clip(x+3,0,6)/6, …). 'blend': linfold's linearizable form
 * `y = s + A ⊙ (x − s)` around an activation `s` (op or pattern).
 */
export type ActivationForm = 'op' | 'pattern' | 'blend';

export interface ActivationMatch {
  kind: ActivationKind;
  form: ActivationForm;
  /** For a blend: the form of the activation it wraps. */
  baseForm?: 'op' | 'pattern';
  /** Every node the activation spans, in graph order of matching (the last one produces `output`). */
  nodes: Node[];
  input: string;
  output: string;
  /**
   * Per-channel coefficient where 1 means identity: PRelu slope, blend A (a value name; `tensor` is its
   * constant value, undefined when it is computed at run time). LeakyRelu's alpha is `scalarSlope`.
   */
  slope?: { value: string; tensor?: Tensor };
  scalarSlope?: number;
  /** The function is the identity on the whole real line (Clip without bounds). */
  identity?: boolean;
  /** Sigmoid / HardSigmoid gates: the Muls that multiply a different tensor by this output. */
  gatingMuls: Node[];
  params: Record<string, number | string>;
}

export type OtherPatternKind = 'layernorm' | 'rmsnorm';

/** A nonlinear non-activation op spelled out as a subgraph (LayerNorm before opset 17, RMSNorm). */
export interface OtherPatternMatch {
  kind: OtherPatternKind;
  nodes: Node[];
  input: string;
  output: string;
}

export interface PatternMatches {
  activations: ActivationMatch[];
  others: OtherPatternMatch[];
}

const DEFAULT_DOMAINS = new Set(['', 'ai.onnx']);
const MS = 'com.microsoft';
/** Narrows to a node on a match; the brand keeps the negative branch from narrowing a Node to never. */
type OpNode = Node & { readonly __op: true };
const isOp = (n: Node | undefined, op: string): n is OpNode => !!n && n.opType === op && DEFAULT_DOMAINS.has(n.domain);
const approx = (v: number | undefined, want: number, rel = 1e-3): boolean =>
  v !== undefined && Math.abs(v - want) <= rel * Math.max(1, Math.abs(want));

const LAYOUT = new Set(['Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Expand', 'Tile', 'Transpose', 'Identity', 'Cast', 'Resize', 'Upsample']);
const SQRT2 = Math.SQRT2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const FLT_MAX = 3.4e38;

export function matchPatterns(graph: Graph, consts: Constants): PatternMatches {
  return new Matcher(graph, consts).run();
}

class Matcher {
  private readonly prod: Map<string, Node>;
  private readonly cons: Map<string, Node[]>;
  private readonly outputs: Set<string>;
  private readonly claimed = new Set<Node>();

  constructor(private readonly graph: Graph, private readonly consts: Constants) {
    this.prod = graph.producers();
    this.cons = graph.consumers();
    this.outputs = new Set(graph.outputs.map((o) => o.name));
  }

  run(): PatternMatches {
    const activations: ActivationMatch[] = [];
    const others: OtherPatternMatch[] = [];
    // multi-node patterns first (they contain single ops that would otherwise match alone)
    for (const n of this.graph.nodes) {
      if (this.claimed.has(n)) continue;
      const m = this.matchPattern(n);
      if (m && this.claim(m.nodes)) activations.push(m);
    }
    for (const n of this.graph.nodes) {
      if (this.claimed.has(n)) continue;
      const o = this.matchNorm(n);
      if (o && this.claim(o.nodes)) others.push(o);
    }
    for (const n of this.graph.nodes) {
      if (this.claimed.has(n)) continue;
      const m = this.matchOp(n);
      if (m && this.claim(m.nodes)) activations.push(m);
    }
    // blends wrap an activation already found; gates are decided on the final output
    const out = activations.map((m) => {
      const b = this.matchBlend(m);
      if (b && this.claim(b.nodes.slice(m.nodes.length))) return b;
      return m;
    });
    for (const m of out) if (m.kind === 'sigmoid' || m.kind === 'hardsigmoid') m.gatingMuls = this.gatingMuls(m);
    const order = new Map(this.graph.nodes.map((n, i) => [n, i]));
    const last = (m: { nodes: Node[] }) => Math.max(...m.nodes.map((n) => order.get(n) ?? 0));
    out.sort((a, b) => last(a) - last(b));
    others.sort((a, b) => last(a) - last(b));
    return { activations: out, others };
  }

  private claim(nodes: Node[]): boolean {
    if (nodes.some((n) => this.claimed.has(n))) return false;
    for (const n of nodes) this.claimed.add(n);
    return true;
  }

  /** The only reader of `v`, when v is not also a graph output. */
  private single(v: string): Node | undefined {
    if (this.outputs.has(v)) return undefined;
    const c = this.cons.get(v);
    return c && c.length === 1 ? c[0] : undefined;
  }

  private other(n: Node, v: string): string {
    return n.inputs[0] === v ? n.inputs[1] : n.inputs[0];
  }

  private scalar(v: string): number | undefined {
    return this.consts.scalar(v);
  }

  /** `p` computes c·x (Mul in either order) or x/(1/c). */
  private isScaled(p: Node | undefined, x: string, c: number): boolean {
    if (isOp(p, 'Mul')) return (p.inputs[0] === x && approx(this.scalar(p.inputs[1]), c)) || (p.inputs[1] === x && approx(this.scalar(p.inputs[0]), c));
    if (isOp(p, 'Div')) return p.inputs[0] === x && approx(1 / (this.scalar(p.inputs[1]) ?? NaN), c);
    return false;
  }

  /**
   * From `start`, up to two Mul/Div nodes that multiply it by x and by the constant c, in any order and
   * association: (start·x)·c, (start·c)·x, start·(x·c), start·x/(1/c), …
   */
  private productTail(start: string, x: string, c: number): { nodes: Node[]; output: string } | undefined {
    let cur = start;
    const nodes: Node[] = [];
    let haveX = false;
    let haveC = false;
    for (let step = 0; step < 2 && !(haveX && haveC); step++) {
      const n = this.single(cur);
      if (!n || n.inputs.length !== 2) return undefined;
      if (isOp(n, 'Mul')) {
        const o = this.other(n, cur);
        if (o === x && !haveX) haveX = true;
        else if (!haveC && approx(this.scalar(o), c)) haveC = true;
        else if (!haveX && !haveC && this.single(o) === n && this.isScaled(this.prod.get(o), x, c)) {
          haveX = haveC = true;
          nodes.push(this.prod.get(o)!);
        } else return undefined;
      } else if (isOp(n, 'Div') && n.inputs[0] === cur && !haveC && approx(1 / (this.scalar(n.inputs[1]) ?? NaN), c)) {
        haveC = true;
      } else return undefined;
      nodes.push(n);
      cur = n.outputs[0];
    }
    return haveX && haveC ? { nodes, output: cur } : undefined;
  }

  /** Add(v, 1) in either order, v's only reader. */
  private plusOne(v: string): Node | undefined {
    const a = this.single(v);
    return isOp(a, 'Add') && approx(this.scalar(this.other(a, v)), 1) ? a : undefined;
  }

  private act(kind: ActivationKind, form: ActivationForm, nodes: Node[], input: string, output: string, params: Record<string, number | string> = {}): ActivationMatch {
    return { kind, form, nodes, input, output, gatingMuls: [], params };
  }

  // ---- multi-node activation patterns ----
  private matchPattern(n: Node): ActivationMatch | undefined {
    if (isOp(n, 'Erf')) return this.geluErf(n);
    if (isOp(n, 'Tanh')) return this.geluTanh(n) ?? this.mish(n);
    if (isOp(n, 'Sigmoid')) return this.silu(n);
    if (isOp(n, 'HardSigmoid')) return this.hardswishFromHardSigmoid(n);
    if (isOp(n, 'Clip')) return this.hardswishFromClip(n);
    if (isOp(n, 'Max') || isOp(n, 'Min')) return this.scaledMaxMin(n) ?? (isOp(n, 'Max') ? this.minMaxClip(n) : undefined);
    if (isOp(n, 'Relu')) return this.minMaxClip(n);
    return undefined;
  }

  /**
   * PReLU spelled Max(x, a ⊙ x) (slopes in [0, 1]) or Min(x, a ⊙ x) (slopes ≥ 1), as linfold's fold writes
   * partially linear layers because onnxruntime runs it faster than PRelu.
   */
  private scaledMaxMin(n: Node): ActivationMatch | undefined {
    if (n.inputs.length !== 2) return undefined;
    for (const k of [0, 1]) {
      const x = n.inputs[k];
      const mul = this.prod.get(n.inputs[1 - k]);
      if (!isOp(mul, 'Mul') || this.single(mul!.outputs[0]) !== n || !mul!.inputs.includes(x)) continue;
      const a = this.other(mul!, x);
      const tensor = this.consts.get(a);
      if (!tensor) continue;
      const values = tensor.numbers();
      const ok = isOp(n, 'Max') ? values.every((v) => v >= 0 && v <= 1) : values.every((v) => v >= 1);
      if (ok) return { ...this.act('prelu', 'pattern', [mul!, n], x, n.outputs[0]), slope: { value: a, tensor } };
    }
    return undefined;
  }

  /** ReLU/ReLU6 spelled with Max/Min (TF exports): Max(x, a), Relu(x), optionally followed by Min(·, b). */
  private minMaxClip(n: Node): ActivationMatch | undefined {
    let x: string;
    let min: number;
    if (isOp(n, 'Relu')) {
      x = n.inputs[0];
      min = 0;
    } else {
      if (n.inputs.length !== 2) return undefined;
      const k = this.scalar(n.inputs[1]) !== undefined ? 1 : this.scalar(n.inputs[0]) !== undefined ? 0 : -1;
      if (k < 0 || this.consts.has(n.inputs[1 - k])) return undefined;
      x = n.inputs[1 - k];
      min = this.scalar(n.inputs[k])!;
    }
    const mn = this.single(n.outputs[0]);
    const max = isOp(mn, 'Min') && mn.inputs.length === 2 ? this.scalar(this.other(mn, n.outputs[0])) : undefined;
    if (isOp(mn, 'Min') && max !== undefined && max > min) return this.act('clip', 'pattern', [n, mn], x, mn.outputs[0], { min, max });
    if (isOp(n, 'Max')) return min === 0 ? this.act('relu', 'pattern', [n], x, n.outputs[0]) : this.act('clip', 'pattern', [n], x, n.outputs[0], { min });
    return undefined;
  }

  /** 0.5·x·(1 + erf(x/√2)), as torch exports nn.GELU(). */
  private geluErf(erf: Node): ActivationMatch | undefined {
    const z = erf.inputs[0];
    const pz = this.prod.get(z);
    if (!pz || this.single(z) !== erf) return undefined;
    let x: string | undefined;
    if (isOp(pz, 'Div') && approx(this.scalar(pz.inputs[1]), SQRT2)) x = pz.inputs[0];
    else if (isOp(pz, 'Mul')) {
      if (approx(this.scalar(pz.inputs[1]), 1 / SQRT2)) x = pz.inputs[0];
      else if (approx(this.scalar(pz.inputs[0]), 1 / SQRT2)) x = pz.inputs[1];
    }
    if (!x) return undefined;
    const add = this.plusOne(erf.outputs[0]);
    if (!add) return undefined;
    const tail = this.productTail(add.outputs[0], x, 0.5);
    if (!tail) return undefined;
    return this.act('gelu', 'pattern', [pz, erf, add, ...tail.nodes], x, tail.output, { approximate: 'none' });
  }

  /** 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
  private geluTanh(tanh: Node): ActivationMatch | undefined {
    const u = tanh.inputs[0];
    const pu = this.prod.get(u);
    if (!isOp(pu, 'Mul') || this.single(u) !== tanh) return undefined;
    const [v, cv] = approx(this.scalar(pu.inputs[1]), SQRT_2_OVER_PI) ? [pu.inputs[0], 1] : approx(this.scalar(pu.inputs[0]), SQRT_2_OVER_PI) ? [pu.inputs[1], 0] : [undefined, -1];
    if (!v || cv < 0) return undefined;
    const inner = this.prod.get(v);
    if (!isOp(inner, 'Add') || this.single(v) !== pu) return undefined;
    for (const k of [0, 1]) {
      const x = inner.inputs[1 - k];
      const w = inner.inputs[k];
      const pw = this.prod.get(w);
      if (!isOp(pw, 'Mul') || this.single(w) !== inner) continue;
      const cube = approx(this.scalar(pw.inputs[1]), 0.044715) ? pw.inputs[0] : approx(this.scalar(pw.inputs[0]), 0.044715) ? pw.inputs[1] : undefined;
      if (!cube || this.single(cube) !== pw) continue;
      const cubeNodes = this.cubeOf(cube, x);
      if (!cubeNodes) continue;
      const add = this.plusOne(tanh.outputs[0]);
      if (!add) return undefined;
      const tail = this.productTail(add.outputs[0], x, 0.5);
      if (!tail) return undefined;
      return this.act('gelu', 'pattern', [...cubeNodes, pw, inner, pu, tanh, add, ...tail.nodes], x, tail.output, { approximate: 'tanh' });
    }
    return undefined;
  }

  /** Nodes computing x³: Pow(x, 3), x·(x·x) or (x·x)·x. */
  private cubeOf(v: string, x: string): Node[] | undefined {
    const p = this.prod.get(v);
    if (isOp(p, 'Pow') && p.inputs[0] === x && approx(this.scalar(p.inputs[1]), 3)) return [p];
    if (isOp(p, 'Mul')) {
      for (const k of [0, 1]) {
        if (p.inputs[k] !== x) continue;
        const sq = this.prod.get(p.inputs[1 - k]);
        if (isOp(sq, 'Mul') && sq.inputs[0] === x && sq.inputs[1] === x && this.single(sq.outputs[0]) === p) return [sq, p];
      }
    }
    return undefined;
  }

  /** x·tanh(softplus(x)). */
  private mish(tanh: Node): ActivationMatch | undefined {
    const sp = this.prod.get(tanh.inputs[0]);
    if (!isOp(sp, 'Softplus') || this.single(sp.outputs[0]) !== tanh) return undefined;
    const x = sp.inputs[0];
    const m = this.single(tanh.outputs[0]);
    if (!isOp(m, 'Mul') || this.other(m, tanh.outputs[0]) !== x) return undefined;
    return this.act('mish', 'pattern', [sp, tanh, m], x, m.outputs[0]);
  }

  /** x·sigmoid(x), and x·sigmoid(βx). */
  private silu(sig: Node): ActivationMatch | undefined {
    const z = sig.inputs[0];
    const m = this.single(sig.outputs[0]);
    if (!isOp(m, 'Mul')) return undefined;
    const o = this.other(m, sig.outputs[0]);
    if (o === z) return this.act('silu', 'pattern', [sig, m], z, m.outputs[0]);
    const pz = this.prod.get(z);
    if (isOp(pz, 'Mul') && this.single(z) === sig && (pz.inputs[0] === o || pz.inputs[1] === o)) {
      const beta = this.scalar(this.other(pz, o));
      if (beta !== undefined) return this.act('silu', 'pattern', [pz, sig, m], o, m.outputs[0], { beta });
    }
    return undefined;
  }

  /** x·HardSigmoid(x) (torch's hardswish before opset 14). */
  private hardswishFromHardSigmoid(hs: Node): ActivationMatch | undefined {
    const x = hs.inputs[0];
    const m = this.single(hs.outputs[0]);
    if (!isOp(m, 'Mul') || this.other(m, hs.outputs[0]) !== x) return undefined;
    return this.act('hardswish', 'pattern', [hs, m], x, m.outputs[0], { alpha: attrFloat(hs, 'alpha', 0.2), beta: attrFloat(hs, 'beta', 0.5) });
  }

  /** x·Clip(x+3, 0, 6)/6 in any association. */
  private hardswishFromClip(clip: Node): ActivationMatch | undefined {
    const { min, max } = this.clipBounds(clip);
    if (!approx(min, 0) || !approx(max, 6)) return undefined;
    const a = clip.inputs[0];
    const pa = this.prod.get(a);
    if (!isOp(pa, 'Add') || this.single(a) !== clip) return undefined;
    const x = approx(this.scalar(pa.inputs[1]), 3) ? pa.inputs[0] : approx(this.scalar(pa.inputs[0]), 3) ? pa.inputs[1] : undefined;
    if (!x) return undefined;
    const tail = this.productTail(clip.outputs[0], x, 1 / 6);
    if (!tail) return undefined;
    return this.act('hardswish', 'pattern', [pa, clip, ...tail.nodes], x, tail.output);
  }

  /** Clip bounds: attributes before opset 11, inputs after; absent = unbounded; undefined = computed at run time. */
  private clipBounds(clip: Node): { min: number | undefined; max: number | undefined } {
    if (clip.attrs.min || clip.attrs.max)
      return { min: attrFloat(clip, 'min', -Infinity), max: attrFloat(clip, 'max', Infinity) };
    const b = (i: number, dflt: number) => (clip.inputs[i] ? this.scalar(clip.inputs[i]) : dflt);
    return { min: b(1, -Infinity), max: b(2, Infinity) };
  }

  // ---- single ops ----
  private matchOp(n: Node): ActivationMatch | undefined {
    const x = n.inputs[0];
    const y = n.outputs[0];
    if (!x || !y) return undefined;
    if (n.domain === MS) {
      if (n.opType === 'Gelu' || n.opType === 'BiasGelu') return this.act('gelu', 'op', [n], x, y, { approximate: 'none' });
      if (n.opType === 'FastGelu') return this.act('gelu', 'op', [n], x, y, { approximate: 'tanh' });
      if (n.opType === 'QuickGelu') return this.act('silu', 'op', [n], x, y, { beta: attrFloat(n, 'alpha', 1.702) });
      return undefined;
    }
    if (!DEFAULT_DOMAINS.has(n.domain)) return undefined;
    switch (n.opType) {
      case 'Relu': return this.act('relu', 'op', [n], x, y);
      case 'LeakyRelu': {
        const alpha = attrFloat(n, 'alpha', 0.01);
        return { ...this.act('leakyrelu', 'op', [n], x, y, { alpha }), scalarSlope: alpha };
      }
      case 'PRelu': {
        const s = n.inputs[1];
        return { ...this.act('prelu', 'op', [n], x, y), slope: { value: s, tensor: this.consts.get(s) } };
      }
      case 'Clip': {
        const { min, max } = this.clipBounds(n);
        const params: Record<string, number | string> = {};
        if (min !== undefined && Number.isFinite(min)) params.min = min;
        if (max !== undefined && Number.isFinite(max)) params.max = max;
        const identity = min !== undefined && max !== undefined && min <= -FLT_MAX && max >= FLT_MAX;
        return { ...this.act('clip', 'op', [n], x, y, params), identity };
      }
      case 'Gelu': return this.act('gelu', 'op', [n], x, y, { approximate: attrString(n, 'approximate', 'none') });
      case 'HardSwish': return this.act('hardswish', 'op', [n], x, y);
      case 'HardSigmoid': return this.act('hardsigmoid', 'op', [n], x, y, { alpha: attrFloat(n, 'alpha', 0.2), beta: attrFloat(n, 'beta', 0.5) });
      case 'Sigmoid': return this.act('sigmoid', 'op', [n], x, y);
      case 'Tanh': return this.act('tanh', 'op', [n], x, y);
      case 'Elu': return this.act('elu', 'op', [n], x, y, { alpha: attrFloat(n, 'alpha', 1) });
      case 'Selu': return this.act('selu', 'op', [n], x, y);
      case 'Celu': return this.act('celu', 'op', [n], x, y, { alpha: attrFloat(n, 'alpha', 1) });
      case 'Softplus': return this.act('softplus', 'op', [n], x, y);
      case 'Softsign': return this.act('softsign', 'op', [n], x, y);
      case 'Mish': return this.act('mish', 'op', [n], x, y);
      case 'ThresholdedRelu': return this.act('thresholdedrelu', 'op', [n], x, y, { alpha: attrFloat(n, 'alpha', 1) });
      case 'Swish': return this.act('silu', 'op', [n], x, y, { beta: attrFloat(n, 'alpha', 1) });
      default: return undefined;
    }
  }

  /**
   * linfold's blend around an activation s = act(x): Sub(x, s) → Mul(·, A) → Add(s, ·), operands of the
   * Mul and the Add in either order; also the mirrored Sub(s, x) → Mul(·, A) → Sub(s, ·).
   */
  private matchBlend(m: ActivationMatch): ActivationMatch | undefined {
    const s = m.output;
    if (this.outputs.has(s)) return undefined;
    const readers = this.cons.get(s) ?? [];
    if (readers.length !== 2) return undefined;
    for (const sub of readers) {
      if (this.claimed.has(sub)) continue;
      for (const b of matchBlendAt(sub, this.cons)) {
        if (b.s !== s || b.x !== m.input || b.fin === sub || !readers.includes(b.fin)) continue;
        if (this.single(sub.outputs[0]) !== b.mul || this.single(b.mul.outputs[0]) !== b.fin || this.claimed.has(b.mul) || this.claimed.has(b.fin)) continue;
        const baseForm = m.form === 'blend' ? undefined : m.form;
        return {
          ...m, form: 'blend', baseForm, nodes: [...m.nodes, sub, b.mul, b.fin], output: b.fin.outputs[0],
          slope: { value: b.slope, tensor: this.consts.get(b.slope) }, gatingMuls: [],
        };
      }
    }
    return undefined;
  }


  /**
   * Muls that multiply a different, non-constant tensor by a sigmoid/hardsigmoid output, directly or
   * through layout ops (Reshape, Unsqueeze, Expand, … as TF/Keras exports of squeeze-excite have).
   */
  private gatingMuls(m: ActivationMatch): Node[] {
    const out: Node[] = [];
    const seen = new Set<string>();
    const queue = [m.output];
    while (queue.length) {
      const v = queue.shift()!;
      if (seen.has(v)) continue;
      seen.add(v);
      for (const c of this.cons.get(v) ?? []) {
        if (this.claimed.has(c)) continue;
        if (isOp(c, 'Mul')) {
          const o = this.other(c, v);
          if (o !== m.input && o !== v && !this.consts.has(o)) out.push(c);
        } else if (LAYOUT.has(c.opType) && DEFAULT_DOMAINS.has(c.domain) && c.inputs[0] === v) queue.push(c.outputs[0]);
      }
    }
    return out;
  }

  // ---- decomposed normalizations (anchored on the Sqrt) ----
  /**
   * LayerNorm: d = x − ReduceMean(x); d / Sqrt(ReduceMean(d²) + eps). RMSNorm: x / Sqrt(ReduceMean(x²) + eps)
   * (or x · Reciprocal(Sqrt(…))). d² may be Pow(d, 2) or Mul(d, d).
   */
  private matchNorm(sq: Node): OtherPatternMatch | undefined {
    if (!isOp(sq, 'Sqrt')) return undefined;
    const add = this.prod.get(sq.inputs[0]);
    if (!isOp(add, 'Add') || this.single(add.outputs[0]) !== sq) return undefined;
    const rm = [add.inputs[0], add.inputs[1]].map((v) => this.prod.get(v)).find((p) => isOp(p, 'ReduceMean'));
    if (!rm || this.single(rm.outputs[0]) !== add || this.scalar(this.other(add, rm.outputs[0])) === undefined) return undefined;
    const p2 = this.prod.get(rm.inputs[0]);
    if (!p2 || this.single(rm.inputs[0]) !== rm) return undefined;
    let d: string | undefined;
    if (isOp(p2, 'Pow') && approx(this.scalar(p2.inputs[1]), 2)) d = p2.inputs[0];
    else if (isOp(p2, 'Mul') && p2.inputs[0] === p2.inputs[1]) d = p2.inputs[0];
    if (!d) return undefined;
    // the division of d by the root
    const nodes: Node[] = [p2, rm, add, sq];
    let fin: Node | undefined;
    const r = this.single(sq.outputs[0]);
    if (isOp(r, 'Div') && r.inputs[0] === d && r.inputs[1] === sq.outputs[0]) fin = r;
    else if (isOp(r, 'Reciprocal')) {
      const mm = this.single(r.outputs[0]);
      if (isOp(mm, 'Mul') && this.other(mm, r.outputs[0]) === d) {
        nodes.push(r);
        fin = mm;
      }
    }
    if (!fin) return undefined;
    nodes.push(fin);
    // d's readers must be exactly the square and the division
    const dReaders = this.cons.get(d) ?? [];
    const sub = this.prod.get(d);
    if (isOp(sub, 'Sub') && dReaders.length === 2 && !this.outputs.has(d)) {
      const mean = this.prod.get(sub.inputs[1]);
      if (isOp(mean, 'ReduceMean') && mean.inputs[0] === sub.inputs[0] && this.single(sub.inputs[1]) === sub)
        return { kind: 'layernorm', nodes: [mean, sub, ...nodes], input: sub.inputs[0], output: fin.outputs[0] };
    }
    return { kind: 'rmsnorm', nodes, input: d, output: fin.outputs[0] };
  }
}
