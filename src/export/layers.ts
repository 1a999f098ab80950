// Linear layers as the fold passes see them: a Conv, Gemm or MatMul with constant weights, plus an optional
// constant Add right after it (a bias, or a position-dependent bias map that an exact conv merge leaves).
import { type Graph, type Node, attrInt, attrInts, attrString, attrFloat } from '../import/ir.js';
import { constFloats, numericDims } from './graph-utils.js';
import { soleReader } from '../import/ir-edit.js';
import type { PassContext } from './pass.js';
import { product, convOutSize, rowMajorStrides } from '../import/shape-math.js';

// ------------------------------------------------------------------ conv

export interface ConvLayer {
  conv: Node;
  /** Add(conv output, constant) read only by... (the conv output has no other reader) */
  add?: Node;
  input: string;
  /** the layer's final output (the Add's when there is one) */
  output: string;
  /** [Cout, Cin/group, ...k] */
  W: Float64Array;
  wDims: number[];
  group: number;
  cin: number;
  cout: number;
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** begin pads then end pads, one per spatial axis */
  pads: number[];
  /** per output channel (conv bias plus a per-channel Add) */
  bias: Float64Array;
  /** full bias map [Cout, ...outSpatial] when the Add is position-dependent (includes `bias`) */
  map?: Float64Array;
  /** static spatial sizes when known */
  inSpatial?: number[];
  outSpatial?: number[];
}

export const spatialRank = (l: ConvLayer): number => l.kernel.length;

/** Reads a Conv (with constant float weights) and, when `withAdd`, a constant Add after it. Undefined = not a foldable layer. */
export function readConv(g: Graph, conv: Node, ctx: PassContext, withAdd = true, producers?: Map<string, Node>, consumers?: Map<string, Node[]>): ConvLayer | string {
  if (conv.opType !== 'Conv' || (conv.domain && conv.domain !== 'ai.onnx')) return 'not a Conv';
  const w = constFloats(g, conv.inputs[1], producers);
  if (!w) return 'conv weights are not a constant float tensor';
  if (w.dims.length < 3) return 'conv weight rank < 3';
  const b = conv.inputs[2] ? constFloats(g, conv.inputs[2], producers) : undefined;
  if (conv.inputs[2] && !b) return 'conv bias is not constant';
  const r = w.dims.length - 2;
  const kernel = w.dims.slice(2);
  const ks = attrInts(conv, 'kernel_shape');
  if (ks && ks.join() !== kernel.join()) return 'kernel_shape disagrees with the weights';
  const group = attrInt(conv, 'group', 1);
  const strides = attrInts(conv, 'strides') ?? kernel.map(() => 1);
  const dilations = attrInts(conv, 'dilations') ?? kernel.map(() => 1);
  const cout = w.dims[0];
  const cin = w.dims[1] * group;
  const inShape = numericDims(ctx.shapeOf(conv.inputs[0])?.slice(2));
  let pads = attrInts(conv, 'pads') ?? kernel.map(() => 0).concat(kernel.map(() => 0));
  const autoPad = attrString(conv, 'auto_pad', 'NOTSET');
  if (autoPad === 'VALID') pads = kernel.map(() => 0).concat(kernel.map(() => 0));
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    if (!inShape || inShape.length !== r) return `auto_pad ${autoPad} needs a static input shape`;
    const pb: number[] = [], pe: number[] = [];
    for (let a = 0; a < r; a++) {
      const out = Math.ceil(inShape[a] / strides[a]);
      const total = Math.max(0, (out - 1) * strides[a] + (kernel[a] - 1) * dilations[a] + 1 - inShape[a]);
      const small = Math.floor(total / 2);
      pb.push(autoPad === 'SAME_UPPER' ? small : total - small);
      pe.push(autoPad === 'SAME_UPPER' ? total - small : small);
    }
    pads = [...pb, ...pe];
  } else if (autoPad !== 'NOTSET') return `auto_pad ${autoPad} not understood`;
  const bias = new Float64Array(cout);
  if (b) {
    if (b.data.length !== cout) return 'conv bias length differs from the output channels';
    bias.set(b.data);
  }
  const outSpatial = inShape && inShape.length === r
    ? inShape.map((x, a) => convOutSize(x, kernel[a], strides[a], dilations[a], pads[a], pads[a + r])) : undefined;
  const layer: ConvLayer = {
    conv, input: conv.inputs[0], output: conv.outputs[0], W: w.data, wDims: w.dims, group, cin, cout, kernel,
    strides, dilations, pads, bias, inSpatial: inShape && inShape.length === r ? inShape : undefined, outSpatial,
  };
  if (!withAdd) return layer;
  // a constant Add right after the conv (bias or bias map)
  const rd = (consumers ?? g.consumers()).get(conv.outputs[0]) ?? [];
  if (rd.length === 1 && rd[0].opType === 'Add' && soleReader(g, conv.outputs[0], rd[0], consumers)) {
    const add = rd[0];
    const other = add.inputs[0] === conv.outputs[0] ? add.inputs[1] : add.inputs[0];
    if (add.inputs[0] !== add.inputs[1]) {
      const c = constFloats(g, other, producers);
      if (c && absorbAddIntoConv(layer, c.data, c.dims)) {
        layer.add = add;
        layer.output = add.outputs[0];
      }
    }
  }
  return layer;
}

