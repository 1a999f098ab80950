// Conv: the input gradient is a ConvTranspose of dY with the same kernel (strides, pads, dilations, groups;
// output_padding restores the input size); the filter gradient of an unstrided, ungrouped 2-D conv is one Gemm
// over X's windows, otherwise a Conv with batch and channels swapped — X as [Ci/g, g·N, H, W], dY as the kernel
// [Co, N, oh, ow], strides and dilations exchanged, groups g — which covers dense, grouped and depthwise convs,
// strided and padded; the bias gradient sums dY over N and space.
import { convOutSize } from '../../../import/shape-math.js';
import { LinfoldError } from '../../../errors.js';
import { attrInts, attrInt, attrString, nodeLabel, type Node } from '../../../import/ir.js';
import type { Emitter } from '../emit.js';
import { registerGrads, type GradContext } from './registry.js';

interface ConvGeometry { k: number[]; s: number[]; d: number[]; pb: number[]; pe: number[]; group: number; x: number[]; y: number[] }

function geometry(e: Emitter, n: Node): ConvGeometry {
  const xs = e.shape(n.inputs[0], n), ws = e.staticShape(n.inputs[1], n);
  const r = ws.length - 2;
  const x = xs.slice(2).map((v) => {
    if (typeof v !== 'number') throw new LinfoldError(`native backend: ${nodeLabel(n)} needs static spatial dims, input is [${xs}]`);
    return v;
  });
  const k = attrInts(n, 'kernel_shape') ?? ws.slice(2);
  const s = attrInts(n, 'strides') ?? new Array(r).fill(1);
  const d = attrInts(n, 'dilations') ?? new Array(r).fill(1);
  const group = attrInt(n, 'group', 1);
  const auto = attrString(n, 'auto_pad', 'NOTSET');
  let pads = attrInts(n, 'pads') ?? new Array(2 * r).fill(0);
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') {
    pads = new Array(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const out = Math.ceil(x[i] / s[i]);
      const total = Math.max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - x[i]);
      const small = Math.floor(total / 2);
      pads[i] = auto === 'SAME_UPPER' ? small : total - small;
      pads[i + r] = total - pads[i];
    }
  } else if (auto === 'VALID') pads = new Array(2 * r).fill(0);
  const pb = pads.slice(0, r), pe = pads.slice(r);
  const y = x.map((v, i) => convOutSize(v, k[i], s[i], d[i], pb[i], pe[i]));
  return { k, s, d, pb, pe, group, x, y };
}


/** Filter gradient of any conv as one Conv: X as [Ci/g, g·N, ...] convolved with dY as the kernel [Co, N, oh, ow]. */
function filterGradConv(e: Emitter, X: string, dY: string, g: ConvGeometry, cig: number): string {
  const r = g.k.length;
  const spatial = g.x;
  // X [N, Ci, ...] → [N, g, Ci/g, ...] → [Ci/g, g, N, ...] → [Ci/g, g·N, ...]
  const xg = e.op('Reshape', [X, e.i64([0, g.group, cig, ...spatial])]);
  const xt = e.op('Transpose', [xg], { perm: [2, 1, 0, ...spatial.map((_, i) => 3 + i)] });
  const xin = e.op('Reshape', [xt, e.i64([cig, -1, ...spatial])]);
  const kern = e.op('Transpose', [dY], { perm: [1, 0, ...spatial.map((_, i) => 2 + i)] });
  // output size per axis: floor((x + pb + pe − ((y−1)·s + 1)) / d) + 1 ≥ k; trim the end padding, then slice
  const pe = [...g.pe];
  const size = (i: number) => Math.floor((g.x[i] + g.pb[i] + pe[i] - ((g.y[i] - 1) * g.s[i] + 1)) / g.d[i]) + 1;
  for (let i = 0; i < r; i++) {
    const extra = size(i) - g.k[i];
    if (extra > 0) pe[i] = Math.max(0, pe[i] - extra * g.d[i]);
  }
  let dw = e.op('Conv', [xin, kern], { strides: g.d, dilations: g.s, pads: [...g.pb, ...pe], group: g.group, kernel_shape: g.y }, 'dW');
  const sizes = g.k.map((_, i) => size(i));
  if (sizes.some((v, i) => v !== g.k[i])) {
    const axes = g.k.map((_, i) => 2 + i);
    dw = e.op('Slice', [dw, e.i64(g.k.map(() => 0)), e.i64(g.k), e.i64(axes)]);
  }
  return e.op('Transpose', [dw], { perm: [1, 0, ...g.k.map((_, i) => 2 + i)] });
}

