// The fold pipeline: objectives, verification with undo, the report, writing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fold, writeFolded } from '../src/export/pipeline.js';
import { renderFoldMarkdown } from '../src/export/report.js';
import { saveModel, loadModel } from '../src/import/onnx-io.js';
import { ortSession } from '../src/import/ort.js';
import { LinfoldError } from '../src/errors.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { count } from './support/graph.js';
import { tempDir } from './support/tmp.js';

const tmp = tempDir('fold');

/** conv3×3 → PRelu(1) → conv3×3 → PRelu(1) → conv3×3, no padding, 4 channels, 20×20 input. */
function plainChain(slope = 1) {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 4, 20, 20]);
  let y = b.conv(x, 4, 4, 3);
  y = b.prelu(y, [slope, slope, slope, slope]);
  y = b.conv(y, 4, 4, 3);
  y = b.prelu(y, [slope, slope, slope, slope]);
  return b.output(b.conv(y, 4, 4, 3)).model();
}

test('depth objective: a linear chain of three 3×3 convs becomes one 7×7 conv', async () => {
  const input = plainChain();
  const { model, report } = await fold(input, { objective: 'depth', latencyRuns: 3 });
  assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Conv']);
  assert.equal(input.graph.nodes.length, 5, 'the input model is not modified');
  assert.equal(report.before.depth, 3);
  assert.equal(report.after.depth, 1);
  assert.equal(report.before.nodes, 5);
  assert.equal(report.after.nodes, 1);
  assert.ok(report.after.macs! > report.before.macs!, 'kernels grew: MACs went up while depth went down');
  assert.equal(report.taken.filter((e) => e.pass === 'merge-conv').length, 2);
  assert.ok(report.verification.maxRelError < 1e-4);
  assert.ok(report.before.latencyMs! > 0 && report.after.latencyMs! > 0);
  const md = renderFoldMarkdown(report);
  assert.match(md, /conv\/matmul depth \(longest path\) \| 3 \| 1 \|/);
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(report)));
});

test('macs objective: the same chain keeps its convs (merging would raise MACs) and says so', async () => {
  const { model, report } = await fold(plainChain(), { objective: 'macs', latencyRuns: 0 });
  assert.equal(count(model, 'Conv'), 3);
  assert.equal(count(model, 'PRelu'), 0);
  const objective = report.rejected.filter((e) => e.pass === 'merge-conv' && e.reason?.startsWith('objective'));
  assert.ok(objective.length >= 1, renderFoldMarkdown(report));
  assert.equal(report.after.latencyMs, null);
});

test('macs objective plans whole chains: an inverted-residual block (expand → dw → project, + x) folds to one conv', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 8, 10, 10]);
  let h = b.prelu(b.conv(x, 8, 32, 1), new Array(32).fill(1));
  h = b.prelu(b.conv(h, 32, 32, 3, { pad: 1, group: 32 }), new Array(32).fill(1));
  const m = b.output(b.op('Add', [x, b.conv(h, 32, 8, 1)])).model();
  // per pixel: 8·32 + 32·9 + 32·8 = 800 MACs; expand∘dw alone (dense 3×3 8→32: 2304) raises them,
  // expand∘dw∘project (dense 3×3 8→8: 576) lowers them
  const { model, report } = await fold(m, { objective: 'macs', latencyRuns: 0 });
  assert.equal(count(model, 'Conv'), 1);
  assert.equal(count(model, 'Add'), 1, 'the border bias map; the residual is absorbed');
  assert.equal(report.before.macs, 800 * 100);
  assert.equal(report.after.macs, 576 * 100);
  // judged as a pair, expand∘dw would lose (2304 > 8·32 + 32·9 per pixel); the chain as a whole wins
  const merges = report.taken.filter((e) => e.pass === 'merge-conv');
  assert.equal(merges.length, 2);
  assert.ok(Math.abs(merges[0].objective!.before[0] - 800 * 100) < 1e-3, JSON.stringify(merges[0].objective));
  assert.ok(Math.abs(merges[0].objective!.after[0] - 576 * 100) < 1e-3, JSON.stringify(merges[0].objective));
});

test('a fold that breaks the tolerance is undone and named in the report', async () => {
  // slopes 1.05 treated as 1 by a loose eps: removing those PRelus changes the outputs by ~1e-2
  const { model, report } = await fold(plainChain(0.95), { eps: 0.1, latencyRuns: 0 });
  assert.equal(count(model, 'PRelu'), 2);
  const undone = report.rejected.filter((e) => e.reason?.startsWith('verification'));
  assert.equal(undone.length, 2);
  assert.ok(undone.every((e) => e.pass === 'remove-identity' && e.relError! > 1e-4));
  assert.ok(report.verification.maxRelError < 1e-4);
  assert.match(renderFoldMarkdown(report), /verification: relative error/);
});

