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
import { ortSession, runOrt } from '../import/ort.js';
import { freeBatch } from '../import/batch.js';
import { cloneModel, nameNodes, restore, snapshot } from './graph-utils.js';
import { type Candidate, type FoldPass, type PassContext, candidateKey } from './pass.js';
import { removeIdentityPass } from './remove-identity.js';
import { simplifyActivationPass } from './simplify-activation.js';
import { deadCode, deadCodePass } from './dead-code.js';
import { foldBatchNormPass } from './fold-batchnorm.js';
import { mergeConvPass } from './merge-conv.js';
import { mergeMatmulPass } from './merge-matmul.js';
import { absorbResidualPass } from './absorb-residual.js';
import { splitPartialPass } from './split-partial.js';
import { foldThroughPoolPass } from './fold-through-pool.js';
import { staticShapes, type ShapeMap } from './shapes.js';
import { compareOutputs, firstExample, pairedLatency, randomFeeds } from './verify.js';
import { analyzeMetrics, graphMacs, layerDepth } from './metrics.js';

export type Objective = 'depth' | 'macs' | 'latency';

/**
 * All passes, in the order one round runs them. fold-through-pool runs before the conv merges: a pointwise
 * conv moved behind the pool costs one matrix per example instead of one per position, whereas merged into
 * the conv before it, it would still run at every position (and grow that conv's output channels).
 */
export const PASSES: readonly FoldPass[] = [
  removeIdentityPass, simplifyActivationPass, deadCodePass, foldBatchNormPass, foldThroughPoolPass, mergeMatmulPass, mergeConvPass,
  absorbResidualPass, splitPartialPass,
];

export interface FoldOptions {
  objective?: Objective;
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
  /** a merge that loses on the objective may be followed by up to this many merges of the node it made (default 2) */
  lookahead?: number;
  /** progress messages */
  log?: (msg: string) => void;
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
}

export interface FoldResult {
  model: Model;
  report: FoldReport;
}