/** The conv layer (with its constant Add) that produces `name`, read only by `reader`. */
export function convBehind(g: Graph, name: string, reader: Node, ctx: PassContext, producers: Map<string, Node>, consumers: Map<string, Node[]>): ConvLayer | undefined {
  const p = producers.get(name);
  const core = p?.opType === 'Add' ? [producers.get(p.inputs[0]), producers.get(p.inputs[1])].find((q) => q?.opType === 'Conv') : p;
  if (core?.opType !== 'Conv') return undefined;
  const l = readConv(g, core, ctx, true, producers, consumers);
  return typeof l !== 'string' && l.output === name && soleReader(g, name, reader, consumers) ? l : undefined;
}

/** Adds a constant (broadcast onto [N, Cout, ...spatial] without growing it) to the layer's bias/map. */
function absorbAddIntoConv(l: ConvLayer, data: Float64Array, dims: number[]): boolean {
  const r = spatialRank(l);
  const rank = r + 2;
  if (dims.length > rank) return false;
  const full = [...Array(rank - dims.length).fill(1), ...dims];
  if (full[0] !== 1) return false;
  if (full[1] !== 1 && full[1] !== l.cout) return false;
  const spatial = full.slice(2);
  const perChannel = spatial.every((d) => d === 1);
  if (perChannel) {
    for (let o = 0; o < l.cout; o++) l.bias[o] += data[full[1] === 1 ? 0 : o];
    if (l.map) addChannelBias(l.map, l.cout, data, full[1] === 1);
    return true;
  }
  if (!l.outSpatial) return false;
  if (spatial.some((d, a) => d !== 1 && d !== l.outSpatial![a])) return false;
  const map = l.map ?? expandBias(l.bias, l.outSpatial);
  if (data.length === map.length) {
    // a full [Cout, ...spatial] map (what the passes write): elementwise
    for (let i = 0; i < map.length; i++) map[i] += data[i];
    l.map = map;
    return true;
  }
  const hw = product(l.outSpatial);
  const strides = rowMajorStrides(full);
  const outStrides = rowMajorStrides([l.cout, ...l.outSpatial]);
  for (let idx = 0; idx < l.cout * hw; idx++) {
    let src = 0, rem = idx;
    for (let a = 0; a < r + 1; a++) {
      const coord = Math.floor(rem / outStrides[a]);
      rem -= coord * outStrides[a];
      const d = full[a + 1];
      if (d !== 1) src += coord * strides[a + 1];
    }
    map[idx] += data[src];
  }
  l.map = map;
  return true;
}

function addChannelBias(map: Float64Array, cout: number, data: Float64Array, scalar: boolean): void {
  const hw = map.length / cout;
  for (let o = 0; o < cout; o++) for (let p = 0; p < hw; p++) map[o * hw + p] += data[scalar ? 0 : o];
}

export function expandBias(bias: Float64Array, spatial: number[]): Float64Array {
  const hw = product(spatial);
  const m = new Float64Array(bias.length * hw);
  for (let o = 0; o < bias.length; o++) m.fill(bias[o], o * hw, (o + 1) * hw);
  return m;
}

/** If a map is the same at every position, its per-channel values. */
export function mapToBias(map: Float64Array, cout: number, relTol = 1e-12): Float64Array | undefined {
  const hw = map.length / cout;
  const b = new Float64Array(cout);
  for (let o = 0; o < cout; o++) {
    const v = map[o * hw];
    for (let p = 1; p < hw; p++) if (Math.abs(map[o * hw + p] - v) > relTol * Math.max(1, Math.abs(v))) return undefined;
    b[o] = v;
  }
  return b;
}

