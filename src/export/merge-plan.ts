// merge-plan: which linear layers to merge, judged over whole runs rather than pairs.
//
// A chain is a path of layers L1 → L2 → … → Ln (Convs, or Gemm/MatMuls) in which each layer's output is read
// only by the next one, with nothing nonlinear in between. Any contiguous segment Li..Lj whose merge is exact
// can become one layer; its cost is the cost of that one layer (measured or modelled, see layer-cost.ts). The
// cheapest partition of the chain into segments comes from dynamic programming over its prefixes, as Kim et
// al. (ICML 2023) and LayerMerge (ICML 2024) do over measured latencies. Pairs are not enough: in an inverted
// residual block expand∘dw costs more than expand + dw, while expand∘dw∘project costs less than all three.
//
// A chain that is a whole residual branch, Add(x, Ln(…L1(x))), merged into one layer can also absorb the Add
// (the identity goes into the kernel's centre tap or onto the matrix diagonal): that segment's cost is lowered
// by the Add's. After merges and absorptions the graph changes and the pipeline plans again; costs are cached
// by geometry, so a plan made again on a partly merged chain agrees with the first.
import { product } from '../import/shape-math.js';
import type { Graph, Node } from '../import/ir.js';
import { numericDims } from './graph-utils.js';
import { soleReader } from '../import/ir-edit.js';
import { convBehind, readConv, readDense, type ConvLayer, type DenseLayer } from './layers.js';
import { padFrontLayers, planConvMerge } from './merge-conv.js';
import { denseMergeRefusal } from './merge-matmul.js';
import { embedding, identityTap } from './absorb-residual.js';
import type { PassContext } from './pass.js';
import type { LayerGeometry } from './layer-cost.js';
import { nm } from './pass.js';

export interface Chain {
  kind: 'conv' | 'dense';
  /** the layers' core nodes (Conv / Gemm / MatMul), input to output */
  nodes: Node[];
  /** merged geometry of segment i..j (j ≥ i), undefined when that merge is not exact */
  segment(i: number, j: number): LayerGeometry | undefined;
  /** what a merge of the whole chain absorbs besides: a residual Add (and a parallel downsample conv), if any */
  absorbs?: LayerGeometry[];
}

/** Every chain of two or more layers in the graph. */
export function findChains(g: Graph, ctx: PassContext): Chain[] {
  return [...convChains(g, ctx), ...denseChains(g, ctx)];
}

function convChains(g: Graph, ctx: PassContext): Chain[] {
  const producers = g.producers();
  const consumers = g.consumers();
  const layers: ConvLayer[] = [];
  for (const n of g.nodes) {
    if (n.opType !== 'Conv') continue;
    const l = readConv(g, n, ctx, true, producers, consumers);
    if (typeof l !== 'string') layers.push(l);
  }
  const chains: Chain[] = [];
  for (const ls of runsOf(g, layers, (l) => l.conv, consumers)) {
    const head = ls[0];
    // merged layers of each segment, built left to right; undefined once a merge is refused
    const merged: (ConvLayer | undefined)[][] = ls.map((l) => [l]);
    for (let i = 0; i < ls.length; i++) {
      for (let j = i + 1; j < ls.length; j++) {
        const A = merged[i][j - i - 1];
        let plan = A && planConvMerge(A, ls[j], false);
        // borders 'approximate': a pair refused at the borders merges in its pad-front form (merge-conv.ts)
        if (A && typeof plan === 'string' && ctx.borders === 'approximate') {
          const pf = padFrontLayers(A, ls[j]);
          if (typeof pf !== 'string') plan = planConvMerge(pf[0], pf[1], false);
        }
        merged[i].push(plan && typeof plan !== 'string' ? {
          ...ls[j], input: A!.input, W: new Float64Array(0), wDims: plan.wDims, group: plan.group, cin: A!.cin,
          kernel: plan.kernel, strides: plan.strides, dilations: plan.dilations, pads: plan.pads, inSpatial: A!.inSpatial,
          map: A!.map ?? ls[j].map ?? (ls.slice(i + 1, j + 1).some((l) => l.pads.some((p) => p > 0)) ? new Float64Array(0) : undefined),
        } : undefined);
      }
    }
    const geometry = (l: ConvLayer | undefined): LayerGeometry | undefined => !l ? undefined : !l.inSpatial ? { kind: 'unknown' } : {
      kind: 'conv', cin: l.cin, cout: l.cout, group: l.group, kernel: l.kernel, strides: l.strides, dilations: l.dilations,
      pads: l.pads, inSpatial: l.inSpatial, biasMap: !!l.map,
    };
    const whole = merged[0][ls.length - 1];
    // a join the whole merged chain absorbs: the identity (x + f(x)), or a parallel conv of x (a 1×1 downsample)
    const sum = soleAddAfter(g, ls[ls.length - 1].output, consumers);
    const sumGeom = sum && addGeometry(ctx, sum);
    let join: LayerGeometry[] | undefined;
    if (sum && sumGeom && whole) {
      const other = sum.inputs[0] === ls[ls.length - 1].output ? sum.inputs[1] : sum.inputs[0];
      const D = other === head.input ? undefined : convBehind(g, other, sum, ctx, producers, consumers);
      if (other === head.input && typeof identityTap(whole) === 'number') join = [sumGeom];
      else if (D && D.input === head.input && typeof embedding(whole, D) !== 'string') join = [sumGeom, geometry(D)!];
    }
    chains.push({
      kind: 'conv',
      nodes: ls.map((l) => l.conv),
      segment: (i, j) => geometry(merged[i][j - i]),
      absorbs: join,
    });
  }
  return chains;
}

