// The cost of one layer, as the merge planner (merge-plan.ts) weighs it, under each objective:
//  - depth: 1 per layer (ties broken by MACs);
//  - macs: its MACs per example (ties broken by the layer count);
//  - latency: its onnxruntime-node kernel time at batch 1, read from onnxruntime's profile of a one-layer model
//    of that geometry (median per node over 40 runs, cached by geometry for the whole process). Only the layer's
//    own kernels count: a one-layer model also pays the session's per-run overhead and the layout reorders into
//    and out of onnxruntime's blocked NCHWc format, which a layer inside a network does not (timed whole, a
//    depthwise conv measured 5–20× its in-network cost and made the planner merge away cheap dw convs).
//    With `measure: false`, or when profiling fails, a model of it: a per-node overhead plus MACs at a
//    throughput per layer kind (constants measured on the 2-core dev machine, onnxruntime-node 1.30).
import { GraphBuilder } from '../import/graph-builder.js';
import { Tensor } from '../import/tensor.js';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ortSession, runOrt } from '../import/ort.js';
import { encodeModel } from '../import/onnx-io.js';
import { median } from './verify.js';
import { product, convOutSize } from '../import/shape-math.js';

export type LayerGeometry =
  | {
    kind: 'conv'; cin: number; cout: number; group: number; kernel: number[]; strides: number[]; dilations: number[];
    pads: number[]; inSpatial: number[];
    /** the merged conv needs a constant bias-map Add after it */
    biasMap: boolean;
  }
  | { kind: 'dense'; rows: number; K: number; N: number; bias: boolean }
  /** an elementwise Add of this shape (batch 1) */
  | { kind: 'add'; shape: number[] }
  /** shapes unknown: cannot be costed */
  | { kind: 'unknown' };

export type CostObjective = 'depth' | 'macs' | 'latency';

type ConvGeometry = Extract<LayerGeometry, { kind: 'conv' }>;
const outSpatial = (g: ConvGeometry): number[] =>
  g.inSpatial.map((x, a) => convOutSize(x, g.kernel[a], g.strides[a], g.dilations[a], g.pads[a], g.pads[a + g.kernel.length]));

/** MACs per example of a geometry. */
export function geometryMacs(g: LayerGeometry): number {
  if (g.kind === 'conv') return g.cout * (g.cin / g.group) * product(g.kernel) * product(outSpatial(g));
  if (g.kind === 'dense') return g.rows * g.K * g.N;
  return 0;
}

/** Modelled latency (ms) of a geometry: see the header. */
export function modelledMs(g: LayerGeometry): number {
  const NODE_MS = 0.005;
  if (g.kind === 'add') return NODE_MS + product(g.shape) / 4e6;
  if (g.kind === 'unknown') return NODE_MS;
  const macs = geometryMacs(g);
  // depthwise convs run far below the dense GEMM rate
  const rate = g.kind === 'conv' && g.group > 1 && g.group === g.cin ? 2.5e7 : 6e7;
  return NODE_MS + macs / rate + (g.kind === 'conv' && g.biasMap ? modelledMs({ kind: 'add', shape: [g.cout, ...outSpatial(g)] }) : 0);
}

const measured = new Map<string, number>();

/** The layer's own kernel time (ms): onnxruntime's profile, median per node, layout reorders left out. */
async function kernelMs(model: ReturnType<typeof oneLayerModel>['model'], feeds: ReturnType<typeof oneLayerModel>['feeds'], runs: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'linfold-cost-'));
  try {
    const session = await ortSession(encodeModel(model), 'cost probe', { enableProfiling: true, profileFilePrefix: join(dir, 'p') });
    for (let i = 0; i < runs + 5; i++) await runOrt(session, feeds);
    session.endProfiling();
    await session.release?.();
    const file = readdirSync(dir).find((f) => f.endsWith('.json'));
    if (!file) throw new Error('no profile written');
    const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { cat?: string; name?: string; dur?: number; args?: { op_name?: string } }[];
    const perNode = new Map<string, number[]>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || e.args?.op_name?.startsWith('Reorder')) continue;
      (perNode.get(e.name) ?? perNode.set(e.name, []).get(e.name)!).push(e.dur ?? 0);
    }
    // the first runs warm up; microseconds → ms
    let total = 0;
    for (const d of perNode.values()) total += median(d.slice(5));
    return total / 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface LayerCoster {
  /** measures what is not cached yet (latency objective with measuring on) */
  prepare(geoms: LayerGeometry[]): Promise<void>;
  cost(g: LayerGeometry): number;
}

export function layerCoster(objective: CostObjective, opts: { measure?: boolean; runs?: number } = {}): LayerCoster {
  const measure = objective === 'latency' && opts.measure !== false;
  const runs = opts.runs ?? 40;
  const failed = new Set<string>();
  return {
    async prepare(geoms) {
      if (!measure) return;
      for (const g of geoms) {
        const key = JSON.stringify(g);
        if (g.kind === 'unknown' || measured.has(key) || failed.has(key)) continue;
        try {
          const { model, feeds } = oneLayerModel(g);
          measured.set(key, await kernelMs(model, feeds, runs));
        } catch {
          // the cost model stands in (see the header)
          failed.add(key);
        }
      }
    },
    cost(g) {
      if (objective === 'depth') return g.kind === 'add' ? 0 : 1 + geometryMacs(g) * 1e-15;
      if (objective === 'macs') return geometryMacs(g) + (g.kind === 'add' ? 0 : 1e-6);
      return (measure ? measured.get(JSON.stringify(g)) : undefined) ?? modelledMs(g);
    },
  };
}

/** A model of one layer of this geometry (seeded weights), and a batch-1 input for it. */
function oneLayerModel(g: LayerGeometry) {
  const b = new GraphBuilder({ opset: 13, seed: 1 });
  let shape: number[];
  let y: string;
  if (g.kind === 'conv') {
    shape = [1, g.cin, ...g.inSpatial];
    const x = b.input('x', shape);
    const w = b.normal([g.cout, g.cin / g.group, ...g.kernel], 0.1);
    y = b.op('Conv', [x, w, b.normal([g.cout], 0.1)], { kernel_shape: g.kernel, strides: g.strides, dilations: g.dilations, pads: g.pads, group: g.group });
    if (g.biasMap) y = b.op('Add', [y, b.normal([g.cout, ...outSpatial(g)], 0.1)]);
  } else if (g.kind === 'dense') {
    shape = [g.rows, g.K];
    const x = b.input('x', shape);
    y = b.op('MatMul', [x, b.normal([g.K, g.N], 0.1)]);
    if (g.bias) y = b.op('Add', [y, b.normal([g.N], 0.1)]);
  } else if (g.kind === 'add') {
    shape = g.shape;
    const x = b.input('x', shape);
    y = b.op('Add', [x, b.normal(shape, 0.1)]);
  } else throw new Error('no geometry');
  b.output(y, 'float32');
  const n = product(shape);
  const feeds = { x: Tensor.f32('x', shape, Array.from({ length: n }, (_, i) => Math.sin(i))) };
  return { model: b.model(), feeds };
}