export async function fold(fixed: Model, opts: FoldOptions = {}): Promise<FoldResult> {
  const input = await freeBatch(fixed, { log: opts.log }); // a batch fixed at 1 by the exporter becomes symbolic
  const objective = opts.objective ?? 'depth';
  if (!['depth', 'macs', 'latency'].includes(objective)) throw new LinfoldError(`objective '${objective}': choose depth, macs or latency`);
  const tolerance = opts.tolerance ?? 1e-4;
  const eps = opts.eps ?? 0;
  const seed = opts.seed ?? 1234, batch = opts.batch ?? 2;
  const latencyRuns = opts.latencyRuns ?? 20;
  const log = opts.log ?? (() => {});
  const passes = selectPasses(opts.passes);

  const model = cloneModel(input);
  const g = model.graph;
  nameNodes(g);
  g.sortTopologically();
  const originalBytes = encodeModel(input);

  // verification inputs and reference outputs
  const feedSets = [randomFeeds(g, { seed, batch, inputShapes: opts.inputShapes }), ...(opts.data ? (Array.isArray(opts.data) ? opts.data : [opts.data]) : [])];
  const refSession = await ortSession(originalBytes, input.path ?? 'input model');
  const references: Record<string, Tensor>[] = [];
  for (const f of feedSets) references.push(await runOrt(refSession, f));
  await refSession.release?.();
  const verifyNow = async (m: Model) => {
    const s = await ortSession(encodeModel(m), 'folded model');
    let worst = { maxRelError: 0, perOutput: {} as FoldReport['verification']['perOutput'] };
    for (let k = 0; k < feedSets.length; k++) {
      const c = compareOutputs(references[k], await runOrt(s, feedSets[k]));
      if (c.maxRelError >= worst.maxRelError) worst = c;
    }
    await s.release?.();
    return worst;
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
  };

  const notes: string[] = [];
  const before = staticMetrics(model, latencyFeeds, eps, notes);

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
  const lookahead = opts.lookahead ?? 2;

  const taken: FoldEvent[] = [];
  const rejected = new Map<string, FoldEvent>();
  const failedVerification: FoldEvent[] = [];
  const tried = new Set<string>();
  let current = measure();
  let rounds = 0;
  const verifyEach = (opts.verify ?? 'each') === 'each';

  /** Applies one candidate and judges it; leaves the graph rewritten (true) or for the caller to restore (false). */
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
   * (false). A merge that loses on the objective may be followed by up to `lookahead` further merges of the
   * same pass that involve the node it created (e.g. expand∘dw raises MACs, but expand∘dw∘project lowers
   * them): the chain is taken as a whole when it ends better than it started.
   */
  const attempt = async (pass: FoldPass, c: Candidate, key: string): Promise<boolean> => {
    const beforeBytes = objective === 'latency' && (pass.kind === 'merge' || c.speedOnly) ? encodeModel(model) : undefined;
    const namesBefore = new Set(g.nodes.map((n) => n.name));
    const failed = applyOne(c);
    if (failed) {
      rejected.set(key, { pass: pass.name, what: c.what, nodes: c.nodes, reason: failed });
      return false;
    }
    await refreshShapes();
    let after = measure();
    let fine: boolean;
    let objBefore = current;
    const chain = [c];
    if (beforeBytes) {
      // latency: the candidate and the current model timed in alternation; 2% margin against noise
      const [tCur, tCand] = await pairedLatency(beforeBytes, encodeModel(model), latencyFeeds, objRuns);
      objBefore = [tCur];
      after = [tCand];
      fine = tCand < tCur * 0.98;
    } else if (pass.kind === 'merge') {
      fine = lexLess(after, current);
      for (let step = 0; !fine && step < lookahead; step++) {
        const fresh = new Set(g.nodes.map((n) => n.name).filter((n) => !namesBefore.has(n)));
        const follow = pass.candidates(g, ctx).find((k) => k.apply && k.nodes.some((n) => fresh.has(n)));
        if (!follow || applyOne(follow)) break;
        chain.push(follow);
        await refreshShapes();
        after = measure();
        fine = lexLess(after, current);
      }
    } else if (c.speedOnly) {
      // an exact respelling that may add nodes: only depth/MACs must not get worse (the last entry is the node count)
      fine = !lexLess(current.slice(0, -1), after.slice(0, -1));
    } else fine = !lexLess(current, after) || objective === 'latency';
    const what = chain.map((k) => k.what).join(', then ');
    const ev: FoldEvent = { pass: pass.name, what, nodes: [...new Set(chain.flatMap((k) => k.nodes))], objective: { before: objBefore, after } };
    if (!fine) {
      rejected.set(key, { ...ev, what: c.what, nodes: c.nodes, reason: `objective: ${objective} ${fmtObj(objBefore, objective)} → ${fmtObj(after, objective)} does not improve${chain.length > 1 ? ` (nor with the ${chain.length - 1} merge(s) after it)` : ''}` });
      return false;
    }
    if (verifyEach) {
      let rel: number;
      try {
        rel = (await verifyNow(model)).maxRelError;
      } catch (e) {
        rel = Infinity;
        ev.reason = `verification: ${(e as Error).message}`;
      }
      ev.relError = rel;
      if (!(rel < tolerance)) {
        const bad = { ...ev, reason: ev.reason ?? `verification: relative error ${rel.toExponential(2)} ≥ tolerance ${tolerance}` };
        rejected.set(key, bad);
        failedVerification.push(bad);
        log(`undone: ${what} (${bad.reason})`);
        return false;
      }
    }
    current = measure();
    taken.push(ev);
    log(`${pass.name}: ${what}`);
    return true;
  };

  for (let changed = true; changed && rounds < 50; ) {
    changed = false;
    rounds++;
    for (const pass of passes) {
      for (;;) {
        const cands = pass.candidates(g, ctx);
        for (const c of cands) if (c.refused) rejected.set(candidateKey(pass.name, c), { pass: pass.name, what: c.what, nodes: c.nodes, reason: `not exact: ${c.refused}` });
        const next = cands.find((c) => c.apply && !tried.has(candidateKey(pass.name, c)));
        if (!next) break;
        const key = candidateKey(pass.name, next);
        tried.add(key);
        const snap = snapshot(g);
        if (await attempt(pass, next, key)) {
          rejected.delete(key);
          changed = true;
        } else restore(g, snap);
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
  if (latencyRuns > 0) [before.latencyMs, after.latencyMs] = await pairedLatency(originalBytes, encodeModel(model), latencyFeeds, latencyRuns);
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
    },
  };
}

function selectPasses(names?: string[]): FoldPass[] {
  if (!names) return [...PASSES];
  return names.map((n) => {
    const p = PASSES.find((q) => q.name === n);
    if (!p) throw new LinfoldError(`unknown fold pass '${n}' (passes: ${PASSES.map((q) => q.name).join(', ')})`);
    return p;
  });
}

const OBJ_LABELS: Record<Objective, string> = { depth: 'depth, critical layers, MACs, nodes', macs: 'MACs, depth, critical layers, nodes', latency: 'ms' };
const fmtObj = (v: number[], o: Objective) => (o === 'latency' ? `${v[0].toFixed(3)} ms` : `[${v.join(', ')}] (${OBJ_LABELS[o]})`);

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
