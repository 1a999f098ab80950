// bench/transformer: original vs linearized vs folded transformers, in one run.
//   node --import tsx bench/transformer.ts --recipe [--only vit,vitfixed,lm,bert] [--train-only] [--runs 300]
//   node --import tsx bench/transformer.ts [--runs 300]
//        [--vit original.onnx --vit-linear linearized.onnx]                      (accuracy on the MNIST validation split)
//        [--vitfixed original.onnx --vitfixed-linear linearized.onnx]            (the same, for a batch-1 export)
//        [--lm original.onnx --lm-linear linearized.onnx --lm-data held-out.npy]  (perplexity on held-out token rows)
//        [--bert original.onnx --bert-linear linearized.onnx --bert-data val.npz] (top-1 agreement with the original)
// --recipe: each trained fixture (fixtures/make_transformers.py) is linearized here by `linearize` with the recipe in
// RECIPES below (blend form on every GELU, the prior, then fine-tuning with --snap) and cached in bench/out/
// (<fixture>.recipe.onnx and its .log.jsonl; delete a file to train it again); the char LM's training windows
// (bench/out/char_lm_train.npy) and held-out windows (bench/out/char_lm_heldout.npy) are cut from the fixture's own
// text split. Each linearized model is folded here (src/export/pipeline.ts, objective latency, verified against the
// linearized model by onnxruntime-node), the original is folded as it is too (its GELUs stay: only exact
// rewrites such as the shape chains apply — the gain folding makes without linearization), and the four models
// are timed in alternation at batch 1 (medians, onnxruntime-node defaults with intra-op spinning off, as
// bench/fold.ts). Quality is measured by onnxruntime: ViT — top-1 accuracy on the validation split of the bundled
// MNIST digits (every 5th per class, as training); LM — perplexity exp(mean −log p(next char)) over every position
// of the held-out rows; BERT-style — agreement of the argmax with the original on the .npz rows. Depth =
// Conv/Gemm/MatMul-with-weights on the longest path, MACs per example (src/analyze). Targets (issue 13): ViT folded
// ≥ 1.3× faster at ≤ 1 point, LM ≥ 1.3× at ≤ 3 % higher perplexity. The run ends with one table of all models.
//
// Measured 2026-12-05 on the shared 2-core machine (another helper's jobs running: load average 2.7–3.2), one run of
// `--recipe` with every fixture cached (training: ViT 2.4 min on onnxruntime, its fixed-batch twin the same, char LM
// 4.5 min and BERT-style 0.4 min on wasm; the whole first run ≈ 10 min):
// | model | quality: original → linearized → folded | linear channels | depth | MACs/example | latency ms: original → linearized → folded | speed-up |
// | ViT (vit_mnist.onnx) | val acc 97.49 → 97.34 → 97.34 % | 1020/1024 | 18 → 15 | 3.54 M → 1.60 M | 0.213 → 0.225 → 0.128 | 1.66× |
// | ViT, batch fixed at 1 (vit_mnist_fixed.onnx) | 97.49 → 97.34 → 97.34 % | 1020/1024 | 18 → 15 | 3.54 M → 1.60 M | 0.160 → 0.179 → 0.121 | 1.31× |
// | char LM (char_lm.onnx) | held-out perplexity 12.250 → 12.280 → 12.280 (+0.24 %) | 2048/2048 | 17 → 13 | 55.32 M → 25.96 M | 1.151 → 1.237 → 0.600 | 1.92× |
// | BERT-style (bert_tiny.onnx) | agreement with the original 100 → 99.22 → 99.22 % | 576/576 | 10 → 7 | 7.34 M → 3.67 M | 0.244 → 0.320 → 0.202 | 1.20× |
// Both targets met: ViT 1.66× at −0.15 points (1.30× over the original folded without linearization, whose
// shape chains alone give 1.27×), char LM 1.92× at +0.24 % perplexity (1.73× over the original folded, 1.11×).
// The BERT-style original folded without linearization times slower than the original (0.84–0.85× in all three runs,
// 179 → 85 nodes; not investigated); linearized + folded is 1.44× over it. Two
// earlier runs of the same models (load 1.9–3.5): ViT 1.61×/1.66×, fixed-batch ViT 1.34×, char LM
// 1.94×/1.75×, BERT-style 1.25×/1.24×. The fixed-batch export is the leaner original (245 nodes, no run-time shape
// arithmetic): its gain is the FFN merges alone, 1.31–1.34×, just over the target. In both ViTs 4 GELU channels of
// block 0 stay nonlinear (the prior's pull is matched by the task's; 2 prior epochs leave 3): fold splits that FFN
// into a 4-channel GELU core plus a 64×64 bypass. The char LM's perplexity is over 1 024 windows of the held-out
// files (the fixture's 12.40 is over 1 024 windows of its own draw); on the 64 rows of fixtures/data/char_lm_val.npy
// (`--lm-data fixtures/data/char_lm_val.npy`) the same models give 11.695 → 11.711 (+0.13 %), 1.94×. The BERT-style
// fixture ships no training pairs: it is distilled (no labels) on the 256 rows of fixtures/data/bert_val.npz, the
// rows its agreement is then measured on (2 of 256 flip). Recipes as commands (the CLI applies the same defaults):
//   linfold linearize fixtures/vit_mnist.onnx --backend onnxruntime --loss both --lambda 0.05 --slope-lr 0.05 --lr 3e-4
//     --batch-size 32 --epochs 1 --finetune-epochs 10 --finetune-lr 1e-3 --snap --augment shift:2 -o vit.linear.onnx
//   (the same with fixtures/vit_mnist_fixed.onnx: the batch is freed, no re-export)
//   linfold linearize fixtures/char_lm.onnx --data bench/out/char_lm_train.npy --loss distill --lambda 0.05 --slope-lr 0.05
//     --lr 3e-4 --batch-size 16 --epochs 1 --finetune-epochs 2 --finetune-lr 1e-3 --snap --backend wasm -o lm.linear.onnx
//   linfold linearize fixtures/bert_tiny.onnx --data fixtures/data/bert_val.npz --loss distill --lambda 0.05 --slope-lr 0.05
//     --lr 3e-4 --batch-size 16 --epochs 3 --finetune-epochs 3 --finetune-lr 1e-3 --snap --backend wasm -o bert.linear.onnx
//   linfold fold <linearized> -o <folded>  (bert: --eval-data fixtures/data/bert_val.npz)
// Stand-ins (bench/transformer_standins.py, measured 2026-12-04 before the trained fixtures existed): a ViT of the same
// class trained 4 epochs (90.88 %) gave 1.70× at −0.40 points, a char LM trained 150 steps gave 1.77× at +3.01 %.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, join } from 'node:path';
import type { Model } from '../src/import/ir.js';
import { Tensor } from '../src/import/tensor.js';
import { loadModel, encodeModel, saveModel } from '../src/import/onnx-io.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { freeBatch } from '../src/import/batch.js';
import { fold } from '../src/export/pipeline.js';
import { alternatingLatency, firstExample, randomFeeds } from '../src/export/verify.js';
import { analyzeMetrics, layerDepth } from '../src/export/metrics.js';
import { ortAccuracy } from '../src/train/evaluate.js';
import { mnist } from '../src/train/data.js';
import { openNpy, readNpz, type RowSource } from '../src/train/npy.js';
import { audit } from '../src/analyze/audit.js';
import { cloneModel } from '../src/import/ir-edit.js';
import { nextTokenNll } from '../src/train/sequence.js';
import { linearize, type LinearizeOptions } from '../src/train/linearize.js';
import { openDataset } from '../src/train/feeds.js';
import { parseAugmentation } from '../src/train/augment.js';
import { seededRandom } from '../src/import/random.js';
import { writeNpy } from '../test/support/npy.js';

