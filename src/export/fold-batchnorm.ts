// fold-batchnorm: an inference BatchNormalization y = a ⊙ x + c (a = scale / √(var + ε), c = B − mean·a,
// per channel on axis 1) goes
//  - into the preceding Conv / Gemm / 2-D MatMul (output channels scaled, bias added or created), when that
//    layer's output feeds only the BN; else
//  - into the next Conv / Gemm when the BN output feeds only that layer (input channels scaled; the shift c
//    becomes a bias). With a zero-padded next conv the shift does not reach the padded border, so its
//    contribution is computed exactly as a constant bias map (needs static shapes; refused without them).
import { type Graph, type Node, attrFloat, attrInt } from '../import/ir.js';
import { constFloats } from './graph-utils.js';
import { addInit, makeNode, removeNodes, soleReader, int } from '../import/ir-edit.js';
import { readConv, readDense, convMap, expandBias, mapToBias, type ConvLayer, type DenseLayer } from './layers.js';
import { type Candidate, type FoldPass, type PassContext, runPass, nm } from './pass.js';

export interface BN { node: Node; a: Float64Array; c: Float64Array; C: number }

export function readBN(g: Graph, n: Node, opset: number | undefined, producers: Map<string, Node>, consumers: Map<string, Node[]>): BN | string {
  if (attrInt(n, 'training_mode', 0) === 1) return 'training_mode = 1 (batch statistics)';
  // before opset 14, a BN with the running-statistics outputs is the training form (batch statistics)
  if ((opset ?? 0) < 14 && !n.attrs.training_mode && n.outputs.slice(1).some(Boolean)) return 'training form (opset < 14 with running-statistics outputs): it normalizes with batch statistics';
  for (const o of n.outputs.slice(1)) if (o && ((consumers.get(o)?.length ?? 0) > 0 || g.outputs.some((v) => v.name === o))) return 'running statistics outputs are read (training graph)';
  const [scale, B, mean, vr] = n.inputs.slice(1, 5).map((i) => constFloats(g, i, producers));
  if (!scale || !B || !mean || !vr) return 'scale, bias, mean or variance is not constant';
  const C = scale.data.length;
  if ([B, mean, vr].some((t) => t.data.length !== C)) return 'parameter lengths differ';
  const eps = attrFloat(n, 'epsilon', 1e-5);
  const a = new Float64Array(C), c = new Float64Array(C);
  for (let k = 0; k < C; k++) {
    a[k] = scale.data[k] / Math.sqrt(vr.data[k] + eps);
    c[k] = B.data[k] - mean.data[k] * a[k];
  }
  return { node: n, a, c, C };
}

