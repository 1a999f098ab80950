// The fold pipeline: runs the passes to a fixed point, judging every candidate rewrite on its own —
// cleanups are taken when they do not make the objective worse, merges only when it improves — and checking
// each taken rewrite with onnxruntime-node against the unfolded model (undone and reported when the outputs
// drift beyond the tolerance). Before returning, the folded and the input model run on the same seeded
// random inputs (and any given data) one last time.
import { realpathSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { LinfoldError } from '../errors.js';
import { type Model, opsetOf } from '../import/ir.js';
import type { Tensor } from '../import/tensor.js';
import { encodeModel, saveModel } from '../import/onnx-io.js';
import { ortSession } from '../import/ort.js';
import { freeBatch } from '../import/batch.js';
import { nameNodes, restore, snapshot } from './graph-utils.js';
import { type Candidate, type FoldPass, type PassContext, candidateKey } from './pass.js';
import { removeIdentityPass } from './remove-identity.js';
import { simplifyActivationPass } from './simplify-activation.js';
import { deadCode, deadCodePass } from './dead-code.js';
import { foldBatchNormPass } from './fold-batchnorm.js';
import { mergeConvPass } from './merge-conv.js';
import { mergeMatmulPass } from './merge-matmul.js';
import { absorbResidualPass } from './absorb-residual.js';
import { splitPartialPass } from './split-partial.js';
import { pushBiasMapPass } from './push-bias-map.js';
import { foldThroughPoolPass } from './fold-through-pool.js';
import { staticShapes, type ShapeMap } from './shapes.js';
import { alternatingLatency, compareOutputs, firstExample, outputsOn, pairedLatency, randomFeeds } from './verify.js';
import { analyzeMetrics, graphMacs, layerDepth } from './metrics.js';
import { findChains, geometriesOf, pairKey, planMerges, type MergePlan } from './merge-plan.js';
import { layerCoster } from './layer-cost.js';
import { approximationReport, type ApproximationReport } from './approximate.js';
import { foldShapeChains } from './shape-chains.js';

export type Objective = 'depth' | 'macs' | 'latency';

/**
 * All passes, in the order one round runs them. fold-through-pool runs before the conv merges: a pointwise
 * conv moved behind the pool costs one matrix per example instead of one per position, whereas merged into
 * the conv before it, it would still run at every position (and grow that conv's output channels).
 */
export const PASSES: readonly FoldPass[] = [
  removeIdentityPass, simplifyActivationPass, deadCodePass, foldBatchNormPass, foldThroughPoolPass, mergeMatmulPass, mergeConvPass,
  absorbResidualPass, pushBiasMapPass, splitPartialPass,
];

/** The passes whose merges the chain planner (merge-plan.ts) decides, over whole chains. */
const PLANNED_PASSES = new Set(['merge-conv', 'merge-matmul']);

export interface FoldOptions {
  /** what merges must improve (default latency: measured onnxruntime cost of each candidate layer) */
  objective?: Objective;
  /** latency objective: time candidate layers with onnxruntime ('measured', default) or use the cost model ('model') */
  cost?: 'measured' | 'model';
  /** max relative error (max-abs error / max |reference|) allowed on every output; default 1e-4 */
  tolerance?: number;
  /** extra verification inputs (each a full set of feeds) */
  data?: Record<string, Tensor> | Record<string, Tensor>[];
  /** pass names to run (default: all, see PASSES) */
  passes?: string[];
  /** an activation slope counts as 1 when within eps of it (default 0: exactly 1) */
  eps?: number;
  /** seed and batch size of the random verification inputs (default 1234, 2) */
  seed?: number;
  batch?: number;
  /** concrete shapes for inputs with symbolic dims other than the batch */
  inputShapes?: Record<string, number[]>;
  /** onnxruntime runs per latency measurement (median), default 20; 0 skips latency in the report */
  latencyRuns?: number;
  /** verify after every taken rewrite ('each', default) or only at the end ('final'; on failure it reruns with 'each') */
  verify?: 'each' | 'final';
  /** the model the input was made from (the file before `linearize`): the report compares against it too */
  original?: Model;
  /** progress messages */
  log?: (msg: string) => void;
  /** 'approximate': also merge zero-padded convs that are exact only away from the borders; their error is
   *  measured and reported (FoldReport.approximation), not held to the tolerance (default 'exact') */
  borders?: 'exact' | 'approximate';
  /** accuracy of a model (e.g. ortAccuracy on labelled data): reported before/after when approximate merges are taken */
  accuracy?: (m: Model) => Promise<number>;
}

export interface FoldMetrics {
  nodes: number;
  /** Conv/Gemm/MatMul-with-weights nodes */
  layers: number;
  /** layers on the longest input→output path */
  depth: number;
  params: number | null;
  macs: number | null;
  apl: number | null;
  napl: number | null;
  /** median onnxruntime-node latency, batch 1 */
  latencyMs: number | null;
  opCounts: Record<string, number>;
}

export interface FoldEvent {
  pass: string;
  what: string;
  nodes: string[];
  /** for rejections: 'not exact: …', 'objective: …', 'verification: …' */
  reason?: string;
  /** objective value(s) before → after, for merges */
  objective?: { before: number[]; after: number[] };
  /** relative output error after the rewrite, when verified */
  relError?: number;
  /** a border-approximate merge: relError is its own error (against the model before it) */
  approximate?: boolean;
}

export interface FoldReport {
  model?: string;
  objective: Objective;
  tolerance: number;
  eps: number;
  passes: string[];
  before: FoldMetrics;
  after: FoldMetrics;
  taken: FoldEvent[];
  rejected: FoldEvent[];
  verification: {
    inputs: string;
    seed: number;
    batch: number;
    maxRelError: number;
    passed: boolean;
    perOutput: Record<string, { maxAbsError: number; maxAbsReference: number; relError: number }>;
  };
  rounds: number;
  notes: string[];
  /** the model before linearize, when known: the comparison that counts */
  original?: FoldMetrics & { file?: string };
  /** validation accuracy (onnxruntime) of the original, the input and the folded model, when labelled data was given (filled by the caller) */
  accuracy?: { data: string; original?: number; input?: number; folded: number };
  /** plain statements of what the fold achieved against the input and the original, including when it made things worse */
  verdict: string[];
  /** with borders 'approximate' and approximate merges taken: the folded model against the input model
   *  (verification above then compares against the model after the last approximate merge) */
  approximation?: ApproximationReport;
}

export interface FoldResult {
  model: Model;
  report: FoldReport;
}

export async function fold(fixed: Model, opts: FoldOptions = {}): Promise<FoldResult> {
  const input = await freeBatch(fixed, { log: opts.log }); // a batch fixed at 1 by the exporter becomes symbolic
  const objective = opts.objective ?? 'latency';
  if (!['depth', 'macs', 'latency'].includes(objective)) throw new LinfoldError(`objective '${objective}': choose depth, macs or latency`);
  const tolerance = opts.tolerance ?? 1e-4;
  const eps = opts.eps ?? 0;
  const seed = opts.seed ?? 1234, batch = opts.batch ?? 2;
  const latencyRuns = opts.latencyRuns ?? 20;
  const log = opts.log ?? (() => {});
  const passes = selectPasses(opts.passes);

  // dynamic-batch shape chains → constant targets (shape-chains.ts); the input stays the reference
  const chains = await foldShapeChains(input, { inputShapes: opts.inputShapes });
  if (chains.note) log(chains.note);
  const model = chains.model;
  const g = model.graph;
  nameNodes(g);
  g.sortTopologically();
  const originalBytes = encodeModel(input);

  // verification inputs and reference outputs
  const feedSets = [randomFeeds(g, { seed, batch, inputShapes: opts.inputShapes }), ...(opts.data ? (Array.isArray(opts.data) ? opts.data : [opts.data]) : [])];
  const references = await outputsOn(originalBytes, feedSets, input.path ?? 'input model');
  const inputReferences = [...references];
  /** The worst comparison over the feed sets against the current references, and the outputs compared. */
  const verifyNow = async (m: Model) => {
    const outputs = await outputsOn(m, feedSets, 'folded model');
    let worst = { maxRelError: 0, perOutput: {} as FoldReport['verification']['perOutput'] };
    for (let k = 0; k < feedSets.length; k++) {
      const c = compareOutputs(references[k], outputs[k]);
      if (c.maxRelError >= worst.maxRelError) worst = c;
    }
    return { ...worst, outputs };
  };
  const latencyFeeds = firstExample(feedSets[0]);

  const shapes: ShapeMap = await staticShapes(model, latencyFeeds);
  const refreshShapes = async () => {
    if (g.nodes.some((n) => n.outputs.some((o) => o && !shapes.has(o)))) {
      const fresh = await staticShapes(model, latencyFeeds);
      for (const [k, v] of fresh) shapes.set(k, v);
    }
  };
  const ctx: PassContext = {
    eps,
    opset: opsetOf(model),
    shapeOf: (n) => shapes.get(n),
    setShape: (n, s) => void shapes.set(n, s),
    objective,
    borders: opts.borders,
  };

  const notes: string[] = chains.note ? [chains.note] : [];
  const before = staticMetrics(input, latencyFeeds, eps, notes);

  // objective of the current graph (latency is measured per candidate, paired with the current model)
  const measure = (): number[] => {
    const d = layerDepth(g);
    const macs = graphMacs(g, shapes);
    // ties broken by node count (absorbing a residual removes an Add and changes nothing else)
    return objective === 'depth' ? [d.depth, d.critical, macs, g.nodes.length] : [macs, d.depth, d.critical, g.nodes.length];
  };
  const lexLess = (a: number[], b: number[]) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
    return false;
  };
  const objRuns = Math.max(5, Math.min(latencyRuns || 10, 15));
  const coster = layerCoster(objective, { measure: opts.cost !== 'model' });
  /** The cheapest partition of every chain of linear layers in the current graph (costs measured first). */
  const planNow = async (): Promise<MergePlan> => {
    const chains = findChains(g, ctx);
    await coster.prepare(geometriesOf(chains));
    // measured latencies within 3% are a tie (taken for depth): kernel timings vary that much run to run
    return planMerges(chains, (geom) => coster.cost(geom), objective === 'latency' && opts.cost !== 'model' ? 0.03 : 0);
  };

  const taken: FoldEvent[] = [];
  const rejected = new Map<string, FoldEvent>();
  const failedVerification: FoldEvent[] = [];
  const tried = new Set<string>();
  let current = measure();
  let rounds = 0;
  const verifyEach = (opts.verify ?? 'each') === 'each' || opts.borders === 'approximate';

  /** Applies one candidate; returns why it failed, if it did. */
  const applyOne = (c: Candidate): string | undefined => {
    try {
      c.apply!();
      deadCode(g);
      g.sortTopologically();
      return undefined;
    } catch (e) {
      return `rewrite failed: ${(e as Error).message}`;
    }
  };

  /**
   * Applies one candidate and judges it; leaves the graph rewritten (true) or for the caller to restore
   * (false). A merge the chain planner chose (`planned`: the chain's cost as it is and as planned) is already
   * judged; any other merge must improve the objective's lexicographic measure (under latency: MACs, depth,
   * critical layers, nodes), and a speed-only respelling under latency is timed against the current model.
   */
  const attempt = async (pass: FoldPass, c: Candidate, key: string, planned?: { costNow: number; costPlanned: number }): Promise<boolean> => {
    const beforeBytes = objective === 'latency' && c.speedOnly ? encodeModel(model) : undefined;
    const failed = applyOne(c);
    if (failed) {
      rejected.set(key, { pass: pass.name, what: c.what, nodes: c.nodes, reason: failed });
      return false;
    }
    await refreshShapes();
    let after = measure();
    let fine: boolean;
    let objBefore = current;
    if (planned) {
      objBefore = [planned.costNow];
      after = [planned.costPlanned];
      fine = true;
    } else if (beforeBytes) {
      // the candidate and the current model timed in alternation; 2% margin against noise
      const [tCur, tCand] = await pairedLatency(beforeBytes, encodeModel(model), latencyFeeds, objRuns);
      objBefore = [tCur];
      after = [tCand];
      fine = tCand < tCur * 0.98;
    } else if (pass.kind === 'merge') fine = lexLess(after, current);
    else if (c.speedOnly) {
      // an exact respelling that may add nodes: only depth/MACs must not get worse (the last entry is the node count)
      fine = !lexLess(current.slice(0, -1), after.slice(0, -1));
    } else fine = !lexLess(current, after) || objective === 'latency';
    const ev: FoldEvent = { pass: pass.name, what: c.what, nodes: c.nodes, objective: { before: objBefore, after } };
    if (!fine) {
      rejected.set(key, { ...ev, reason: `objective: ${objective} ${fmtObj(objBefore, objective)} → ${fmtObj(after, objective)} does not improve` });
      return false;
    }
    if (verifyEach) {
      let rel: number;
      let outputs: Record<string, Tensor>[] = [];
      try {
        ({ maxRelError: rel, outputs } = await verifyNow(model));
      } catch (e) {
        rel = Infinity;
        ev.reason = `verification: ${(e as Error).message}`;
      }
      ev.relError = rel;
      if (c.approximate && Number.isFinite(rel)) {
        // taken whatever its error; later rewrites are verified against the model as it is now
        ev.approximate = true;
        references.splice(0, references.length, ...outputs);
      } else if (!(rel < tolerance)) {
        const bad = { ...ev, reason: ev.reason ?? `verification: relative error ${rel.toExponential(2)} ≥ tolerance ${tolerance}` };
        rejected.set(key, bad);
        failedVerification.push(bad);
        log(`undone: ${c.what} (${bad.reason})`);
        return false;
      }
    }
    current = measure();
    taken.push(ev);
    log(`${pass.name}: ${c.what}`);
    return true;
  };

  for (let changed = true; changed && rounds < 50; ) {
    changed = false;
    rounds++;
    for (const pass of passes) {
      for (;;) {
        const cands = pass.candidates(g, ctx);
        for (const c of cands) if (c.refused) rejected.set(candidateKey(pass.name, c), { pass: pass.name, what: c.what, nodes: c.nodes, reason: `not exact: ${c.refused}` });
        const plan = PLANNED_PASSES.has(pass.name) && cands.some((c) => c.apply) ? await planNow() : undefined;
        if (plan) recordDeclined(pass.name, cands, plan);
        const next = cands.find((c) => c.apply && !tried.has(candidateKey(pass.name, c)) && (!plan || plan.together.has(pairKey(c.nodes[0], c.nodes[1]))));
        if (!next) break;
        const key = candidateKey(pass.name, next);
        tried.add(key);
        const snap = snapshot(g);
        if (await attempt(pass, next, key, plan?.chains.find((ch) => ch.nodes.includes(next.nodes[0])))) {
          rejected.delete(key);
          changed = true;
        } else restore(g, snap);
      }
    }
  }

  /** Pairs the planner keeps apart, named in the report with the chain's costs. */
  function recordDeclined(passName: string, cands: Candidate[], plan: MergePlan): void {
    for (const ch of plan.chains) {
      for (const [a, b] of ch.apart) {
        const c = cands.find((k) => k.apply && k.nodes[0] === a && k.nodes[1] === b);
        if (!c) continue;
        const parts = ch.segments.map(([i, j]) => (i === j ? ch.nodes[i] : `${ch.nodes[i]}…${ch.nodes[j]}`)).join(' | ');
        rejected.set(candidateKey(passName, c), {
          pass: passName, what: c.what, nodes: c.nodes, objective: { before: [ch.costNow], after: [ch.costPlanned] },
          reason: `objective: ${objective}: the cheapest partition of the chain ${ch.nodes.join(' → ')} is ${parts} (${fmtCost(ch.costPlanned, objective)}, as it is ${fmtCost(ch.costNow, objective)}); merging these two is not part of it`,
        });
      }
    }
  }
  deadCode(g);
  g.sortTopologically();

  const final = await verifyNow(model);
  if (!(final.maxRelError < tolerance)) {
    if (!verifyEach) {
      log('final verification failed: folding again, verifying every rewrite');
      return fold(input, { ...opts, verify: 'each' });
    }
    throw new LinfoldError(`folded model differs from the input (relative error ${final.maxRelError.toExponential(2)} ≥ ${tolerance}) although every rewrite was verified`);
  }
  // the written model must load in onnxruntime-node: it just ran there
  const after = staticMetrics(model, latencyFeeds, eps, notes);
  const original = opts.original ? { ...staticMetrics(opts.original, latencyFeeds, eps, notes), file: opts.original.path } : undefined;
  if (latencyRuns > 0) {
    const lat = await alternatingLatency([originalBytes, encodeModel(model), ...(opts.original ? [encodeModel(opts.original)] : [])], latencyFeeds, latencyRuns);
    [before.latencyMs, after.latencyMs] = lat;
    if (original) original.latencyMs = lat[2];
  }
  // what is left undone, as of the final graph: its refusals, and the applicable rewrites that lost on the
  // objective; every rewrite undone by verification is listed whatever happened later
  const rej: FoldEvent[] = [];
  for (const pass of passes) {
    for (const c of pass.candidates(g, ctx)) {
      const key = candidateKey(pass.name, c);
      if (c.refused) rej.push({ pass: pass.name, what: c.what, nodes: c.nodes, reason: `not exact: ${c.refused}` });
      else if (rejected.get(key)?.reason?.startsWith('objective')) rej.push(rejected.get(key)!);
    }
  }
  rej.push(...failedVerification);
  return {
    model,
    report: {
      model: input.path,
      objective, tolerance, eps,
      passes: passes.map((p) => p.name),
      before, after,
      taken,
      rejected: rej,
      verification: {
        inputs: `seeded N(0,1) random inputs (seed ${seed}, batch ${batch})${feedSets.length > 1 ? ` and ${feedSets.length - 1} given data set(s)` : ''}`,
        seed, batch, maxRelError: final.maxRelError, passed: true, perOutput: final.perOutput,
      },
      rounds,
      notes: [...new Set(notes)],
      ...(original ? { original } : {}),
      verdict: verdict(before, after, original),
      ...(taken.some((e) => e.approximate)
        ? { approximation: await approximationReport(input, model, taken.filter((e) => e.approximate).length, final.outputs, inputReferences, opts.accuracy) }
        : {}),
    },
  };
}