const args = process.argv.slice(2);
const arg = (k: string): string | undefined => (args.includes(k) ? args[args.indexOf(k) + 1] : undefined);
const RUNS = Number(arg('--runs') ?? 300);

type Quality = {
  label: string; value: (m: Model) => Promise<number>; fmt: (v: number) => string; compare: (orig: number, folded: number) => string;
  /** issue 13's target for the folded model against the original, when it has one */
  target?: { text: string; met: (orig: number, folded: number, speedUp: number) => boolean };
};

const mega = (macs: string) => (macs === '?' ? '?' : `${(Number(macs.replaceAll(',', '')) / 1e6).toFixed(2)} M`);
/** One line per model for the closing table. */
const summary: string[][] = [];

/** Perplexity of next-token prediction over every position of the rows ([rows, T] int64 → logits [rows, T, V]). */
async function perplexity(model: Model, rows: RowSource): Promise<number> {
  const m = await freeBatch(cloneModel(model));
  const s = await ortSession(encodeModel(m), 'perplexity');
  const name = s.inputNames[0];
  const [R, T] = rows.shape;
  const fixed = m.graph.feeds[0]?.shape?.[0] === 1;
  const bs = fixed ? 1 : 16;
  let nll = 0, n = 0;
  for (let r0 = 0; r0 < R; r0 += bs) {
    const idx = Array.from({ length: Math.min(bs, R - r0) }, (_, i) => r0 + i);
    const ids = rows.rows(idx);
    const out = Object.values(await runOrt(s, { [name]: Tensor.i64(name, [idx.length, T], Array.from(ids)) }))[0];
    const V = out.dims[out.dims.length - 1];
    const r = nextTokenNll(out.float32(), ids, idx.length, T, V);
    nll += r.sum;
    n += r.count;
  }
  await s.release?.();
  return Math.exp(nll / n);
}

