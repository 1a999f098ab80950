// absorb-residual: Add(x, f(x)) with f one linear layer whose output has x's shape and geometry becomes f
// with the identity added to its weights: 1 at the kernel tap that reads x at the output's own position
// (conv: stride 1, begin pad = t·dilation for a tap t, pads summing to the receptive field, Cin = Cout) or
// on the diagonal of a square matrix (Gemm/MatMul).
import type { Graph } from '../import/ir.js';
import { addInit, removeNodes, soleReader, prod } from './graph-utils.js';
import { readConv, readDense, type ConvLayer, type DenseLayer } from './layers.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';

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
              const cinG = L.cin / L.group, kk = prod(L.kernel);
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

export function absorbResidual(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(absorbResidualPass, g, ctx);
}
