// linfold demo: the whole pipeline on the embedded default — the bundled MobileNetV2-style MNIST network
// (fixtures/mnist_mbv2.onnx) and the `mnist` package's digits: audit → linearize → fold → verify → report,
// with depth, MACs, latency and accuracy stated against the original model.
import { mkdirSync } from 'node:fs';
import { writeFileAtomic as writeAtomic } from './files.js';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModel, saveModel } from './import/onnx-io.js';
import { audit } from './analyze/audit.js';
import { renderHtmlReport } from './report/html.js';
import { mnist } from './train/data.js';
import { linearize, type LinearizeOptions } from './train/linearize.js';
import { ortAccuracy } from './train/evaluate.js';
import { fold, renderFoldMarkdown, speedup } from './export/index.js';

export const DEMO_MODEL = fileURLToPath(new URL('../fixtures/mnist_mbv2.onnx', import.meta.url));

/**
 * The settings the demo trains with (also the README's example): one slope per inverted residual block, so a
 * block ends either linear (its expand, depthwise and project convs and the residual fold into one dense 3×3
 * conv) or, with snap, exactly the original ReLU6 pair that onnxruntime fuses into its convs. The stem, the
 * head and the two last (7×7) blocks keep their ReLU6 (skip): the prior, weighting a block by its channels,
 * would take those wide, cheap blocks first, while the latency is in the 14×14 ones. Labels + distillation,
 * shifts of 2 px, one epoch with the prior, three of fine-tuning: about 4 minutes on 2 cores.
 */
export const DEMO_SETTINGS: Partial<LinearizeOptions> = {
  granularity: 'block', skip: /stem|head|blocks\.[67]\//, loss: 'both', lambda: 0.08, lr: 1e-3, slopeLr: 3e-2, epochs: 1, finetuneEpochs: 3, finetuneLr: 1e-3,
  snap: true, augment: { shift: 2, flip: false }, batchSize: 64, seed: 0,
};

export interface DemoSummary {
  files: Record<string, string>;
  accuracy: { before: number; after: number };
  napl: { before: number; after: number };
  apl: { before: number; after: number };
  depth: { before: number; after: number };
  macs: { before: number | null; after: number | null };
  latencyMs: { before: number | null; after: number | null };
  linearChannels: string;
  /** the fold's plain statements against the original (slower or deeper is said so) */
  verdict: string[];
  seconds: number;
}

export async function demo(opts: { outDir?: string; quiet?: boolean; settings?: Partial<LinearizeOptions>; log?: (m: string) => void } = {}): Promise<DemoSummary> {
  const t0 = Date.now();
  const log = opts.log ?? (() => {});
  const out = resolve(opts.outDir ?? 'linfold-demo');
  mkdirSync(out, { recursive: true });
  const original = loadModel(DEMO_MODEL);
  const data = mnist();
  log(`1/4 audit ${DEMO_MODEL}`);
  const before = audit(loadModel(DEMO_MODEL));
  log('2/4 linearize on the bundled MNIST digits (8 004 train / 1 996 validation)');
  const lin = await linearize(original, { data, quiet: opts.quiet, ...DEMO_SETTINGS, ...opts.settings });
  const name = basename(DEMO_MODEL, '.onnx');
  const files = { linear: join(out, `${name}.linear.onnx`), folded: join(out, `${name}.folded.onnx`), report: join(out, 'report.html'), foldReport: join(out, 'fold-report.md'), summary: join(out, 'summary.json') };
  saveModel(lin.model, files.linear);
  log('3/4 fold linear layers (cheapest measured partition), verify with onnxruntime');
  // latency of the original, the linearized and the folded model timed in alternation, batch 1
  const folded = await fold(lin.model, { original, latencyRuns: 300 });
  saveModel(folded.model, files.folded);
  const after = audit(loadModel(files.folded));
  log('4/4 validation accuracy of the written models (onnxruntime), report');
  const [accBefore, accAfter] = [await ortAccuracy(DEMO_MODEL, data), await ortAccuracy(files.folded, data)];
  folded.report.accuracy = { data: 'bundled MNIST validation split (1 996 digits)', original: accBefore, folded: accAfter };
  const summary: DemoSummary = {
    files,
    accuracy: { before: accBefore, after: accAfter },
    napl: { before: before.summary.napl, after: after.summary.napl },
    apl: { before: before.summary.apl, after: after.summary.apl },
    depth: { before: folded.report.original!.depth, after: folded.report.after.depth },
    macs: { before: before.summary.macs, after: after.summary.macs },
    latencyMs: { before: folded.report.original!.latencyMs, after: folded.report.after.latencyMs },
    linearChannels: `${lin.after.linearChannels}/${lin.after.channels}`,
    verdict: folded.report.verdict,
    seconds: (Date.now() - t0) / 1000,
  };
  writeAtomic(files.report, await renderHtmlReport({ report: before, compare: after, fold: folded.report, title: `linfold demo — ${name}` }));
  writeAtomic(files.foldReport, renderFoldMarkdown(folded.report));
  writeAtomic(files.summary, JSON.stringify(summary, null, 2) + '\n');
  return summary;
}

export function renderDemoSummary(s: DemoSummary): string {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const ms = (v: number | null) => (v === null ? '?' : `${v.toFixed(3)} ms`);
  const m = (v: number | null) => (v === null ? '?' : `${(v / 1e6).toFixed(2)} M`);
  return [
    `accuracy   ${pct(s.accuracy.before)} → ${pct(s.accuracy.after)} (validation, onnxruntime)`,
    `NAPL       ${s.napl.before.toFixed(3)} → ${s.napl.after.toFixed(3)} (effective depth; APL ${s.apl.before.toFixed(3)} → ${s.apl.after.toFixed(3)}; ${s.linearChannels} channels linear)`,
    `depth      ${s.depth.before} → ${s.depth.after} conv/matmul layers on the longest path`,
    `MACs       ${m(s.macs.before)} → ${m(s.macs.after)} per image`,
    `latency    ${ms(s.latencyMs.before)} → ${ms(s.latencyMs.after)} (onnxruntime-node, batch 1, median)${s.latencyMs.before && s.latencyMs.after ? `: ${speedup(s.latencyMs.before, s.latencyMs.after)}, against the original` : ''}`,
  ].join('\n');
}
