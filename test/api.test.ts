// The library as a user imports it: everything through src/index.ts (the package's entry point), nothing from
// its folders. A tiny model audited to values worked out by hand; then the bundled MNIST fixture linearized for
// a few steps, folded, written, and checked in onnxruntime against the linearized model; heal, sweep and
// collect on the same few steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Graph, Tensor, LinfoldError, loadModel, saveModel, audit, linearize, fold, writeFolded, renderFoldMarkdown, ortSession, runOrt,
  randomFeeds, mnist, heal, sweep, collect, type Model,
} from '../src/index.js';
import { fixture } from './support/fixtures.js';
import { tempDir } from './support/tmp.js';
import { count } from './support/graph.js';

const tmp = tempDir('api');

/** x [batch, 3] → MatMul 3→4 → PRelu(slopes) → MatMul 4→2, as a user would build it with the IR. */
function mlp(slopes: number[]): Model {
  const g = new Graph();
  g.name = 'mlp';
  g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 3] }];
  g.outputs = [{ name: 'y', dtype: 'float32', shape: ['batch', 2] }];
  for (const t of [Tensor.f32('w1', [3, 4], [1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12].map((v) => v / 10)), Tensor.f32('a', [4], slopes), Tensor.f32('w2', [4, 2], [1, 2, 3, 4, 5, 6, 7, 8].map((v) => v / 10))])
    g.initializers.set(t.name, t);
  g.nodes = [
    { name: 'fc1', opType: 'MatMul', domain: '', inputs: ['x', 'w1'], outputs: ['h'], attrs: {} },
    { name: 'act', opType: 'PRelu', domain: '', inputs: ['h', 'a'], outputs: ['r'], attrs: {} },
    { name: 'fc2', opType: 'MatMul', domain: '', inputs: ['r', 'w2'], outputs: ['y'], attrs: {} },
  ];
  return { irVersion: 8, opsets: [{ domain: '', version: 13 }], producerName: 'api-test', producerVersion: '', domain: '', modelVersion: 0, docString: '', graph: g, passthrough: {} };
}

/** Max |b − a| / max |a| over all outputs of two onnxruntime runs (computed here, not by the library). */
function relDiff(a: Record<string, Tensor>, b: Record<string, Tensor>): number {
  let err = 0, scale = 0;
  for (const [k, t] of Object.entries(a)) {
    const p = t.numbers(), q = b[k].numbers();
    assert.equal(q.length, p.length, `output ${k}: size`);
    p.forEach((v, i) => {
      err = Math.max(err, Math.abs(v - q[i]));
      scale = Math.max(scale, Math.abs(v));
    });
  }
  return err / scale;
}

test('audit of a tiny MLP written to disk: one PRelu layer of 4 channels, half of them linear', () => {
  const path = join(tmp, 'mlp.onnx');
  saveModel(mlp([1, 1, 0.25, 0]), path);
  const r = audit(loadModel(path));
  assert.equal(r.summary.activationLayers, 1);
  assert.equal(r.summary.channels, 4);
  assert.equal(r.summary.linearChannels, 2);
  // every output unit: 3 inputs × 4 hidden units = 12 paths; 6 cross a linear channel (count 0), 6 a nonlinear
  // one (count 1) → APL = 0.5; NAPL averages the hidden units: (0 + 0 + 1 + 1) / 4 = 0.5
  assert.equal(r.summary.apl, 0.5);
  assert.equal(r.summary.napl, 0.5);
  assert.equal(r.summary.params, 3 * 4 + 4 + 4 * 2);
  assert.equal(r.summary.macs, 3 * 4 + 4 * 2);
  assert.throws(() => loadModel(join(tmp, 'none.onnx')), (e: unknown) => e instanceof LinfoldError && /none\.onnx/.test(e.message));
});

test('fold of the tiny MLP with an identity PRelu: one MatMul, the same outputs in onnxruntime', async () => {
  const m = mlp([1, 1, 1, 1]);
  const { model, report } = await fold(m, { objective: 'depth', latencyRuns: 0 });
  assert.deepEqual(model.graph.nodes.map((n) => n.opType), ['MatMul']);
  // the merged weight is w1·w2 (3×2), checked by hand for one entry: row 0 of w1 · column 0 of w2
  const w = model.graph.initializers.get(model.graph.nodes[0].inputs[1])!.numbers();
  assert.ok(Math.abs(w[0] - (0.1 * 0.1 + -0.2 * 0.3 + 0.3 * 0.5 + -0.4 * 0.7)) < 1e-6, `w[0] = ${w[0]}`);
  assert.equal(report.after.depth, 1);
  const feeds = randomFeeds(m.graph, { batch: 5, seed: 1 });
  assert.ok(relDiff(await runOrt(await ortSession(m), feeds), await runOrt(await ortSession(model), feeds)) < 1e-5);
});