export const foldBatchNormPass: FoldPass = {
  name: 'fold-batchnorm',
  kind: 'cleanup',
  candidates(g: Graph, ctx: PassContext): Candidate[] {
    const out: Candidate[] = [];
    const producers = g.producers();
    const consumers = g.consumers();
    for (const n of g.nodes) {
      if (n.opType !== 'BatchNormalization' || (n.domain && n.domain !== 'ai.onnx')) continue;
      const bn = readBN(g, n, ctx.opset, producers, consumers);
      if (typeof bn === 'string') {
        out.push({ what: `BatchNormalization ${nm(n)}`, nodes: [nm(n)], refused: bn });
        continue;
      }
      const prev = producers.get(n.inputs[0]);
      const why: string[] = [];
      // 1. into the preceding layer
      if (prev && soleReader(g, n.inputs[0], n, consumers)) {
        if (prev.opType === 'Conv') {
          const l = readConv(g, prev, ctx, false, producers, consumers);
          if (typeof l !== 'string' && l.cout === bn.C) {
            out.push({ what: `BatchNormalization ${nm(n)} into the preceding Conv ${nm(prev)}`, nodes: [nm(prev), nm(n)], apply: () => intoPrevConv(g, l, bn) });
            continue;
          }
          why.push(`preceding Conv: ${typeof l === 'string' ? l : 'channel count differs'}`);
        } else if (prev.opType === 'Gemm' || prev.opType === 'MatMul') {
          const l = readDense(g, prev, false, producers, consumers);
          const rank = ctx.shapeOf(n.inputs[0])?.length ?? g.info(n.inputs[0])?.shape?.length;
          if (typeof l !== 'string' && l.N === bn.C && (l.kind === 'Gemm' || rank === 2)) {
            out.push({ what: `BatchNormalization ${nm(n)} into the preceding ${prev.opType} ${nm(prev)}`, nodes: [nm(prev), nm(n)], apply: () => intoPrevDense(g, l, bn) });
            continue;
          }
          why.push(`preceding ${prev.opType}: ${typeof l === 'string' ? l : l.N !== bn.C ? 'feature count differs' : 'output is not 2-D'}`);
        } else why.push(`preceded by ${prev.opType}`);
      } else why.push(prev ? 'the preceding layer has other readers' : 'reads a graph input');
      // 2. into the next layer
      const next = consumers.get(n.outputs[0]) ?? [];
      if (next.length === 1 && soleReader(g, n.outputs[0], next[0], consumers) && next[0].inputs[0] === n.outputs[0]) {
        const nx = next[0];
        if (nx.opType === 'Conv') {
          const l = readConv(g, nx, ctx, false, producers, consumers);
          if (typeof l === 'string') why.push(`next Conv: ${l}`);
          else if (l.cin !== bn.C) why.push('next Conv: channel count differs');
          else {
            const padded = l.pads.some((p) => p !== 0);
            const shiftless = bn.c.every((v) => v === 0);
            if (padded && !shiftless && !l.outSpatial) why.push('next Conv zero-pads and the static input shape is unknown (the shift would need a bias map)');
            else {
              out.push({ what: `BatchNormalization ${nm(n)} into the next Conv ${nm(nx)}${padded && !shiftless ? ' (border-exact bias map)' : ''}`, nodes: [nm(n), nm(nx)], apply: () => intoNextConv(g, l, bn) });
              continue;
            }
          }
        } else if (nx.opType === 'Gemm') {
          const l = readDense(g, nx, false, producers, consumers);
          if (typeof l === 'string') why.push(`next Gemm: ${l}`);
          else if (l.transA) why.push('next Gemm reads its input transposed');
          else if (l.K !== bn.C) why.push('next Gemm: feature count differs');
          else {
            out.push({ what: `BatchNormalization ${nm(n)} into the next Gemm ${nm(nx)}`, nodes: [nm(n), nm(nx)], apply: () => intoNextGemm(g, l, bn) });
            continue;
          }
        } else why.push(`followed by ${nx.opType}`);
      } else why.push('its output has several readers');
      out.push({ what: `BatchNormalization ${nm(n)}`, nodes: [nm(n)], refused: why.join('; ') });
    }
    return out;
  },
};

function setConv(g: Graph, conv: Node, W: Float64Array, wDims: number[], bias: Float64Array | undefined): void {
  conv.inputs[1] = addInit(g, `${conv.name || 'conv'}_W_folded`, wDims, W);
  if (bias) conv.inputs[2] = addInit(g, `${conv.name || 'conv'}_B_folded`, [bias.length], bias);
  else conv.inputs.length = 2;
}

function intoPrevConv(g: Graph, l: ConvLayer, bn: BN): void {
  const per = l.W.length / l.cout;
  const W = l.W.map((v, i) => v * bn.a[Math.floor(i / per)]);
  const b = l.bias.map((v, o) => v * bn.a[o] + bn.c[o]);
  setConv(g, l.conv, W, l.wDims, b);
  l.conv.outputs[0] = bn.node.outputs[0];
  removeNodes(g, bn.node);
}

