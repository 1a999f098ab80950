// Gemm and MatMul: products of dY with the other operand, transposed as the forward node's flags demand;
// MatMul's broadcast batch dims are summed back.
import { LinfoldError } from '../../../errors.js';
import { attrFloat, attrInt, nodeLabel } from '../../../import/ir.js';
import { registerGrads } from './registry.js';

registerGrads(
  {
    op: 'Gemm', weights: [0, 1, 2],
    grad: ({ e, node, dOut, need }) => {
      const [A, B, C] = node.inputs;
      const dY = dOut[0]!;
      const tA = attrInt(node, 'transA', 0), tB = attrInt(node, 'transB', 0);
      const alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
      const gemm = (a: string, b: string, transA: number, transB: number) => e.op('Gemm', [a, b], { transA, transB, alpha: { type: 'float', value: alpha } });
      const res: (string | undefined)[] = [];
      // A' = tA ? Aᵀ : A, B' likewise; dA' = dY·B'ᵀ, dB' = A'ᵀ·dY
      if (need[0]) res[0] = tA ? gemm(B, dY, tB, 1) : gemm(dY, B, 0, tB ? 0 : 1);
      if (need[1]) res[1] = tB ? gemm(dY, A, 1, tA) : gemm(A, dY, tA ? 0 : 1, 0);
      if (need[2] && C) {
        const dC = beta === 1 ? dY : e.op('Mul', [dY, e.f32(beta)]);
        res[2] = e.unbroadcast(dC, C, node.outputs[0], node);
      }
      return res;
    },
  },
  {
    op: 'MatMul', weights: [0, 1],
    grad: ({ e, node, dOut, need }) => {
      const [A, B] = node.inputs;
      const ra = e.shape(A, node).length, rb = e.shape(B, node).length;
      if (ra < 2 || rb < 2) throw new LinfoldError(`native backend: ${nodeLabel(node)}: MatMul of a 1-D operand is not supported`);
      const dY = dOut[0]!;
      const swap = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
      const res: (string | undefined)[] = [];
      if (need[0]) res[0] = e.unbroadcast(e.op('MatMul', [dY, e.op('Transpose', [B], { perm: swap(rb) })]), A, node.outputs[0], node, 2);
      if (need[1]) res[1] = e.unbroadcast(e.op('MatMul', [e.op('Transpose', [A], { perm: swap(ra) }), dY]), B, node.outputs[0], node, 2);
      return res;
    },
  },
);