function denseChains(g: Graph, ctx: PassContext): Chain[] {
  const producers = g.producers();
  const consumers = g.consumers();
  const layers: DenseLayer[] = [];
  for (const n of g.nodes) {
    if (n.opType !== 'Gemm' && n.opType !== 'MatMul') continue;
    const l = readDense(g, n, true, producers, consumers);
    if (typeof l !== 'string') layers.push(l);
  }
  const chains: Chain[] = [];
  for (const ls of runsOf(g, layers, (l) => l.core, consumers)) {
    const head = ls[0];
    const inShape = numericDims(ctx.shapeOf(head.input));
    const rows = inShape && inShape.length ? product(inShape.slice(0, -1)) : undefined;
    // a merged run keeps its first layer's kind and input form: each joint is checked as planDenseMerge does
    const segment = (i: number, j: number): LayerGeometry | undefined => {
      for (let k = i; k < j; k++) if (denseMergeRefusal({ ...ls[i], N: ls[k].N, biasRank: Math.max(...ls.slice(i, k + 1).map((l) => l.biasRank)) }, ls[k + 1])) return undefined;
      if (rows === undefined) return { kind: 'unknown' };
      return { kind: 'dense', rows, K: ls[i].K, N: ls[j].N, bias: ls.slice(i, j + 1).some((l) => l.hasBias) };
    };
    const last = ls[ls.length - 1];
    const sum = soleAddAfter(g, last.output, consumers);
    const sumGeom = sum && sum.inputs.includes(head.input) && head.K === last.N && segment(0, ls.length - 1) ? addGeometry(ctx, sum) : undefined;
    chains.push({ kind: 'dense', nodes: ls.map((l) => l.core), segment, absorbs: sumGeom ? [sumGeom] : undefined });
  }
  return chains;
}

/** Maximal runs (two or more) of layers in which each layer's output is read by the next one alone. */
function runsOf<L extends { input: string; output: string }>(g: Graph, layers: L[], core: (l: L) => Node, consumers: Map<string, Node[]>): L[][] {
  const byOutput = new Map(layers.map((l) => [l.output, l]));
  const next = new Map<L, L>(), prev = new Map<L, L>();
  for (const b of layers) {
    const a = byOutput.get(b.input);
    if (a && a !== b && soleReader(g, a.output, core(b), consumers)) {
      next.set(a, b);
      prev.set(b, a);
    }
  }
  const runs: L[][] = [];
  for (const head of layers) {
    if (prev.has(head) || !next.has(head)) continue;
    const run = [head];
    for (let l = next.get(head); l; l = next.get(l)) run.push(l);
    runs.push(run);
  }
  return runs;
}

/** The Add that is the sole reader of `y` (a residual join, when its other operand comes from the chain's input). */
function soleAddAfter(g: Graph, y: string, consumers: Map<string, Node[]>): Node | undefined {
  const rd = consumers.get(y) ?? [];
  return rd.length === 1 && rd[0].opType === 'Add' && soleReader(g, y, rd[0], consumers) && rd[0].inputs[0] !== rd[0].inputs[1] ? rd[0] : undefined;
}