/**
 * A latency change in words. Within 3 % it is "about as fast": alternating medians on a shared machine differ
 * that much between identical models.
 */
export function speedup(beforeMs: number, afterMs: number): string {
  const r = beforeMs / afterMs;
  return r >= 1.03 ? `${r.toFixed(2)}× faster` : r > 1 / 1.03 ? 'about as fast' : `SLOWER: ${(1 / r).toFixed(2)}× the latency`;
}

/**
 * What the fold achieved, in words: depth and latency against the input and, when known, the original. A
 * folded model slower than what it was made from is said so, never left to be read off the numbers.
 */
export function verdict(input: FoldMetrics, folded: FoldMetrics, original?: FoldMetrics & { file?: string }): string[] {
  const out: string[] = [];
  const against = (label: string, ref: FoldMetrics) => {
    const depth = ref.depth === folded.depth ? `as deep (${folded.depth} conv/matmul layers)` : folded.depth < ref.depth ? `shallower (depth ${ref.depth} → ${folded.depth})` : `DEEPER (depth ${ref.depth} → ${folded.depth})`;
    const speed = ref.latencyMs && folded.latencyMs ? `${speedup(ref.latencyMs, folded.latencyMs)} (${ref.latencyMs.toFixed(3)} → ${folded.latencyMs.toFixed(3)} ms)` : 'latency not measured';
    out.push(`against ${label}: ${depth}, ${speed}`);
  };
  against('its input', input);
  if (original) against(`the original${original.file ? ` (${original.file})` : ''}`, original);
  return out;
}