type ConvGeom = Pick<ConvLayer, 'W' | 'wDims' | 'group' | 'cin' | 'cout' | 'kernel' | 'strides' | 'dilations' | 'pads'>;

/**
 * N-d convolution of a constant map [C, ...spatial] (no batch, no bias), ONNX semantics with zero padding:
 * pushes bias maps through a conv exactly. The map is split into a per-channel constant (its value at the
 * centre) and the deviations from it (bias maps differ only near borders): the constant part costs
 * Cout·taps per output position, the deviations are scattered one by one.
 */
export function convMap(x: Float64Array, xSpatial: number[], l: ConvGeom): { data: Float64Array; spatial: number[] } {
  const r = l.kernel.length;
  const outSpatial = xSpatial.map((xs, a) => convOutSize(xs, l.kernel[a], l.strides[a], l.dilations[a], l.pads[a], l.pads[a + r]));
  const hwOut = product(outSpatial), hwIn = product(xSpatial), kk = product(l.kernel);
  const out = new Float64Array(l.cout * hwOut);
  const cinG = l.cin / l.group, coutG = l.cout / l.group;
  const kPos = enumerate(l.kernel);
  const inStr = rowMajorStrides(xSpatial), outStr = rowMajorStrides(outSpatial);
  // per-channel constant part
  const centre = xSpatial.reduce((off, d, a) => off + Math.floor(d / 2) * inStr[a], 0);
  const base = new Float64Array(l.cin);
  for (let c = 0; c < l.cin; c++) base[c] = x[c * hwIn + centre];
  const V = new Float64Array(l.cout * kk);
  for (let o = 0; o < l.cout; o++) {
    const g = Math.floor(o / coutG);
    for (let ci = 0; ci < cinG; ci++) {
      const b = base[g * cinG + ci];
      if (b === 0) continue;
      for (let k = 0; k < kk; k++) V[o * kk + k] += l.W[(o * cinG + ci) * kk + k] * b;
    }
  }
  const oPos = enumerate(outSpatial);
  const valid = new Uint8Array(kk);
  for (let p = 0; p < hwOut; p++) {
    for (let k = 0; k < kk; k++) {
      let ok = 1;
      for (let a = 0; a < r && ok; a++) {
        const xi = oPos[p][a] * l.strides[a] + kPos[k][a] * l.dilations[a] - l.pads[a];
        if (xi < 0 || xi >= xSpatial[a]) ok = 0;
      }
      valid[k] = ok;
    }
    for (let o = 0; o < l.cout; o++) {
      let s = 0;
      for (let k = 0; k < kk; k++) if (valid[k]) s += V[o * kk + k];
      out[o * hwOut + p] = s;
    }
  }
  // deviations, scattered
  const iPos = enumerate(xSpatial);
  for (let c = 0; c < l.cin; c++) {
    const g = Math.floor(c / cinG), ci = c - g * cinG;
    for (let p = 0; p < hwIn; p++) {
      const dev = x[c * hwIn + p] - base[c];
      if (dev === 0) continue;
      for (let k = 0; k < kk; k++) {
        let off = 0, ok = true;
        for (let a = 0; a < r && ok; a++) {
          const q = iPos[p][a] + l.pads[a] - kPos[k][a] * l.dilations[a];
          if (q < 0 || q % l.strides[a] !== 0 || q / l.strides[a] >= outSpatial[a]) ok = false;
          else off += (q / l.strides[a]) * outStr[a];
        }
        if (!ok) continue;
        for (let o = g * coutG; o < (g + 1) * coutG; o++) out[o * hwOut + off] += l.W[(o * cinG + ci) * kk + k] * dev;
      }
    }
  }
  return { data: out, spatial: outSpatial };
}

/** All multi-indices of a box, row-major. */
export function enumerate(dims: number[]): number[][] {
  const out: number[][] = [];
  const n = product(dims);
  const st = rowMajorStrides(dims);
  for (let i = 0; i < n; i++) out.push(dims.map((_, a) => Math.floor(i / st[a]) % dims[a]));
  return out;
}

// ------------------------------------------------------------------ dense

export interface DenseLayer {
  core: Node;
  add?: Node;
  kind: 'Gemm' | 'MatMul';
  input: string;
  output: string;
  /** y = op(x)·A + bias, A: [K, N] row-major (Gemm's alpha and transB folded in) */
  A: Float64Array;
  K: number;
  N: number;
  /** [rows, N] with rows 1 or M (Gemm's C may have a row per example); beta folded in; zeros when absent */
  bias: Float64Array;
  biasRows: number;
  /** rank of the bias tensor as written (its broadcasting can raise the output rank) */
  biasRank: number;
  hasBias: boolean;
  /** Gemm transA: the layer reads its input transposed */
  transA: boolean;
}

