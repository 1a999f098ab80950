// The fold pipeline: runs the passes to a fixed point, judging every candidate rewrite on its own —
// cleanups are taken when they do not make the objective worse, merges only when it improves — and checking
// each taken rewrite with onnxruntime-node against the unfolded model (undone and reported when the outputs
// drift beyond the tolerance). Before returning, the folded and the input model run on the same seeded
// random inputs (and any given data) one last time.
import { realpathSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { FOLD_DEFAULTS } from './defaults.js';
import { LinfoldError } from '../errors.js';
import { type Model, opsetOf } from '../import/ir.js';
import type { Tensor } from '../import/tensor.js';
import { encodeModel, saveModel } from '../import/onnx-io.js';
import { ortSession } from '../import/ort.js';
import { freeBatch } from '../import/batch.js';
import { nameNodes, restore, snapshot } from '../import/ir-edit.js';
import { type Candidate, type FoldPass, type PassContext, candidateKey } from './pass.js';
import { FoldVerifier } from './fold-verifier.js';
import { FoldObjective, type PlannedCost } from './fold-objective.js';
import { leftUndone, staticMetrics, verdict } from './fold-report.js';
import { removeIdentityPass } from './remove-identity.js';
import { simplifyActivationPass } from './simplify-activation.js';
import { deadCodePass } from './dead-code.js';
import { deadCode } from '../import/ir-edit.js';
import { foldBatchNormPass } from './fold-batchnorm.js';
import { mergeConvPass } from './merge-conv.js';
import { mergeMatmulPass } from './merge-matmul.js';
import { absorbResidualPass } from './absorb-residual.js';
import { splitPartialPass } from './split-partial.js';
import { pushBiasMapPass } from './push-bias-map.js';
import { foldThroughPoolPass } from './fold-through-pool.js';
import { staticShapes, type ShapeMap } from './shapes.js';
import { alternatingLatency } from './verify.js';
import { pairKey } from './merge-plan.js';
import { approximationReport, type ApproximationReport } from './approximate.js';
import { foldShapeChains } from './shape-chains.js';

export { speedup, verdict } from './fold-report.js';

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
  const objective = opts.objective ?? FOLD_DEFAULTS.objective;
  if (!['depth', 'macs', 'latency'].includes(objective)) throw new LinfoldError(`objective '${objective}': choose depth, macs or latency`);
  const tolerance = opts.tolerance ?? FOLD_DEFAULTS.tolerance, eps = opts.eps ?? FOLD_DEFAULTS.eps, latencyRuns = opts.latencyRuns ?? FOLD_DEFAULTS.latencyRuns;
  const seed = opts.seed ?? FOLD_DEFAULTS.seed, batch = opts.batch ?? FOLD_DEFAULTS.batch;
  const passes = selectPasses(opts.passes);

  // dynamic-batch shape chains → constant targets (shape-chains.ts); the input stays the reference
  const chains = await foldShapeChains(input, { inputShapes: opts.inputShapes });
  if (chains.note) opts.log?.(chains.note);
  const model = chains.model;
  const g = model.graph;
  nameNodes(g);
  g.sortTopologically();
  const inputBytes = encodeModel(input);
  const verifier = await FoldVerifier.create(inputBytes, input.path ?? 'input model', g, { seed, batch, inputShapes: opts.inputShapes, data: opts.data });
  const latencyFeeds = verifier.latencyFeeds();
  const shapes: ShapeMap = await staticShapes(model, latencyFeeds);
  const ctx: PassContext = {
    eps, opset: opsetOf(model), objective, borders: opts.borders,
    shapeOf: (n) => shapes.get(n),
    setShape: (n, s) => void shapes.set(n, s),
  };
  const notes: string[] = chains.note ? [chains.note] : [];
  const before = staticMetrics(input, latencyFeeds, eps, notes);
  const run: FoldRun = {
    model, ctx, shapes, latencyFeeds, verifier, tolerance, passes,
    judge: new FoldObjective(objective, g, shapes, ctx, { cost: opts.cost, latencyRuns, latencyFeeds }),
    verifyEach: (opts.verify ?? FOLD_DEFAULTS.verify) === 'each' || opts.borders === 'approximate',
    log: opts.log ?? (() => {}),
    taken: [], rejected: new Map(), failedVerification: [], tried: new Set(), rounds: 0,
  };
  await foldToFixedPoint(run);
  deadCode(g);
  g.sortTopologically();

  const final = await verifier.check(model);
  if (!(final.maxRelError < tolerance)) {
    if (!run.verifyEach) {
      run.log('final verification failed: folding again, verifying every rewrite');
      return fold(input, { ...opts, verify: 'each' });
    }
    throw new LinfoldError(`folded model differs from the input (relative error ${final.maxRelError.toExponential(2)} ≥ ${tolerance}) although every rewrite was verified`);
  }
  // the written model must load in onnxruntime-node: it just ran there
  const after = staticMetrics(model, latencyFeeds, eps, notes);
  const original = opts.original ? { ...staticMetrics(opts.original, latencyFeeds, eps, notes), file: opts.original.path } : undefined;
  if (latencyRuns > 0) {
    const lat = await alternatingLatency([inputBytes, encodeModel(model), ...(opts.original ? [encodeModel(opts.original)] : [])], latencyFeeds, latencyRuns);
    [before.latencyMs, after.latencyMs] = lat;
    if (original) original.latencyMs = lat[2];
  }
  const approximate = run.taken.filter((e) => e.approximate).length;
  return {
    model,
    report: {
      model: input.path,
      objective, tolerance, eps,
      passes: passes.map((p) => p.name),
      before, after,
      taken: run.taken,
      rejected: leftUndone(g, ctx, passes, run.rejected, run.failedVerification),
      verification: { inputs: verifier.inputsText(), seed, batch, maxRelError: final.maxRelError, passed: true, perOutput: final.perOutput },
      rounds: run.rounds,
      notes: [...new Set(notes)],
      ...(original ? { original } : {}),
      verdict: verdict(before, after, original),
      ...(approximate ? { approximation: await approximationReport(input, model, approximate, final.outputs, verifier.inputReferences, opts.accuracy) } : {}),
    },
  };
}

