// absorb-residual: Add(x, f(x)) with f one linear layer whose output has x's shape and geometry becomes f
// with the identity added to its weights: 1 at the kernel tap that reads x at the output's own position
// (conv: stride 1, begin pad = t·dilation for a tap t, pads summing to the receptive field, Cin = Cout) or
// on the diagonal of a square matrix (Gemm/MatMul).
// Also Add(K(x), D(x)) of two convs reading the same x with the same stride and output (a residual block's
// branch and its 1×1 downsample): D's kernel is added into K's at the taps that read the same pixels, so the
// sum is one conv (exact: both read zeros outside x alike).
import type { Graph, Node } from '../import/ir.js';
import { addInit, removeNodes, soleReader } from '../import/ir-edit.js';
import { convBehind, readConv, readDense, type ConvLayer, type DenseLayer } from './layers.js';
import { emitConv } from './merge-conv.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';
import { product, rowMajorStrides } from '../import/shape-math.js';

/** The flat kernel tap of a conv that reads the output's own position, or a reason why there is none. */
export function identityTap(l: ConvLayer): number | string {
  if (l.cin !== l.cout) return `channels change (${l.cin} → ${l.cout})`;
  const r = l.kernel.length;
  let tap = 0;
  for (let a = 0; a < r; a++) {
    if (l.strides[a] !== 1) return `stride ${l.strides[a]}`;
    const [k, d, pb, pe] = [l.kernel[a], l.dilations[a], l.pads[a], l.pads[a + r]];
    if (pb + pe !== (k - 1) * d) return 'output size differs from the input (padding is not "same")';
    if (pb % d !== 0) return 'the centre falls between dilated taps';
    tap = tap * k + pb / d;
  }
  return tap;
}

export const absorbResidualPass: FoldPass = {
  name: 'absorb-residual',
  kind: 'merge',
  candidates(g: Graph, ctx: PassContext): Candidate[] {
    const out: Candidate[] = [];
    const producers = g.producers();
    const consumers = g.consumers();
    for (const add of g.nodes) {
      if (add.opType !== 'Add' || add.inputs[0] === add.inputs[1]) continue;
      const parallel = parallelConvs(g, add, ctx, producers, consumers);
      if (parallel) out.push(parallel);
      for (const side of [0, 1]) {
        const fOut = add.inputs[side], x = add.inputs[1 - side];
        const p = producers.get(fOut);
        if (!p) continue;
        // the layer's core: p itself, or the conv/matmul before p when p is the layer's bias Add
        const core = p.opType === 'Add' ? [producers.get(p.inputs[0]), producers.get(p.inputs[1])].find((q) => q && ['Conv', 'Gemm', 'MatMul'].includes(q.opType)) : p;
        if (!core || !['Conv', 'Gemm', 'MatMul'].includes(core.opType)) continue;
        let layer: ConvLayer | DenseLayer | string = core.opType === 'Conv' ? readConv(g, core, ctx, true, producers, consumers) : readDense(g, core, true, producers, consumers);
        if (typeof layer === 'string' || layer.output !== fOut || layer.input !== x) continue;
        const what = `residual ${nm(add)} = x + ${core.opType} ${nm(core)}(x)`;
        const key = [nm(core), nm(add)];
        if (!soleReader(g, fOut, add, consumers)) {
          out.push({ what, nodes: key, refused: 'the layer output has other readers' });
          continue;
        }
        const shapeX = ctx.shapeOf(x), shapeY = ctx.shapeOf(add.outputs[0]);
        if (shapeX && shapeY && shapeX.join() !== shapeY.join()) {
          out.push({ what, nodes: key, refused: 'the sum broadcasts (shapes differ)' });
          continue;
        }
        const L = layer;
        if ('conv' in L) {
          const tap = identityTap(L);
          if (typeof tap === 'string') {
            out.push({ what, nodes: key, refused: tap });
            continue;
          }
          out.push({
            what: `${what} → identity added at the kernel centre`,
            nodes: key,
            apply: () => {
              const cinG = L.cin / L.group, kk = product(L.kernel);
              const W = L.W.slice();
              for (let o = 0; o < L.cout; o++) W[(o * cinG + (o % cinG)) * kk + tap] += 1;
              L.conv.inputs[1] = addInit(g, `${L.conv.name || 'conv'}_W_res`, L.wDims, W);
              (L.add ?? L.conv).outputs[0] = add.outputs[0];
              removeNodes(g, add);
            },
          });
        } else {
          if (L.K !== L.N || L.transA) {
            out.push({ what, nodes: key, refused: L.transA ? 'input read transposed' : `matrix is not square (${L.K}×${L.N})` });
            continue;
          }
          out.push({
            what: `${what} → identity added to the ${L.K}×${L.N} matrix`,
            nodes: key,
            apply: () => {
              // rewrite the core alone (its bias Add, if any, stays): alpha and transB folded into A
              const own = readDense(g, L.core, false) as DenseLayer;
              const A = own.A.slice();
              for (let i = 0; i < own.K; i++) A[i * own.N + i] += 1;
              L.core.inputs[1] = addInit(g, `${L.core.name || 'dense'}_W_res`, [own.K, own.N], A);
              if (L.kind === 'Gemm') {
                L.core.attrs = {};
                if (own.hasBias) L.core.inputs[2] = addInit(g, `${L.core.name || 'gemm'}_C_res`, own.biasRows === 1 ? [own.N] : [own.biasRows, own.N], own.bias);
              }
              (L.add ?? L.core).outputs[0] = add.outputs[0];
              removeNodes(g, add);
            },
          });
        }
      }
    }
    return out;
  },
};