export function readDense(g: Graph, core: Node, withAdd = true, producers?: Map<string, Node>, consumers?: Map<string, Node[]>): DenseLayer | string {
  if (core.domain && core.domain !== 'ai.onnx') return 'custom domain';
  let layer: DenseLayer;
  if (core.opType === 'Gemm') {
    const b = constFloats(g, core.inputs[1], producers);
    if (!b || b.dims.length !== 2) return 'Gemm B is not a constant 2-D float tensor';
    const transB = attrInt(core, 'transB', 0) === 1;
    const alpha = attrFloat(core, 'alpha', 1), beta = attrFloat(core, 'beta', 1);
    let [K, N] = b.dims;
    let A = b.data;
    if (transB) {
      A = new Float64Array(K * N);
      for (let i = 0; i < K; i++) for (let j = 0; j < N; j++) A[j * K + i] = b.data[i * N + j];
      [K, N] = [N, K];
    }
    if (alpha !== 1) A = A.map((v) => v * alpha);
    layer = { core, kind: 'Gemm', input: core.inputs[0], output: core.outputs[0], A, K, N, bias: new Float64Array(N), biasRows: 1, biasRank: 1, hasBias: false, transA: attrInt(core, 'transA', 0) === 1 };
    if (core.inputs[2]) {
      const c = constFloats(g, core.inputs[2], producers);
      if (!c) return 'Gemm C is not constant';
      if (!absorbDenseBias(layer, c.data, c.dims, beta, true)) return `Gemm C of shape [${c.dims}] not understood`;
    }
  } else if (core.opType === 'MatMul') {
    const w = constFloats(g, core.inputs[1], producers);
    if (!w || w.dims.length !== 2) return 'MatMul has no constant 2-D right operand';
    if (constFloats(g, core.inputs[0], producers)) return 'MatMul of two constants';
    layer = { core, kind: 'MatMul', input: core.inputs[0], output: core.outputs[0], A: w.data, K: w.dims[0], N: w.dims[1], bias: new Float64Array(w.dims[1]), biasRows: 1, biasRank: 1, hasBias: false, transA: false };
  } else return 'not a Gemm or MatMul';
  if (!withAdd) return layer;
  const rd = (consumers ?? g.consumers()).get(core.outputs[0]) ?? [];
  if (rd.length === 1 && rd[0].opType === 'Add' && soleReader(g, core.outputs[0], rd[0], consumers) && rd[0].inputs[0] !== rd[0].inputs[1]) {
    const add = rd[0];
    const other = add.inputs[0] === core.outputs[0] ? add.inputs[1] : add.inputs[0];
    const c = constFloats(g, other, producers);
    if (c && absorbDenseBias(layer, c.data, c.dims, 1, false)) {
      layer.add = add;
      layer.output = add.outputs[0];
    }
  }
  return layer;
}

/** Adds beta·C to the layer's bias; C must broadcast along the last axis only (or per row for Gemm). */
function absorbDenseBias(l: DenseLayer, data: Float64Array, dims: number[], beta: number, gemm: boolean): boolean {
  const N = l.N;
  const last = dims.length ? dims[dims.length - 1] : 1;
  if (last !== 1 && last !== N) return false;
  let rows = 1;
  if (gemm && dims.length === 2 && dims[0] !== 1) rows = dims[0];
  else if (dims.slice(0, -1).some((d) => d !== 1)) return false;
  if (gemm && dims.length > 2) return false;
  const newRows = Math.max(rows, l.biasRows);
  if (rows !== 1 && l.biasRows !== 1 && rows !== l.biasRows) return false;
  const bias = new Float64Array(newRows * N);
  for (let i = 0; i < newRows; i++)
    for (let j = 0; j < N; j++) {
      const old = l.bias[(l.biasRows === 1 ? 0 : i) * N + j];
      const add = data[(rows === 1 ? 0 : i) * last + (last === 1 ? 0 : j)];
      bias[i * N + j] = old + beta * add;
    }
  l.bias = bias;
  l.biasRows = newRows;
  l.biasRank = Math.max(l.biasRank, gemm ? 1 : dims.length);
  l.hasBias = true;
  return true;
}

/** The nodes of a layer. */
export const layerNodes = (l: { core?: Node; conv?: Node; add?: Node }): Node[] => [l.core ?? l.conv!, ...(l.add ? [l.add] : [])];