/**
 * Filter gradient of an ungrouped, unstrided 2-D conv as one Gemm: dW [Co, Ci·kh·kw] = dY [Co, N·J] · colsᵀ.
 * X is transposed to [Ci, N, Hp, Wp] (padded) and flattened per image; dY gets Wp − ow zero columns, so that
 * tap (a, b)'s window is the contiguous run of J = oh·Wp values from a·d·Wp + b·d (the extra columns meet zeros).
 * onnxruntime's Conv formulation im2cols a kernel of oh×ow for an output of kh×kw (2–3× slower).
 */
function filterGradGemm(e: Emitter, X: string, dY: string, g: ConvGeometry, co: number, cig: number): string {
  const [kh, kw] = g.k, [dh, dw] = g.d;
  const hp = g.x[0] + g.pb[0] + g.pe[0], wp = g.x[1] + g.pb[1] + g.pe[1];
  const J = g.y[0] * wp, rows = Math.ceil(((kw - 1) * dw) / wp); // zero rows below hold the last windows' overrun
  let xt = e.op('Transpose', [X], { perm: [1, 0, 2, 3] });
  if ([...g.pb, ...g.pe].some((v) => v > 0) || rows) xt = e.op('Pad', [xt, e.i64([0, 0, ...g.pb, 0, 0, g.pe[0] + rows, g.pe[1]])]);
  const flat = e.op('Reshape', [xt, e.i64([0, 0, (hp + rows) * wp])]);
  const taps: string[] = [];
  const axis = e.i64([2]);
  for (let a = 0; a < kh; a++)
    for (let b = 0; b < kw; b++) {
      const off = a * dh * wp + b * dw;
      taps.push(off === 0 && J === (hp + rows) * wp ? flat : e.op('Slice', [flat, e.i64([off]), e.i64([off + J]), axis]));
    }
  const stacked = taps.length > 1 ? e.op('Concat', taps.map((t) => e.op('Unsqueeze', [t, e.i64([1])])), { axis: 1 }) : taps[0];
  const cols = e.op('Reshape', [stacked, e.i64([cig * taps.length, -1])]);
  let dyw = dY;
  if (wp > g.y[1]) dyw = e.op('Pad', [dY, e.i64([0, 0, 0, 0, 0, 0, 0, wp - g.y[1]])]);
  const dyt = e.op('Reshape', [e.op('Transpose', [dyw], { perm: [1, 0, 2, 3] }), e.i64([co, -1])]);
  return e.op('Reshape', [e.op('Gemm', [dyt, cols], { transB: 1 }), e.i64([co, cig, kh, kw])], {}, 'dW');
}

function convGrad({ e, node, dOut, need }: GradContext): (string | undefined)[] {
  const dY = dOut[0]!;
  const [X, W] = node.inputs;
  const g = geometry(e, node);
  const r = g.k.length;
  const [co, cig] = e.staticShape(W, node);
  const res: (string | undefined)[] = [];
  if (need[0]) {
    const outPad = g.x.map((v, i) => v - ((g.y[i] - 1) * g.s[i] + (g.k[i] - 1) * g.d[i] + 1 - g.pb[i] - g.pe[i]));
    res[0] = e.op('ConvTranspose', [dY, W], {
      kernel_shape: g.k, strides: g.s, dilations: g.d, pads: [...g.pb, ...g.pe], group: g.group, output_padding: outPad,
    }, 'dX');
  }
  if (need[1]) res[1] = g.group === 1 && r === 2 && g.s.every((v) => v === 1) ? filterGradGemm(e, X, dY, g, co, cig) : filterGradConv(e, X, dY, g, cig);
  if (need[2] && node.inputs[2]) res[2] = e.op('ReduceSum', [dY, e.i64([0, ...g.k.map((_, i) => 2 + i)])], { keepdims: 0 }, 'dB');
  return res;
}

registerGrads({ op: 'Conv', weights: [1, 2], grad: convGrad });