function intoPrevDense(g: Graph, l: DenseLayer, bn: BN): void {
  const A = l.A.map((v, i) => v * bn.a[i % l.N]);
  const bias = l.bias.map((v, i) => v * bn.a[i % l.N] + bn.c[i % l.N]);
  const node = l.core;
  const Aname = addInit(g, `${node.name || 'dense'}_W_folded`, [l.K, l.N], A);
  const Cname = addInit(g, `${node.name || 'dense'}_B_folded`, l.biasRows === 1 ? [l.N] : [l.biasRows, l.N], bias);
  node.opType = 'Gemm';
  node.inputs = [l.input, Aname, Cname];
  node.attrs = l.transA ? { transA: int(1) } : {};
  node.outputs[0] = bn.node.outputs[0];
  removeNodes(g, bn.node);
}

function intoNextConv(g: Graph, l: ConvLayer, bn: BN): void {
  const cinG = l.cin / l.group, coutG = l.cout / l.group;
  const kk = l.W.length / (l.cout * cinG);
  const W = new Float64Array(l.W.length);
  for (let o = 0; o < l.cout; o++)
    for (let ci = 0; ci < cinG; ci++) {
      const c = Math.floor(o / coutG) * cinG + ci;
      for (let k = 0; k < kk; k++) W[(o * cinG + ci) * kk + k] = l.W[(o * cinG + ci) * kk + k] * bn.a[c];
    }
  const padded = l.pads.some((p) => p !== 0);
  let bias: Float64Array | undefined, map: Float64Array | undefined;
  if (!padded || bn.c.every((v) => v === 0)) {
    bias = l.bias.slice();
    for (let o = 0; o < l.cout; o++)
      for (let ci = 0; ci < cinG; ci++) {
        const c = Math.floor(o / coutG) * cinG + ci;
        for (let k = 0; k < kk; k++) bias[o] += l.W[(o * cinG + ci) * kk + k] * bn.c[c];
      }
  } else {
    // the shift c, a constant map over the input, through the conv with its zero padding
    const m = convMap(expandBias(bn.c, l.inSpatial!), l.inSpatial!, l);
    for (let o = 0, hw = m.data.length / l.cout; o < l.cout; o++) for (let p = 0; p < hw; p++) m.data[o * hw + p] += l.bias[o];
    bias = mapToBias(m.data, l.cout);
    if (!bias) map = m.data;
  }
  setConv(g, l.conv, W, l.wDims, map ? undefined : bias);
  l.conv.inputs[0] = bn.node.inputs[0];
  removeNodes(g, bn.node);
  if (map) {
    const y = l.conv.outputs[0];
    const t = g.uniqueName(`${y}_nobias`);
    l.conv.outputs[0] = t;
    const mapName = addInit(g, `${l.conv.name || 'conv'}_bias_map`, [l.cout, ...l.outSpatial!], map);
    const k = g.nodes.indexOf(l.conv);
    g.nodes.splice(k + 1, 0, makeNode(g, 'Add', [t, mapName], [y], {}, `${l.conv.name || 'conv'}_bias_map_add`));
  }
}

function intoNextGemm(g: Graph, l: DenseLayer, bn: BN): void {
  // y = (a⊙x + c)·A + b = x·(diag(a)A) + (c·A + b)
  const A = l.A.map((v, i) => v * bn.a[Math.floor(i / l.N)]);
  const bias = l.bias.slice();
  for (let r = 0; r < l.biasRows; r++) for (let k = 0; k < l.K; k++) for (let j = 0; j < l.N; j++) bias[r * l.N + j] += bn.c[k] * l.A[k * l.N + j];
  const node = l.core;
  node.inputs = [bn.node.inputs[0], addInit(g, `${node.name || 'gemm'}_W_folded`, [l.K, l.N], A), addInit(g, `${node.name || 'gemm'}_B_folded`, l.biasRows === 1 ? [l.N] : [l.biasRows, l.N], bias)];
  node.attrs = {};
  removeNodes(g, bn.node);
}

export function foldBatchNorm(g: Graph, ctx: Partial<PassContext> = {}): boolean {
  return runPass(foldBatchNormPass, g, ctx);
}