/** Where D's kernel sits inside K's (per axis, in taps) so that K + D is one conv, or why it cannot. */
export function embedding(K: ConvLayer, D: ConvLayer): number[] | string {
  const r = K.kernel.length;
  if (D.kernel.length !== r || K.cout !== D.cout || K.cin !== D.cin) return 'the convs differ in rank or channels';
  if (K.group !== D.group) return `groups differ (${K.group}, ${D.group})`;
  if (K.map || D.map) return 'a bias map';
  const offset: number[] = [];
  for (let i = 0; i < r; i++) {
    const d = K.dilations[i];
    if (K.strides[i] !== D.strides[i] || D.dilations[i] !== d) return 'strides or dilations differ';
    const shift = K.pads[i] - D.pads[i];
    if (shift < 0 || shift % d || shift / d + D.kernel[i] > K.kernel[i]) return `${nm(D.conv)}'s taps do not fall inside ${nm(K.conv)}'s kernel`;
    offset.push(shift / d);
  }
  return offset;
}

/** Add(K(x), D(x)) → one conv with D's kernel embedded in K's, when their taps line up. */
function parallelConvs(g: Graph, add: Node, ctx: PassContext, producers: Map<string, Node>, consumers: Map<string, Node[]>): Candidate | undefined {
  const a = convBehind(g, add.inputs[0], add, ctx, producers, consumers), b = convBehind(g, add.inputs[1], add, ctx, producers, consumers);
  if (!a || !b || a.input !== b.input) return undefined;
  const [K, D] = product(a.kernel) >= product(b.kernel) ? [a, b] : [b, a];
  const what = `${nm(add)} = Conv ${nm(K.conv)}(x) + Conv ${nm(D.conv)}(x)`;
  const nodes = [nm(K.conv), nm(D.conv), nm(add)];
  const r = K.kernel.length;
  const refuse = (why: string): Candidate => ({ what, nodes, refused: why });
  const offset = embedding(K, D);
  if (typeof offset === 'string') return refuse(offset);
  const sk = ctx.shapeOf(K.output), sd = ctx.shapeOf(D.output);
  if (!sk || !sd || sk.join() !== sd.join()) return refuse('output shapes differ or are unknown');
  return {
    what: `${what} → one conv (${D.kernel.join('×')} kernel added into ${K.kernel.join('×')})`,
    nodes,
    apply: () => {
      const W = K.W.slice();
      const kS = rowMajorStrides(K.kernel), dS = rowMajorStrides(D.kernel);
      const kk = product(K.kernel), kd = product(D.kernel);
      const per = K.cout * (K.cin / K.group);
      for (let t = 0; t < kd; t++) {
        let m = 0;
        for (let i = 0, rem = t; i < r; i++) {
          const c = Math.floor(rem / dS[i]);
          rem -= c * dS[i];
          m += (c + offset[i]) * kS[i];
        }
        for (let oc = 0; oc < per; oc++) W[oc * kk + m] += D.W[oc * kd + t];
      }
      const bias = K.bias.map((v, o) => v + D.bias[o]);
      const s = ctx.shapeOf(add.outputs[0]);
      const made = emitConv(g, K.input, add.outputs[0], { W, wDims: K.wDims, group: K.group, strides: K.strides, dilations: K.dilations, pads: K.pads, kernel: K.kernel, bias },
        [K.conv, K.add, D.conv, D.add, add].filter((n): n is Node => !!n), `${K.conv.name || 'conv'}_parallel`);
      if (s) for (const n of made) ctx.setShape(n.outputs[0], s);
    },
  };
}

export function absorbResidual(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(absorbResidualPass, g, ctx);
}
