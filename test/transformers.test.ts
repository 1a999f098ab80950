// The trained transformer fixtures (fixtures/make_transformers.py): the linearizable form computes the original
// function at step 0 on real data (onnxruntime), multi-input .npz data and its errors, per-token distillation
// and perplexity on the language model, a short distilled linearize of the three-input BERT-style model from the
// CLI, and the ViT exported with torch's fixed batch of 1 linearizing without re-export.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, encodeModel } from '../src/import/onnx-io.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Tensor } from '../src/import/tensor.js';
import { compareTensors } from '../src/import/tfjs/check.js';
import { makeLinearizable } from '../src/train/linearizable.js';
import { linearize } from '../src/train/linearize.js';
import { fold } from '../src/export/pipeline.js';
import { arrays, mnist, type Dataset } from '../src/train/data.js';
import { namedArrays, batchTensors } from '../src/train/feeds.js';
import { nextTokenNll } from '../src/train/sequence.js';
import { readNpz } from '../src/train/npy.js';
import { useBackend } from '../src/import/tfjs/backends.js';
import { LinfoldError } from '../src/errors.js';
import { writeNpy, writeNpz } from './support/npy.js';
import { linfold } from './support/cli.js';

const FIX = 'fixtures';
const tmp = mkdtempSync(join(tmpdir(), 'linfold-tfm-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const BERT = join(FIX, 'bert_tiny.onnx'), BERT_DATA = join(FIX, 'data', 'bert_val.npz');
const LM = join(FIX, 'char_lm.onnx'), LM_DATA = join(FIX, 'data', 'char_lm_val.npy');

/** The first `n` validation images of the bundled MNIST digits as one batch. */
function mnistBatch(n: number): Record<string, Tensor> {
  const ds = mnist();
  const b = ds.validation.batches(n).next().value!;
  return batchTensors(b, ds, 'input');
}

/** Outputs of the original model and of its linearizable form (slopes at their start) under onnxruntime. */
async function stepZero(file: string, feeds: Record<string, Tensor>): Promise<{ maxRelError: number; slopes: number }> {
  const m = loadModel(join(FIX, file));
  const { model, slopes } = makeLinearizable(m);
  const a = await runOrt(await ortSession(m), feeds);
  const b = await runOrt(await ortSession(encodeModel(model)), feeds);
  const errs = Object.keys(a).map((k) => compareTensors(b[k], a[k]).maxRelError);
  return { maxRelError: Math.max(...errs), slopes: slopes.length };
}

test('step 0: the blend form on every GELU leaves each trained transformer unchanged on real data (onnxruntime)', async (t) => {
  const lm = arrays(LM_DATA);
  const lmBatch = lm.train.batches(16).next().value!;
  const bert = namedArrays(BERT_DATA, loadModel(BERT));
  const bertBatch = bert.validation.batches(32).next().value!;
  const cases: [string, Record<string, Tensor>, number][] = [
    ['vit_mnist.onnx', mnistBatch(32), 4],
    ['vit_mnist_tanh.onnx', mnistBatch(32), 4],
    ['vit_mnist_fixed.onnx', mnistBatch(1), 4],
    ['char_lm.onnx', batchTensors(lmBatch, lm, 'tokens'), 4],
    ['bert_tiny.onnx', batchTensors(bertBatch, bert, 'input_ids'), 3], // 2 GELU + the pooler's Tanh
  ];
  for (const [file, feeds, layers] of cases) {
    const r = await stepZero(file, feeds);
    t.diagnostic(`${file}: ${r.slopes} activation layers, max relative change ${r.maxRelError.toExponential(2)}`);
    assert.equal(r.slopes, layers, `${file}: activation layers`);
    assert.ok(r.maxRelError < 1e-5, `${file}: step-0 change ${r.maxRelError}`);
  }
});

test('the language model fixture: next-token perplexity of data/char_lm_val.npy under onnxruntime is the one PyTorch recorded', async () => {
  const info = JSON.parse(readFileSync(join(FIX, 'char_lm.json'), 'utf8'));
  const ds = arrays(LM_DATA, { valFraction: 0.5 });
  const s = await ortSession(loadModel(LM));
  let sum = 0, count = 0;
  for (const split of [ds.train, ds.validation])
    for (const b of split.batches(32)) {
      const out = Object.values(await runOrt(s, batchTensors(b, ds, 'tokens')))[0];
      assert.deepEqual(out.dims, [b.size, 64, info.vocab]);
      const r = nextTokenNll(out.float32(), b.x, b.size, 64, info.vocab);
      sum += r.sum;
      count += r.count;
    }
  await s.release();
  assert.equal(count, 64 * 63);
  assert.ok(Math.abs(Math.exp(sum / count) - info.val_perplexity_file) < 2e-3 * info.val_perplexity_file, `${Math.exp(sum / count)} vs ${info.val_perplexity_file}`);
});

test('multi-input .npz: one array per graph input, batches carry every input by name, labels split with them', () => {
  const m = loadModel(BERT);
  const ds = namedArrays(BERT_DATA, m);
  const z = readNpz(BERT_DATA);
  assert.deepEqual(ds.inputs!.map((i) => i.name), ['input_ids', 'attention_mask', 'token_type_ids']);
  assert.ok(ds.hasLabels && ds.numClasses === 2 && ds.dtype === 'int32');
  assert.equal(ds.train.size + ds.validation.size, z.get('labels')!.shape[0]);
  // validation = every 5th row; each input's row is the file's row
  const b = ds.validation.batches(7).next().value!;
  for (const name of ['input_ids', 'attention_mask', 'token_type_ids']) {
    const rows = z.get(name)!.rows([4, 9, 14, 19, 24, 29, 34]);
    assert.deepEqual(Array.from(b.feeds![name].x), Array.from(rows), name);
    assert.deepEqual(b.feeds![name].shape, [7, 64]);
  }
  assert.deepEqual(Array.from(b.y!), Array.from(z.get('labels')!.rows([4, 9, 14, 19, 24, 29, 34])));
  const feeds = batchTensors(b, ds, 'input_ids');
  assert.deepEqual(Object.keys(feeds), ['input_ids', 'attention_mask', 'token_type_ids']);
  assert.ok(Object.values(feeds).every((t) => t.dtype === 'int64'));
});

test('multi-input .npz with bad input: one-line errors naming the file and the array', () => {
  const m = loadModel(BERT);
  const z = readNpz(BERT_DATA);
  const rows = (name: string, n = 20) => BigInt64Array.from(z.get(name)!.rows(Array.from({ length: n }, (_, i) => i)), (v) => BigInt(v));
  const good = () => ({
    input_ids: { data: rows('input_ids'), shape: [20, 64] }, attention_mask: { data: rows('attention_mask'), shape: [20, 64] },
    token_type_ids: { data: rows('token_type_ids'), shape: [20, 64] }, labels: { data: rows('labels'), shape: [20] },
  });
  const expectError = (label: string, arraysIn: Parameters<typeof writeNpz>[1], pattern: RegExp) => {
    const file = join(tmp, `${label}.npz`);
    writeNpz(file, arraysIn);
    assert.throws(() => namedArrays(file, m), (e: unknown) => {
      assert.ok(e instanceof LinfoldError, `${label}: ${String(e)}`);
      assert.ok(!e.message.includes('\n'), `${label}: one line`);
      assert.ok(e.message.startsWith(file), `${label}: names the file: ${e.message}`);
      assert.match(e.message, pattern, label);
      return true;
    });
  };
  namedArrays((writeNpz(join(tmp, 'good.npz'), good()), join(tmp, 'good.npz')), m); // the valid file loads
  const { attention_mask: _, ...missing } = good();
  expectError('missing', missing, /no array named 'attention_mask'.*has input_ids, token_type_ids, labels/);
  expectError('dtype', { ...good(), token_type_ids: { data: Float32Array.from(rows('token_type_ids'), Number), shape: [20, 64] } }, /array 'token_type_ids' is float32, but input 'token_type_ids' .* is int64/);
  expectError('length', { ...good(), attention_mask: { data: rows('attention_mask', 19), shape: [19, 64] } }, /array 'attention_mask' has 19 rows, but 'input_ids' has 20/);
  expectError('labels', { ...good(), labels: { data: rows('labels', 18), shape: [18] } }, /array 'labels' has 18 rows, but 'input_ids' has 20/);
  expectError('shape', { ...good(), input_ids: { data: rows('input_ids', 40), shape: [20, 128] } }, /array 'input_ids' has shape \[20, 128\], but input 'input_ids' .* is \[batch, 64\]/);

  // from the CLI: exit code 2 (LinfoldError), the message on one line, nothing written; a .npy is refused for a 3-input model
  const out = join(tmp, 'never.onnx');
  const r = linfold(['linearize', BERT, '--data', join(tmp, 'missing.npz'), '--loss', 'distill', '--steps', '1', '-o', out]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), /^linfold: .*missing\.npz: no array named 'attention_mask'[^\n]*$/);
  assert.ok(!existsSync(out));
  const npy = join(tmp, 'ids.npy');
  writeNpy(npy, rows('input_ids'), [20, 64]);
  const r2 = linfold(['fold', BERT, '--data', npy, '-o', out]);
  assert.equal(r2.code, 2, r2.stderr);
  assert.match(r2.stderr, /ids\.npy: .*bert_tiny\.onnx has 3 inputs \(input_ids, attention_mask, token_type_ids\); give a \.npz with one array per input name/);
  assert.ok(!existsSync(out));
});

test('BERT-style three-input model: linearize --loss distill from the CLI prints accuracy and agreement, the written model runs', { timeout: 120_000 }, async () => {
  const out = join(tmp, 'bert.linear.onnx');
  const r = linfold(['linearize', BERT, '--data', BERT_DATA, '--loss', 'distill', '--epochs', '1', '--steps', '3', '--batch-size', '32', '--lambda', '1e-2', '--slope-lr', '0.05', '--backend', 'wasm', '-o', out], { env: { LINFOLD_THREADS: '1' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /epoch 1: .*val acc [\d.]+% teacher agreement [\d.]+%/);
  const agree = /validation agreement with the original: 100\.00% → ([\d.]+)%/.exec(r.stdout);
  assert.ok(agree, r.stdout);
  assert.ok(Number(agree[1]) > 90, `agreement after 3 distilled steps: ${agree[1]}%`);
  // the written model takes the three inputs and runs under onnxruntime
  const m = loadModel(out);
  assert.deepEqual(m.graph.feeds.map((f) => f.name), ['input_ids', 'attention_mask', 'token_type_ids']);
  const ds = namedArrays(BERT_DATA, m);
  const o = await runOrt(await ortSession(m), batchTensors(ds.validation.batches(4).next().value!, ds, 'input_ids'));
  assert.deepEqual(Object.values(o)[0].dims, [4, 2]);
});

test('language model: per-token distillation, teacher agreement per token and next-token perplexity', { timeout: 120_000 }, async () => {
  await useBackend('wasm');
  const data = arrays(LM_DATA);
  const r = await linearize(loadModel(LM), { data, loss: 'distill', epochs: 1, maxSteps: 2, batchSize: 8, lambda: 1e-2, slopeLr: 0.05, quiet: true });
  const info = JSON.parse(readFileSync(join(FIX, 'char_lm.json'), 'utf8'));
  // step 0: the student is the teacher, token for token; perplexity of the original on the validation rows
  assert.equal(r.before.teacherAgreement, 1);
  assert.ok(r.before.valPerplexity! > 1 && r.before.valPerplexity! < info.vocab);
  assert.ok(r.after.teacherAgreement! > 0.9 && r.after.teacherAgreement! <= 1);
  assert.ok(Math.abs(r.after.valPerplexity! / r.before.valPerplexity! - 1) < 0.1, `${r.before.valPerplexity} → ${r.after.valPerplexity}`);
  assert.equal(r.after.valAccuracy, null);
  // per-token logits need --loss distill
  await assert.rejects(linearize(loadModel(LM), { data, loss: 'ce', quiet: true }), /has logits per token \[batch, T, 97\]; train it with option loss 'distill'/);
});

test('the ViT exported with torch defaults (batch fixed at 1) linearizes without re-export', { timeout: 120_000 }, async () => {
  await useBackend('wasm');
  const m = loadModel(join(FIX, 'vit_mnist_fixed.onnx'));
  assert.deepEqual(m.graph.feeds[0].shape, [1, 1, 28, 28]);
  const data: Dataset = mnist({ limit: 64 });
  const r = await linearize(m, { data, loss: 'distill', epochs: 1, maxSteps: 2, batchSize: 16, lambda: 1e-2, slopeLr: 0.05, quiet: true });
  assert.equal(r.before.teacherAgreement, 1);
  assert.ok(r.after.teacherAgreement! > 0.9);
  assert.ok(r.before.valAccuracy! > 0.8);
  // the written model has a symbolic batch and runs a batch of 5 under onnxruntime
  assert.equal(typeof r.model.graph.feeds[0].shape![0], 'string');
  const o = await runOrt(await ortSession(encodeModel(r.model)), mnistBatch(5));
  assert.deepEqual(Object.values(o)[0].dims, [5, 10]);
});

test('the fixed-batch ViT trains on the native backend and folds without re-export: every GELU linear → each FFN one 64×64 MatMul, equal to the unfolded model at batch 5 (onnxruntime)', { timeout: 180_000 }, async () => {
  const m = loadModel(join(FIX, 'vit_mnist_fixed.onnx'));
  const r = await linearize(m, { data: mnist({ limit: 64 }), loss: 'distill', epochs: 1, maxSteps: 2, batchSize: 16, lambda: 1e-2, slopeLr: 0.05, backend: 'onnxruntime', quiet: true });
  assert.equal(r.backend, 'onnxruntime');
  assert.equal(r.slopes.length, 4);
  // as a long enough run leaves it: every GELU channel at slope 1
  const linear = r.model;
  for (const s of r.slopes) {
    const t = linear.graph.initializers.get(s.name)!;
    linear.graph.initializers.set(s.name, Tensor.f32(s.name, t.dims, new Array(t.size).fill(1)));
  }
  const { model: folded, report } = await fold(linear, { objective: 'macs', latencyRuns: 0 });
  const merges = report.taken.filter((e) => e.pass === 'merge-matmul');
  assert.equal(merges.length, 4, report.taken.map((e) => `${e.pass}: ${e.what}`).join('; '));
  for (const e of merges) assert.match(e.what, /→ MatMul 64×64 \(was 64×256, 256×64\)/);
  assert.equal(folded.graph.nodes.filter((n) => n.opType === 'Erf').length, 0);
  assert.equal(typeof folded.graph.feeds[0].shape![0], 'string', 'the folded model keeps the symbolic batch');
  const feeds = mnistBatch(5);
  const a = Object.values(await runOrt(await ortSession(encodeModel(linear)), feeds))[0];
  const b = Object.values(await runOrt(await ortSession(encodeModel(folded)), feeds))[0];
  assert.deepEqual(b.dims, [5, 10]);
  assert.ok(compareTensors(b, a).maxRelError < 1e-4, `max relative error ${compareTensors(b, a).maxRelError}`);
});