test('mnist_cnn: linearize a few steps → fold → write; onnxruntime runs the folded file like the linearized model', { timeout: 300_000 }, async () => {
  const original = loadModel(fixture('mnist_cnn.onnx'));
  const before = audit(original);
  assert.equal(before.summary.activationLayers, 5);
  assert.equal(before.summary.linearChannels, 0);
  const data = mnist({ limit: 256 });
  // one slope per layer, a fast slope rate: 3 steps move every slope away from ReLU's 0
  const lin = await linearize(original, { data, maxSteps: 3, batchSize: 32, lambda: 0.05, slopeLr: 0.667, granularity: 'layer', backend: 'wasm', quiet: true });
  assert.equal(lin.history.length, 1);
  assert.equal(lin.slopes.length, 5);
  const slopes = lin.slopes.map((s) => lin.model.graph.initializers.get(s.name)!.numbers());
  assert.ok(slopes.every((v) => v.length === 1 && v[0] !== 0), `slopes ${slopes}`);
  assert.equal(audit(lin.model).summary.activationLayers, 5);
  // uniform slopes: each PRelu is respelled as a LeakyRelu (exact), whatever their values
  const { model, report } = await fold(lin.model, { objective: 'depth', latencyRuns: 0 });
  assert.ok(report.taken.length > 0, renderFoldMarkdown(report));
  assert.deepEqual([count(lin.model, 'PRelu'), count(model, 'PRelu'), count(model, 'LeakyRelu')], [5, 0, 5]);
  const linPath = join(tmp, 'lin.onnx'), out = join(tmp, 'folded.onnx');
  saveModel(lin.model, linPath);
  await writeFolded(model, out, linPath);
  await assert.rejects(writeFolded(model, linPath, linPath), LinfoldError);
  // the written file against the linearized model, on random input of batch 4 (onnxruntime on both)
  const feeds = randomFeeds(lin.model.graph, { batch: 4, seed: 7 });
  const ref = await runOrt(await ortSession(lin.model), feeds);
  const got = await runOrt(await ortSession(readFileSync(out)), feeds);
  assert.deepEqual(got.logits.dims, [4, 10]);
  const rel = relDiff(ref, got);
  assert.ok(rel < 1e-4, `folded vs linearized: relative error ${rel}`);

  // heal: two distillation steps towards the linearized model, measured by onnxruntime
  const healed = await heal(loadModel(out), { teacher: lin.model, data, maxSteps: 2, batchSize: 32, backend: 'wasm', quiet: true });
  assert.ok(healed.before.agreement > 0.9 && healed.after.agreement > 0.9, JSON.stringify([healed.before, healed.after]));
  assert.equal(healed.teacher.agreement, 1);
});

test('sweep of two λ (one step each, no fold) and collect: one point file each, merged in λ order', { timeout: 300_000 }, async () => {
  const outDir = join(tmp, 'sweep');
  const model = loadModel(fixture('mnist_cnn.onnx'));
  const r = await sweep(model, { lambdas: [0.001, 0.05], data: mnist({ limit: 128 }), maxSteps: 1, batchSize: 32, fold: false, outDir, backend: 'wasm', quiet: true });
  assert.deepEqual(r.points.map((p) => p.lambda), [0.001, 0.05]);
  for (const p of r.points) assert.ok(p.napl > 0 && p.napl <= r.baseline!.napl + 1e-9, `NAPL ${p.napl}`);
  for (const i of [0, 1]) assert.ok(existsSync(join(outDir, 'points', `${i}.json`)));
  const c = collect(outDir);
  assert.equal(c.size, 2);
  assert.deepEqual(c.missing, []);
  assert.deepEqual(c.failed, []);
  assert.deepEqual(c.points.map((p) => [p.lambda, p.napl]), r.points.map((p) => [p.lambda, p.napl]));
  assert.throws(() => collect(join(tmp, 'nowhere')), LinfoldError);
});