/** Top-1 agreement with a reference on every row of an .npz of named inputs. */
async function agreement(model: Model, reference: Model, npz: string): Promise<number> {
  const z = readNpz(npz);
  const run = async (m: Model) => {
    const s = await ortSession(encodeModel(m), 'agreement');
    const preds: number[] = [];
    const R = z.get(s.inputNames[0])!.shape[0];
    for (let r = 0; r < R; r++) {
      const feeds: Record<string, Tensor> = {};
      for (const nm of s.inputNames) {
        const a = z.get(nm);
        if (!a) throw new Error(`${npz}: no array '${nm}'`);
        const shape = [1, ...a.shape.slice(1)];
        feeds[nm] = a.dtype === 'int64' || a.dtype === 'int32' ? Tensor.i64(nm, shape, Array.from(a.rows([r]))) : Tensor.f32(nm, shape, Array.from(a.rows([r])));
      }
      const out = Object.values(await runOrt(s, feeds))[0].float32();
      let best = 0;
      for (let i = 1; i < out.length; i++) if (out[i] > out[best]) best = i;
      preds.push(best);
    }
    await s.release?.();
    return preds;
  };
  const [a, b] = [await run(model), await run(reference)];
  return a.filter((p, i) => p === b[i]).length / a.length;
}

async function bench(name: string, origPath: string, linPath: string, q: Quality): Promise<void> {
  const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');
  const loadBefore = load();
  const original = loadModel(origPath);
  const linear = loadModel(linPath);
  console.log(`\n## ${name}: ${origPath} → ${linPath}`);
  const { model: folded, report } = await fold(linear, { latencyRuns: 0, original });
  console.log(`fold: ${report.taken.filter((e) => e.pass !== 'remove-identity' || !/^Identity/.test(e.what)).map((e) => `${e.pass}: ${e.what}`).join('\n      ') || 'nothing taken'}`);
  console.log(`verification: max relative error ${report.verification.maxRelError.toExponential(2)} vs the linearized model`);
  const tf = audit(cloneModel(linear)).transformer;
  if (tf) console.log(`FFNs of the linearized model: ${tf.ffn.map((f) => `${f.linearChannels}/${f.hidden} linear (${f.fold})`).join(', ')}; per-token NAPL ${tf.perToken.napl.toFixed(3)}`);
  // the original folded as it is (GELUs kept): what folding gains without linearization (shape chains only)
  const { model: origFolded } = await fold(original, { latencyRuns: 0 });
  const models = [original, origFolded, linear, folded];
  const names = ['original', 'original, folded (no linearization)', 'linearized', 'linearized + folded'];
  const feeds = firstExample(randomFeeds((await freeBatch(cloneModel(original))).graph, { seed: 7, batch: 1 }));
  const lat = await alternatingLatency(models.map((m) => encodeModel(m)), feeds, RUNS, 20);
  const quality: number[] = [];
  for (const m of models) quality.push(await q.value(m));
  const rows = models.map((m, i) => {
    const d = layerDepth(m.graph);
    const a = analyzeMetrics(m, { inputShapes: Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, [...t.dims]])) });
    return [names[i], lat[i].toFixed(3), (lat[0] / lat[i]).toFixed(2) + '×', q.fmt(quality[i]), String(d.depth), a.macs === null ? '?' : a.macs.toLocaleString('en-US'), String(m.graph.nodes.length)];
  });
  const head = ['model', 'latency ms (b=1, median)', 'speed-up', q.label, 'depth', 'MACs', 'nodes'];
  console.log(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}`);
  console.log(`linearized + folded vs original: ${(lat[0] / lat[3]).toFixed(2)}× faster, ${q.compare(quality[0], quality[3])}; vs the original folded without linearization: ${(lat[1] / lat[3]).toFixed(2)}× (${RUNS} alternating runs)`);
  const speedUp = lat[0] / lat[3];
  const { summary: s } = audit(cloneModel(linear));
  summary.push([
    name, q.label, `${q.fmt(quality[0])} → ${q.fmt(quality[2])} → ${q.fmt(quality[3])}`, `${s.linearChannels}/${s.channels}`,
    `${rows[0][4]} → ${rows[3][4]}`, `${mega(rows[0][5])} → ${mega(rows[3][5])}`,
    `${rows[0][1]} → ${rows[2][1]} → ${rows[3][1]}`, `${speedUp.toFixed(2)}×`,
    q.target ? `${q.target.text}: ${q.target.met(quality[0], quality[3], speedUp) ? 'met' : 'MISSED'}` : '—', `${loadBefore} / ${load()}`,
  ]);
}

/** Windows of the char LM's text, encoded as fixtures/make_transformers.py does: the sorted files
 *  /usr/lib/python3.11/*.py with index i % 10 != 9 (the fixture's training split) or == 9 (held out),
 *  0 = other control characters, 1 = newline, 2..96 = ASCII 32..126 (non-ASCII: '?'), a tab = 4 spaces; `n` windows of 64 at seeded random offsets. */
function charLmRows(file: string, n: number, split: 'train' | 'held-out', seed = 0): string {
  if (existsSync(file)) return file;
  const dir = '/usr/lib/python3.11';
  const files = readdirSync(dir).filter((f) => f.endsWith('.py')).sort();
  const codes: number[] = [];
  files.forEach((f, i) => {
    if ((i % 10 === 9) !== (split === 'held-out')) return;
    const text = readFileSync(join(dir, f), 'utf8').replaceAll('\t', '    ') + '\n';
    for (const ch of text) {
      const c = ch.codePointAt(0)!;
      // Python's encode('ascii', 'replace'): any other code point is '?'
      codes.push(c === 10 ? 1 : c >= 32 && c <= 126 ? c - 30 : c > 127 ? 33 : 0);
    }
  });
  const rand = seededRandom(seed), T = 64, out = new BigInt64Array(n * T);
  for (let r = 0; r < n; r++) {
    const s0 = Math.floor(rand() * (codes.length - T));
    for (let t = 0; t < T; t++) out[r * T + t] = BigInt(codes[s0 + t]);
  }
  writeNpy(file, out, [n, T]);
  console.log(`${file}: ${n} windows of ${T} characters from the ${split} files (${codes.length} characters)`);
  return file;
}

/** The recipes of the issue's must-show: each fixture linearized once (cached under bench/out/), blend form on
 *  every GELU, distillation from the original, then fine-tuning with --snap (every GELU ends linear or exact). */
const OUT = 'bench/out';
const RECIPES: Record<'vit' | 'vitfixed' | 'lm' | 'bert', { model: string; data: () => string; settings: Partial<LinearizeOptions> }> = {
  // the MNIST split of the bundled digits (8 004 train / 1 996 validation), labels + distillation, shifts as the fixture was trained
  vit: { model: 'fixtures/vit_mnist.onnx', data: () => 'mnist', settings: { loss: 'both', lambda: 0.05, slopeLr: 0.05, lr: 3e-4, batchSize: 32, epochs: 1, finetuneEpochs: 10, finetuneLr: 1e-3, snap: true, augment: parseAugmentation('shift:2'), backend: 'onnxruntime' } },
  // the same weights exported with torch's defaults (batch fixed at 1 in the input and 21 Reshapes/Expand): no re-export
  vitfixed: { model: 'fixtures/vit_mnist_fixed.onnx', data: () => 'mnist', settings: { loss: 'both', lambda: 0.05, slopeLr: 0.05, lr: 3e-4, batchSize: 32, epochs: 1, finetuneEpochs: 10, finetuneLr: 1e-3, snap: true, augment: parseAugmentation('shift:2'), backend: 'onnxruntime' } },
  // windows of the fixture's own training text (per-token KL: TensorFlow.js backend)
  lm: { model: 'fixtures/char_lm.onnx', data: () => charLmRows(`${OUT}/char_lm_train.npy`, 2048, 'train'), settings: { loss: 'distill', lambda: 0.05, slopeLr: 0.05, lr: 3e-4, batchSize: 16, epochs: 1, finetuneEpochs: 2, finetuneLr: 1e-3, snap: true, backend: 'wasm' } },
  // no training pairs ship with the fixture: distillation (no labels) on the rows of bert_val.npz (several inputs: TensorFlow.js)
  bert: { model: 'fixtures/bert_tiny.onnx', data: () => 'fixtures/data/bert_val.npz', settings: { loss: 'distill', lambda: 0.05, slopeLr: 0.05, lr: 3e-4, batchSize: 16, epochs: 3, finetuneEpochs: 3, finetuneLr: 1e-3, snap: true, backend: 'wasm' } },
};

async function linearizedFixture(which: keyof typeof RECIPES): Promise<string> {
  const { model, data, settings } = RECIPES[which];
  const file = `${OUT}/${basename(model, '.onnx')}.recipe.onnx`;
  if (existsSync(file)) return file;
  mkdirSync(OUT, { recursive: true });
  const source = loadModel(model);
  console.log(`linearizing ${model} with the ${which} recipe → ${file}: ${JSON.stringify(settings)}`);
  const t0 = performance.now();
  const r = await linearize(source, { data: await openDataset(data(), source), logFile: `${file}.log.jsonl`, ...settings });
  saveModel(r.model, file);
  console.log(`linearized in ${((performance.now() - t0) / 60_000).toFixed(1)} min: ${JSON.stringify(r.after)}`);
  return file;
}

if (args.includes('--recipe')) {
  const only = (arg('--only') ?? 'vit,vitfixed,lm,bert').split(',') as (keyof typeof RECIPES)[];
  for (const w of only) if (!(w in RECIPES)) throw new Error(`--only ${w}: choose among ${Object.keys(RECIPES).join(', ')}`);
  for (const w of only) {
    const lin = await linearizedFixture(w);
    if (args.includes('--train-only')) continue;
    args.push(`--${w}`, RECIPES[w].model, `--${w}-linear`, lin);
    // perplexity over 1 024 windows of the held-out files (the fixture's 12.40 is over 1 024 such windows;
    // fixtures/data/char_lm_val.npy holds 64 of them: --lm-data fixtures/data/char_lm_val.npy)
    if (w === 'lm' && !arg('--lm-data')) args.push('--lm-data', charLmRows(`${OUT}/char_lm_heldout.npy`, 1024, 'held-out', 1));
    if (w === 'bert') args.push('--bert-data', 'fixtures/data/bert_val.npz');
  }
  if (args.includes('--train-only')) process.exit(0);
}

const vit = arg('--vit'), vitFixed = arg('--vitfixed'), lm = arg('--lm'), bert = arg('--bert');
if (!vit && !vitFixed && !lm && !bert) {
  console.log('nothing to do: give --recipe [--only vit,vitfixed,lm,bert], or --vit/--vit-linear (--vitfixed/--vitfixed-linear), --lm/--lm-linear/--lm-data or --bert/--bert-linear/--bert-data');
  process.exit(1);
}
for (const [name, file, linear] of [['ViT (MNIST)', vit, arg('--vit-linear')], ['ViT, batch fixed at 1', vitFixed, arg('--vitfixed-linear')]]) {
  if (!file) continue;
  const data = mnist();
  await bench(name!, file, linear!, {
    label: 'val accuracy', value: (m) => ortAccuracy(m, data), fmt: (v) => `${(100 * v).toFixed(2)} %`,
    compare: (o, f) => `${(100 * (o - f)).toFixed(2)} points ${o >= f ? 'lower' : 'higher'} accuracy`,
    target: { text: '≥ 1.3× at ≤ 1 point', met: (o, f, x) => x >= 1.3 && 100 * (o - f) <= 1 },
  });
}
if (lm) {
  const rows = openNpy(arg('--lm-data')!);
  await bench('char LM', lm, arg('--lm-linear')!, {
    label: 'held-out perplexity', value: (m) => perplexity(m, rows), fmt: (v) => v.toFixed(3),
    compare: (o, f) => `perplexity ${(100 * (f / o - 1)).toFixed(2)} % ${f >= o ? 'higher' : 'lower'}`,
    target: { text: '≥ 1.3× at ≤ 3 % perplexity', met: (o, f, x) => x >= 1.3 && f / o - 1 <= 0.03 },
  });
}
if (bert) {
  const npz = arg('--bert-data')!;
  if (!existsSync(npz)) throw new Error(`${npz}: not found`);
  const original = loadModel(bert);
  await bench('BERT-style', bert, arg('--bert-linear')!, {
    label: 'agreement with the original', value: (m) => agreement(m, original, npz), fmt: (v) => `${(100 * v).toFixed(2)} %`,
    compare: (o, f) => `agreement ${(100 * f).toFixed(2)} %`,
  });
}

const head = ['model', 'quality', 'original → linearized → folded', 'linear channels', 'depth', 'MACs per example', 'latency ms (b=1): original → linearized → folded', 'speed-up', 'target (issue 13)', 'load avg before / after'];
console.log(`\n| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n${summary.map((r) => `| ${r.join(' | ')} |`).join('\n')}`);
