// The cost of one layer, as the merge planner (merge-plan.ts) weighs it, under each objective:
//  - depth: 1 per layer (ties broken by MACs);
//  - macs: its MACs per example (ties broken by the layer count);
//  - latency: its onnxruntime-node latency at batch 1, measured on a one-layer model of that geometry (cached by
//    geometry for the whole process) minus the latency of an empty model, so the per-run overhead that a layer
//    in a whole network does not pay is not counted; or, with `measure: false` or when measuring fails, a model
//    of it: a per-node overhead plus MACs at a throughput per layer kind (constants measured on the 2-core dev
//    machine with onnxruntime-node 1.30's default threads; see bench/fold.ts).
import { GraphBuilder } from '../import/graph-builder.js';
import { Tensor } from '../import/tensor.js';
import { measureLatency } from './verify.js';
import { prod } from './graph-utils.js';

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

/** MACs per example of a geometry. */
export function geometryMacs(g: LayerGeometry): number {
  if (g.kind === 'conv') {
    const out = g.inSpatial.map((x, a) => Math.floor((x + g.pads[a] + g.pads[a + g.kernel.length] - (g.kernel[a] - 1) * g.dilations[a] - 1) / g.strides[a]) + 1);
    return g.cout * (g.cin / g.group) * prod(g.kernel) * prod(out);
  }
  if (g.kind === 'dense') return g.rows * g.K * g.N;
  return 0;
}

/** Modelled latency (ms) of a geometry: see the header. */
export function modelledMs(g: LayerGeometry): number {
  const NODE_MS = 0.004;
  if (g.kind === 'add') return NODE_MS + prod(g.shape) / 2e6;
  if (g.kind === 'unknown') return NODE_MS;
  const macs = geometryMacs(g);
  // depthwise convs run far below the dense GEMM rate
  const rate = g.kind === 'conv' && g.group > 1 && g.group === g.cin ? 2e6 : 2e7;
  return NODE_MS + macs / rate + (g.kind === 'conv' && g.biasMap ? NODE_MS + geometryMacs({ ...g, kernel: g.kernel.map(() => 1), cin: g.group }) / 2e6 : 0);
}

// one intra-op thread: a thread pool's wake-up latency made single-layer timings bimodal (0.03 or 0.4 ms for
// the same 1×1 conv, session to session)
const ONE_THREAD = { intraOpNumThreads: 1, interOpNumThreads: 1 };

const measured = new Map<string, number>();
let emptyMs: number | undefined;

export interface LayerCoster {
  /** measures what is not cached yet (latency objective with measuring on) */
  prepare(geoms: LayerGeometry[]): Promise<void>;
  cost(g: LayerGeometry): number;
  /** how many geometries were measured, and in how long (ms) */
  stats: { measured: number; ms: number; failed: number };
}

export function layerCoster(objective: CostObjective, opts: { measure?: boolean; runs?: number } = {}): LayerCoster {
  const measure = objective === 'latency' && opts.measure !== false;
  const runs = opts.runs ?? 15;
  const stats = { measured: 0, ms: 0, failed: 0 };
  const failed = new Set<string>();
  return {
    stats,
    async prepare(geoms) {
      if (!measure) return;
      const t0 = performance.now();
      emptyMs ??= await measureLatency(emptyModel(), { x: Tensor.f32('x', [1], [0]) }, 50, 10, 'min', ONE_THREAD);
      for (const g of geoms) {
        const key = JSON.stringify(g);
        if (g.kind === 'unknown' || measured.has(key) || failed.has(key)) continue;
        try {
          const { model, feeds } = oneLayerModel(g);
          measured.set(key, Math.max(0, await measureLatency(model, feeds, runs, 5, 'min', ONE_THREAD) - emptyMs));
          stats.measured++;
        } catch {
          failed.add(key);
          stats.failed++;
        }
      }
      stats.ms += performance.now() - t0;
    },
    cost(g) {
      if (objective === 'depth') return g.kind === 'add' ? 0 : 1 + geometryMacs(g) * 1e-15;
      if (objective === 'macs') return geometryMacs(g) + (g.kind === 'add' ? 0 : 1e-6);
      return (measure ? measured.get(JSON.stringify(g)) : undefined) ?? modelledMs(g);
    },
  };
}

function emptyModel() {
  const b = new GraphBuilder({ opset: 13 });
  return b.output(b.op('Identity', [b.input('x', [1])], {}, [1])).model();
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
    if (g.biasMap) {
      const out = g.inSpatial.map((s, a) => Math.floor((s + g.pads[a] + g.pads[a + g.kernel.length] - (g.kernel[a] - 1) * g.dilations[a] - 1) / g.strides[a]) + 1);
      y = b.op('Add', [y, b.normal([g.cout, ...out], 0.1)]);
    }
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
  const n = prod(shape);
  const feeds = { x: Tensor.f32('x', shape, Array.from({ length: n }, (_, i) => Math.sin(i))) };
  return { model: b.model(), feeds };
}