/** The state of one fold: the graph being rewritten, how rewrites are judged and verified, and the record. */
interface FoldRun {
  model: Model;
  ctx: PassContext;
  shapes: ShapeMap;
  latencyFeeds: Record<string, Tensor>;
  verifier: FoldVerifier;
  judge: FoldObjective;
  tolerance: number;
  passes: FoldPass[];
  verifyEach: boolean;
  log: (msg: string) => void;
  taken: FoldEvent[];
  rejected: Map<string, FoldEvent>;
  failedVerification: FoldEvent[];
  tried: Set<string>;
  rounds: number;
}

/** Runs the passes round after round until none takes a rewrite (at most 50 rounds). */
async function foldToFixedPoint(run: FoldRun): Promise<void> {
  const g = run.model.graph;
  for (let changed = true; changed && run.rounds < 50; ) {
    changed = false;
    run.rounds++;
    for (const pass of run.passes) {
      for (;;) {
        const cands = pass.candidates(g, run.ctx);
        for (const c of cands) if (c.refused) run.rejected.set(candidateKey(pass.name, c), { pass: pass.name, what: c.what, nodes: c.nodes, reason: `not exact: ${c.refused}` });
        const plan = PLANNED_PASSES.has(pass.name) && cands.some((c) => c.apply) ? await run.judge.plan() : undefined;
        if (plan) for (const [key, ev] of run.judge.declined(pass.name, cands, plan)) run.rejected.set(key, ev);
        const next = cands.find((c) => c.apply && !run.tried.has(candidateKey(pass.name, c)) && (!plan || plan.together.has(pairKey(c.nodes[0], c.nodes[1]))));
        if (!next) break;
        const key = candidateKey(pass.name, next);
        run.tried.add(key);
        const snap = snapshot(g);
        if (await attempt(run, pass, next, key, plan?.chains.find((ch) => ch.nodes.includes(next.nodes[0])))) {
          run.rejected.delete(key);
          changed = true;
        } else restore(g, snap);
      }
    }
  }
}

/**
 * Applies one candidate, judges it on the objective and verifies it; leaves the graph rewritten (true) or
 * for the caller to restore (false). An approximate merge is taken whatever its error, and later rewrites
 * are verified against the model as it is after it.
 */
async function attempt(run: FoldRun, pass: FoldPass, c: Candidate, key: string, planned?: PlannedCost): Promise<boolean> {
  const { model, judge } = run;
  const beforeBytes = judge.needsTiming(c) ? encodeModel(model) : undefined;
  try {
    c.apply!();
    deadCode(model.graph);
    model.graph.sortTopologically();
  } catch (e) {
    run.rejected.set(key, { pass: pass.name, what: c.what, nodes: c.nodes, reason: `rewrite failed: ${(e as Error).message}` });
    return false;
  }
  await refreshShapes(run);
  const j = await judge.judge(pass, c, planned, beforeBytes && { beforeBytes, afterBytes: encodeModel(model) });
  const ev: FoldEvent = { pass: pass.name, what: c.what, nodes: c.nodes, objective: { before: j.before, after: j.after } };
  if (!j.fine) {
    run.rejected.set(key, { ...ev, reason: judge.refusal(j) });
    return false;
  }
  if (run.verifyEach) {
    let rel: number;
    let outputs: Record<string, Tensor>[] = [];
    try {
      ({ maxRelError: rel, outputs } = await run.verifier.check(model));
    } catch (e) {
      rel = Infinity;
      ev.reason = `verification: ${(e as Error).message}`;
    }
    ev.relError = rel;
    if (c.approximate && Number.isFinite(rel)) {
      ev.approximate = true;
      run.verifier.rebase(outputs);
    } else if (!(rel < run.tolerance)) {
      const bad = { ...ev, reason: ev.reason ?? `verification: relative error ${rel.toExponential(2)} ≥ tolerance ${run.tolerance}` };
      run.rejected.set(key, bad);
      run.failedVerification.push(bad);
      run.log(`undone: ${c.what} (${bad.reason})`);
      return false;
    }
  }
  judge.current = judge.measure();
  run.taken.push(ev);
  run.log(`${pass.name}: ${c.what}`);
  return true;
}

/** Shapes of values a rewrite created, from onnxruntime. */
async function refreshShapes(run: FoldRun): Promise<void> {
  if (!run.model.graph.nodes.some((n) => n.outputs.some((o) => o && !run.shapes.has(o)))) return;
  const fresh = await staticShapes(run.model, run.latencyFeeds);
  for (const [k, v] of fresh) run.shapes.set(k, v);
}

function selectPasses(names?: string[]): FoldPass[] {
  if (!names) return [...PASSES];
  return names.map((n) => {
    const p = PASSES.find((q) => q.name === n);
    if (!p) throw new LinfoldError(`unknown fold pass '${n}' (passes: ${PASSES.map((q) => q.name).join(', ')})`);
    return p;
  });
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