function addGeometry(ctx: PassContext, add: Node): LayerGeometry | undefined {
  const s = numericDims(ctx.shapeOf(add.outputs[0]));
  return s ? { kind: 'add', shape: s.map((d, i) => (i === 0 ? 1 : d)) } : undefined;
}

export interface Partition {
  /** [first, last] layer index of each segment */
  segments: [number, number][];
  cost: number;
}

/**
 * The cheapest partition of n layers into contiguous segments; cost(i, j) is a segment's cost, undefined
 * when the segment cannot be merged (single layers always can). Ties go to fewer segments; with `tolerance`
 * costs within that relative margin count as ties (measured latencies: a merge that is as fast within the
 * noise is taken, for a shallower model and a plan that does not flip from run to run).
 */
export function cheapestPartition(n: number, cost: (i: number, j: number) => number | undefined, tolerance = 0): Partition {
  const best = new Array<number>(n + 1).fill(Infinity);
  const count = new Array<number>(n + 1).fill(0);
  const from = new Array<number>(n + 1).fill(0);
  best[0] = 0;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i <= j; i++) {
      const c = cost(i, j);
      if (c === undefined || best[i] === Infinity) continue;
      const v = best[i] + c;
      // relative tolerance: sums of the same costs in a different order must tie
      const eq = Math.abs(v - best[j + 1]) <= Math.max(1e-12 * Math.max(1, Math.abs(v)), tolerance * Math.min(Math.abs(v), Math.abs(best[j + 1])));
      if ((v < best[j + 1] && !eq) || (eq && count[i] + 1 < count[j + 1])) {
        best[j + 1] = v;
        count[j + 1] = count[i] + 1;
        from[j + 1] = i;
      }
    }
  }
  const segments: [number, number][] = [];
  for (let j = n; j > 0; j = from[j]) segments.unshift([from[j], j - 1]);
  return { segments, cost: best[n] };
}

export interface MergePlan {
  /** node names that the plan merges into one layer, as pair keys "a|b" (a before b in its chain) */
  together: Set<string>;
  /** for every chain: the cost as it is and as planned, and the pairs the plan keeps apart */
  chains: { nodes: string[]; segments: [number, number][]; costNow: number; costPlanned: number; apart: [string, string][] }[];
}

export const pairKey = (a: string, b: string): string => `${a}|${b}`;

/** Plans every chain with `cost` (per layer geometry; the residual Add's cost is saved by a whole-chain merge). */
export function planMerges(chains: Chain[], cost: (geom: LayerGeometry) => number, tolerance = 0): MergePlan {
  const plan: MergePlan = { together: new Set(), chains: [] };
  for (const ch of chains) {
    const n = ch.nodes.length;
    // without static shapes a chain cannot be costed: every exact merge is taken (fewest layers)
    const costed = ch.nodes.every((_, i) => ch.segment(i, i)?.kind !== 'unknown');
    const addCost = costed && ch.absorbs ? ch.absorbs.reduce((t, geom) => t + cost(geom), 0) : 0;
    const segCost = (i: number, j: number): number | undefined => {
      const geom = ch.segment(i, j);
      if (!geom) return undefined;
      if (!costed) return 1;
      return cost(geom) - (i === 0 && j === n - 1 ? addCost : 0);
    };
    const p = cheapestPartition(n, segCost, tolerance);
    const names = ch.nodes.map(nm);
    let costNow = 0;
    for (let i = 0; i < n; i++) costNow += segCost(i, i)!;
    const apart: [string, string][] = [];
    for (const [i, j] of p.segments) {
      for (let k = i; k < j; k++) plan.together.add(pairKey(names[k], names[k + 1]));
      if (j + 1 < n && ch.segment(j, j + 1)) apart.push([names[j], names[j + 1]]);
    }
    plan.chains.push({ nodes: names, segments: p.segments, costNow, costPlanned: p.cost, apart });
  }
  return plan;
}

/** Every geometry planning these chains asks the cost of. */
export function geometriesOf(chains: Chain[]): LayerGeometry[] {
  const out: LayerGeometry[] = [];
  for (const ch of chains) {
    for (let i = 0; i < ch.nodes.length; i++) {
      for (let j = i; j < ch.nodes.length; j++) {
        const geom = ch.segment(i, j);
        if (!geom) break;
        if (geom.kind !== 'unknown') out.push(geom);
      }
    }
    if (ch.absorbs) out.push(...ch.absorbs);
  }
  return out;
}