test("verify: 'final' finds the same bad fold by refolding with per-rewrite verification", async () => {
  const { model, report } = await fold(plainChain(0.95), { eps: 0.1, latencyRuns: 0, verify: 'final' });
  assert.equal(count(model, 'PRelu'), 2);
  assert.equal(report.rejected.filter((e) => e.reason?.startsWith('verification')).length, 2);
});

test('BN, Gemm chain and residual in one pipeline run; given data is verified too', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 6]);
  const bn = b.op('BatchNormalization', [x, b.normal([6], 0.3, 1), b.normal([6], 0.3), b.normal([6], 0.3), b.normal([6], 0.1, 1)]);
  const h = b.gemm(bn, 6, 16);
  const y = b.gemm(b.prelu(h, new Array(16).fill(1), [16]), 16, 6);
  const m = b.output(b.op('Add', [bn, y])).model();
  const data = { x: (await import('../src/import/tensor.js')).Tensor.f32('x', [3, 6], Array.from({ length: 18 }, (_, i) => i - 9)) };
  const { model, report } = await fold(m, { objective: 'depth', data, latencyRuns: 0 });
  // round 1: BN → next Gemm is blocked (BN's output also feeds the residual); Gemm∘Gemm → one 6×6 Gemm;
  // bn + Gemm(bn) → one Gemm with the identity added. Round 2: BN now feeds only that Gemm → folded in.
  assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['Gemm']);
  assert.deepEqual(report.taken.map((e) => e.pass), ['remove-identity', 'merge-matmul', 'absorb-residual', 'fold-batchnorm']);
  assert.match(report.verification.inputs, /1 given data set/);
  assert.equal(report.rejected.length, 0, 'the early BN refusal is gone: BN was folded later');
});

test('passes option restricts the passes; unknown names are an error', async () => {
  const { model } = await fold(plainChain(), { passes: ['remove-identity', 'dead-code'], latencyRuns: 0 });
  assert.equal(count(model, 'Conv'), 3);
  await assert.rejects(fold(plainChain(), { passes: ['nope'] }), LinfoldError);
});

test('latency objective (the default): merges measured faster are taken, whole chains judged', async () => {
  // 1×1 convs 16 → 64 → 64 → 16 with identity PRelus: one 1×1 16 → 16 conv does the work of three at 1/24 of the MACs
  const b = new GraphBuilder({ opset: 13 });
  let y = b.input('x', ['batch', 16, 24, 24]);
  for (const [cin, cout] of [[16, 64], [64, 64], [64, 16]]) y = b.prelu(b.conv(y, cin, cout, 1), new Array(cout).fill(1));
  const { model, report } = await fold(b.output(y).model(), { latencyRuns: 5 });
  assert.equal(report.objective, 'latency');
  const merges = report.taken.filter((t) => t.pass === 'merge-conv');
  assert.equal(merges.length, 2, renderFoldMarkdown(report));
  for (const e of merges) assert.ok(e.objective!.after[0] < e.objective!.before[0], JSON.stringify(e.objective));
  assert.equal(count(model, 'Conv'), 1);
  assert.ok(report.verification.maxRelError < 1e-4);
  // the plain 3×3 chain: whatever is taken was planned cheaper than what it replaced
  const plain = await fold(plainChain(), { latencyRuns: 0 });
  // the conv pairs are judged on their measured cost: taken, or refused by the objective; none judged would make
  // the checks below vacuous
  const judged = [...plain.report.taken, ...plain.report.rejected].filter((e) => e.pass === 'merge-conv' && e.objective);
  assert.ok(judged.length >= 1, `no conv merge of the plain chain was judged on latency:\n${renderFoldMarkdown(plain.report)}`);
  assert.equal(count(plain.model, 'PRelu'), 0, 'the identity PRelus went, so the convs are adjacent');
  // (within the 3% that measured costs count as a tie, taken for depth)
  for (const e of plain.report.taken.filter((t) => t.pass === 'merge-conv')) assert.ok(e.objective!.after[0] <= e.objective!.before[0] * 1.03);
  // a merge left out stays because it was not planned cheaper
  for (const e of plain.report.rejected.filter((t) => t.pass === 'merge-conv')) assert.match(e.reason ?? '', /^objective/);
});

test('writeFolded refuses to overwrite the input and writes a model onnxruntime-node loads', async () => {
  const input = join(tmp, 'in.onnx');
  saveModel(plainChain(), input);
  const before = readFileSync(input);
  const { model } = await fold(loadModel(input), { objective: 'depth', latencyRuns: 0 });
  await assert.rejects(writeFolded(model, input, input), /refusing to overwrite the input/);
  await assert.rejects(writeFolded(model, join(tmp, '.', 'in.onnx'), input), /refusing/);
  assert.deepEqual(readFileSync(input), before);
  const out = join(tmp, 'out.onnx');
  await writeFolded(model, out, input);
  assert.ok(existsSync(out) && statSync(out).size > 0);
  await ortSession(readFileSync(out));
  assert.equal(count(loadModel(out), 'Conv'), 1);
});
