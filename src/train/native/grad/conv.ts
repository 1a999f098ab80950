// Conv: the input gradient of an unstrided conv is a Conv of dY with the kernel flipped and its channel axes
// swapped per group (onnxruntime runs ConvTranspose as a Gemm plus a scatter-add col2im, ~2× slower); strided
// convs keep ConvTranspose (strides, pads, dilations, groups; output_padding restores the input size). The
// filter gradient of an ungrouped 2-D conv: a batched MatMul over X's windows (X itself for a 1×1 unstrided conv,
// else unfolded by a constant one-hot Conv); grouped, depthwise and other ranks, a Conv with
// batch and channels swapped — X as [Ci/g, g·N, H, W], dY as the kernel [Co, N, oh, ow], strides and dilations
// exchanged, groups g. The bias gradient sums dY over N and space.
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
 * Input gradient of an unstrided conv as a Conv of dY: the kernel flipped in space, [Co, Ci/g] swapped within
 * each group ([Ci, Co/g, ...]), pads d·(k−1) − p before and what restores X's size after. Undefined when a
 * pad exceeds the kernel's reach (then ConvTranspose).
 */
function inputGradConv(e: Emitter, dY: string, W: string, g: ConvGeometry, co: number, cig: number): string | undefined {
  const reach = g.k.map((k, i) => g.d[i] * (k - 1));
  const before = reach.map((v, i) => v - g.pb[i]);
  const after = g.x.map((v, i) => v - g.y[i] + reach[i] - before[i]);
  if ([...before, ...after].some((v) => v < 0)) return undefined;
  const r = g.k.length, spatial = g.k.map((_, i) => 2 + i);
  const grouped = e.op('Reshape', [W, e.i64([g.group, co / g.group, cig, ...g.k])]);
  const swapped = e.op('Reshape', [e.op('Transpose', [grouped], { perm: [0, 2, 1, ...g.k.map((_, i) => 3 + i)] }), e.i64([cig * g.group, co / g.group, ...g.k])]);
  const flipped = e.op('Slice', [swapped, e.i64(new Array(r).fill(-1)), e.i64(new Array(r).fill(-1e9)), e.i64(spatial), e.i64(new Array(r).fill(-1))]);
  return e.op('Conv', [dY, flipped], { kernel_shape: g.k, dilations: g.d, pads: [...before, ...after], group: g.group }, 'dX');
}

/**
 * Filter gradient of an ungrouped 2-D conv as a batched MatMul over X's windows: per image dWᵀ = cols · dYᵀ,
 * summed over the batch; only dY is transposed. A 1×1 unstrided unpadded conv's windows are X itself; other
 * kernels unfold X by a constant one-hot Conv: each input channel convolved with the kh·kw taps (group Ci,
 * [Ci·taps, 1, kh, kw]; the strides, dilations, pads of the conv) gives the windows [N, Ci·taps, oh, ow] in one
 * kernel. Grouped rather than each channel as its own image: onnxruntime would run that one as a blocked (NCHWc)
 * Conv whose output needs a reorder pass.
 */
function filterGradUnfold(e: Emitter, X: string, dY: string, g: ConvGeometry, co: number, ci: number): string {
  const [kh, kw] = g.k, taps = kh * kw, J = g.y[0] * g.y[1];
  const itself = taps === 1 && g.s.every((v) => v === 1) && [...g.pb, ...g.pe].every((v) => v === 0);
  let windows = X;
  if (!itself) {
    const oneHot = new Array(ci * taps * taps).fill(0);
    for (let c = 0; c < ci; c++) for (let t = 0; t < taps; t++) oneHot[(c * taps + t) * taps + t] = 1;
    windows = e.op('Conv', [X, e.f32(oneHot, [ci * taps, 1, kh, kw])], { kernel_shape: g.k, strides: g.s, dilations: g.d, pads: [...g.pb, ...g.pe], group: ci });
  }
  const cols = e.op('Reshape', [windows, e.i64([-1, ci * taps, J])]);
  const dyt = e.op('Transpose', [e.op('Reshape', [dY, e.i64([-1, co, J])])], { perm: [0, 2, 1] });
  const perImage = e.op('MatMul', [cols, dyt]); // [N, Ci·taps, Co]
  const summed = e.op('ReduceSum', [perImage, e.i64([0])], { keepdims: 0 });
  return e.op('Reshape', [e.op('Transpose', [summed], { perm: [1, 0] }), e.i64([co, ci, kh, kw])], {}, 'dW');
}

function convGrad({ e, node, dOut, need }: GradContext): (string | undefined)[] {
  const dY = dOut[0]!;
  const [X, W] = node.inputs;
  const g = geometry(e, node);
  const r = g.k.length;
  const [co, cig] = e.staticShape(W, node);
  const res: (string | undefined)[] = [];
  if (need[0] && g.s.every((v) => v === 1)) res[0] = inputGradConv(e, dY, W, g, co, cig);
  if (need[0] && !res[0]) {
    const outPad = g.x.map((v, i) => v - ((g.y[i] - 1) * g.s[i] + (g.k[i] - 1) * g.d[i] + 1 - g.pb[i] - g.pe[i]));
    res[0] = e.op('ConvTranspose', [dY, W], {
      kernel_shape: g.k, strides: g.s, dilations: g.d, pads: [...g.pb, ...g.pe], group: g.group, output_padding: outPad,
    }, 'dX');
  }
  // grouped (depthwise) and other ranks: one Conv; dense 2-D convs: a MatMul over X's windows
  if (need[1]) res[1] = g.group !== 1 || r !== 2 ? filterGradConv(e, X, dY, g, cig) : filterGradUnfold(e, X, dY, g, co, cig);
  if (need[2] && node.inputs[2]) res[2] = e.op('ReduceSum', [dY, e.i64([0, ...g.k.map((_, i) => 2 + i)])], { keepdims: 0 }, 'dB');
  return res;
}

registerGrads({ op: 'Conv', weights: [1, 2], grad: convGrad });