function selectPasses(names?: string[]): FoldPass[] {
  if (!names) return [...PASSES];
  return names.map((n) => {
    const p = PASSES.find((q) => q.name === n);
    if (!p) throw new LinfoldError(`unknown fold pass '${n}' (passes: ${PASSES.map((q) => q.name).join(', ')})`);
    return p;
  });
}

const OBJ_LABELS: Record<Objective, string> = { depth: 'depth, critical layers, MACs, nodes', macs: 'MACs, depth, critical layers, nodes', latency: 'MACs, depth, critical layers, nodes' };
const fmtCost = (v: number, o: Objective) => (o === 'latency' ? `${v.toFixed(3)} ms` : o === 'macs' ? `${Math.round(v)} MACs` : `${Math.round(v)} layers`);
const fmtObj = (v: number[], o: Objective) => (v.length === 1 ? fmtCost(v[0], o) : `[${v.join(', ')}] (${OBJ_LABELS[o]})`);

function staticMetrics(m: Model, feeds: Record<string, Tensor>, eps: number, notes: string[]): FoldMetrics {
  const g = m.graph;
  const d = layerDepth(g);
  const opCounts: Record<string, number> = {};
  for (const n of g.nodes) opCounts[n.opType] = (opCounts[n.opType] ?? 0) + 1;
  // batch-1 shapes of the latency feeds: params/MACs per example
  const inputShapes = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, [...t.dims]]));
  const a = analyzeMetrics(m, { inputShapes, eps });
  for (const w of a.warnings) notes.push(`audit: ${w}`);
  return { nodes: g.nodes.length, layers: d.layers, depth: d.depth, params: a.params, macs: a.macs, apl: a.apl, napl: a.napl, latencyMs: null, opCounts };
}

/**
 * Writes the folded model atomically (temp file + rename). Refuses to overwrite the input file, and checks
 * that onnxruntime-node loads the bytes first.
 */
export async function writeFolded(model: Model, outPath: string, inputPath: string): Promise<void> {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p));
  if (real(outPath) === real(inputPath)) throw new LinfoldError(`${outPath}: refusing to overwrite the input model; choose another output path`);
  const bytes = encodeModel(model);
  const s = await ortSession(bytes, outPath);
  await s.release?.();
  saveModel(model, outPath);
}
