// linfold sweep: linearize (+ fold) once per λ and collect accuracy, NAPL, MACs and latency per point —
// the accuracy-vs-depth curve of the paper. Points are independent: `point` runs one of them, so a sweep
// can be spread over processes or machines and merged afterwards (mergeSweep).
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from './files.js';
import { join } from 'node:path';
import { LinfoldError } from './errors.js';
import type { Model } from './import/ir.js';
import { saveModel } from './import/onnx-io.js';
import type { Dataset } from './train/data.js';
import { linearize, type LinearizeOptions } from './train/linearize.js';
import { fold } from './export/index.js';
import type { SweepPoint } from './analyze/report-html.js';

export interface SweepOptions extends Omit<LinearizeOptions, 'lambda' | 'data' | 'fromScratch' | 'checkpointDir' | 'logFile' | 'resume'> {
  data: Dataset;
  lambdas: number[];
  /** Also run every λ with the prior applied from scratch (random init). */
  fromScratch?: boolean;
  /** Run only point i (0-based over lambdas × [post-training, from scratch]). */
  point?: number;
  /** Folder for the per-point models and JSON (default: sweep-out). */
  outDir: string;
  /** Fold each linearized model and measure onnxruntime latency (default true). */
  fold?: boolean;
  log?: (msg: string) => void;
}

export interface SweepResult { model: string | null; baseline: { valAccuracy: number | null; napl: number; apl: number }; points: SweepPoint[] }

export function sweepPlan(lambdas: number[], fromScratch: boolean): { lambda: number; fromScratch: boolean }[] {
  return [...lambdas.map((lambda) => ({ lambda, fromScratch: false })), ...(fromScratch ? lambdas.map((lambda) => ({ lambda, fromScratch: true })) : [])];
}

export async function sweep(model: Model, opts: SweepOptions): Promise<SweepResult> {
  const plan = sweepPlan(opts.lambdas, Boolean(opts.fromScratch));
  if (opts.point !== undefined && !(opts.point >= 0 && opts.point < plan.length))
    throw new LinfoldError(`--point ${opts.point}: the sweep has points 0..${plan.length - 1}`);
  mkdirSync(opts.outDir, { recursive: true });
  const todo = opts.point === undefined ? plan.map((_, i) => i) : [opts.point];
  const points: SweepPoint[] = [];
  let baseline: SweepResult['baseline'] | undefined;
  for (const i of todo) {
    const { lambda, fromScratch } = plan[i];
    const tag = `${fromScratch ? 'scratch' : 'post'}-lambda-${lambda}`;
    opts.log?.(`point ${i + 1}/${plan.length}: λ = ${lambda}${fromScratch ? ' (from scratch)' : ''}`);
    const r = await linearize(model, { ...opts, lambda, fromScratch, checkpointDir: undefined, logFile: join(opts.outDir, `${tag}.log.jsonl`) });
    baseline ??= { valAccuracy: r.before.valAccuracy, napl: r.before.napl, apl: r.before.apl };
    saveModel(r.model, join(opts.outDir, `${tag}.onnx`));
    const p: SweepPoint & Record<string, unknown> = {
      lambda, fromScratch, label: tag, valAccuracy: r.after.valAccuracy ?? r.after.teacherAgreement ?? NaN, napl: r.after.napl, apl: r.after.apl,
      linearChannels: r.after.linearChannels, channels: r.after.channels,
    };
    if (opts.fold !== false) {
      const f = await fold(r.model, { objective: 'depth', latencyRuns: 30 });
      saveModel(f.model, join(opts.outDir, `${tag}.folded.onnx`));
      Object.assign(p, { macs: f.report.after.macs ?? undefined, latencyMs: f.report.after.latencyMs ?? undefined, depth: f.report.after.depth, macsBefore: f.report.before.macs, latencyMsBefore: f.report.before.latencyMs });
    }
    points.push(p);
    writeJson(join(opts.outDir, `point-${i}.json`), { model: model.path ?? null, baseline, points: [p] });
  }
  const result = { model: model.path ?? null, baseline: baseline!, points };
  if (opts.point === undefined) writeJson(join(opts.outDir, 'sweep.json'), result);
  return result;
}

/** Merges point files (from `--point` runs) into one sweep, ordered by (from scratch, λ). */
export function mergeSweep(files: string[]): SweepResult {
  if (!files.length) throw new LinfoldError('--merge: no point files given');
  const parts = files.map((f) => {
    try {
      return JSON.parse(readFileSync(f, 'utf8')) as SweepResult;
    } catch (e) {
      throw new LinfoldError(`${f}: not a sweep point file (${(e as Error).message.split('\n')[0]})`);
    }
  });
  const points = parts.flatMap((p) => p.points ?? []).sort((a, b) => Number(a.fromScratch) - Number(b.fromScratch) || a.lambda - b.lambda);
  return { model: parts[0].model, baseline: parts[0].baseline, points };
}

function writeJson(path: string, v: unknown): void {
  writeFileAtomic(path, JSON.stringify(v, null, 2) + '\n');
}
