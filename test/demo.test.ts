// `linfold demo` end to end, as a new user runs it: the default recipe on the bundled MobileNetV2-style MNIST
// network. The folded model must be shallower and faster than the original in onnxruntime, at an accuracy the
// demo measured on the written file (and states); --epochs 0 checks the plumbing: nothing trained, nothing lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { linfold } from './support/cli.js';
import { ortAccuracy } from '../src/train/evaluate.js';
import { mnist } from '../src/train/data.js';
import { alternatingLatency, randomFeeds } from '../src/export/verify.js';
import { loadModel } from '../src/import/onnx-io.js';
import { DEMO_MODEL } from '../src/demo.js';
import { tempDir } from './support/tmp.js';

test('demo: the default recipe folds to a shallower, faster model than the original, at a measured accuracy', { timeout: 900_000 }, async () => {
  const out = tempDir('demo');
  const r = linfold(['demo', '--out', out, '--quiet'], { timeout: 900_000 });
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  for (const f of Object.values(s.files) as string[]) assert.ok(existsSync(f), f);
  assert.ok(s.accuracy.before > 0.985, 'the bundled model is the pretrained one');
  // the accuracy stated is onnxruntime's on the written file
  assert.equal(s.accuracy.after, await ortAccuracy(s.files.folded, mnist()));
  assert.ok(s.accuracy.after > s.accuracy.before - 0.03, `accuracy ${s.accuracy.before} → ${s.accuracy.after}`);
  // the measured plan may differ by a layer from run to run (27 → 15 seen): shallower by a quarter at least
  assert.ok(s.depth.after <= 0.75 * s.depth.before, `depth ${s.depth.before} → ${s.depth.after}`);
  assert.ok(s.macs.after < s.macs.before, `MACs ${s.macs.before} → ${s.macs.after}`);
  assert.ok(s.latencyMs.after < s.latencyMs.before, `latency ${s.latencyMs.before} → ${s.latencyMs.after}`);
  // and once more, independently of the demo's own timing: 1000 alternating onnxruntime runs of both files
  const [tOriginal, tFolded] = await alternatingLatency([loadModel(DEMO_MODEL), loadModel(s.files.folded)], randomFeeds(loadModel(DEMO_MODEL).graph, { batch: 1 }), 1000, 50);
  assert.ok(tFolded < tOriginal, `re-timed: original ${tOriginal} ms, folded ${tFolded} ms`);
  assert.match(s.verdict[1], /^against the original .*: shallower \(depth \d+ → \d+\), /);
  const lines = r.stdout.trim().split('\n');
  for (const key of ['accuracy', 'NAPL', 'depth', 'MACs', 'latency']) assert.ok(lines.some((l) => l.startsWith(key)), `summary line ${key}`);
  assert.match(readFileSync(s.files.report, 'utf8'), /<svg/);
});

test('demo --epochs 0: nothing trained, the folded model scores exactly the original', { timeout: 300_000 }, () => {
  const out = tempDir('demo0');
  const r = linfold(['demo', '--out', out, '--epochs', '0', '--quiet'], { timeout: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(s.accuracy.after, s.accuracy.before);
  assert.equal(s.napl.after, s.napl.before);
  assert.equal(s.depth.after, s.depth.before);
});
