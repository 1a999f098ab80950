// The command line as a user meets it: help, JSON output, one-line errors with exit code 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { linfold } from './support/cli.js';
import { tempDir } from './support/tmp.js';

const tmp = tempDir('cli');

test('audit --json prints the report; counts match the fixture manifest', () => {
  const r = linfold(['audit', 'fixtures/mobilenetv3_small.onnx', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  const manifest = JSON.parse(readFileSync('fixtures/manifest.json', 'utf8'));
  const expected = manifest.fixtures.mobilenetv3_small.expected_census;
  assert.equal(report.summary.activationLayers, expected.num_activation_layers);
  assert.equal(report.summary.channels, expected.total_activation_channels);
  assert.equal(report.schemaVersion, 1);
});

test('bad input: one line naming the file, exit code 2, no stack trace', () => {
  const bad = join(tmp, 'bad.onnx');
  writeFileSync(bad, 'not a model');
  for (const args of [['audit', bad], ['audit', join(tmp, 'missing.onnx')], ['audit', 'fixtures/resnet_small.onnx', '--input-shape', 'nope:1x2'], ['check', bad]]) {
    const r = linfold(args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^linfold: /);
    assert.ok(!/\bat .*\.ts:\d+/.test(r.stderr), 'no stack trace');
  }
  const v = linfold(['--verbose', 'audit', bad]);
  assert.equal(v.code, 2);
  assert.match(v.stderr, /at .*onnx-io/);
});

test('an option with a bad value is named', () => {
  const r = linfold(['audit', 'fixtures/resnet_small.onnx', '--eps', 'abc']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--eps/);
  const h = linfold(['--help']);
  for (const c of ['audit', 'check', 'linearize', 'fold', 'backends']) assert.match(h.stdout, new RegExp(`\\b${c}\\b`));
});

test('check: exit 0 when the tfjs import matches onnxruntime, 1 with an unsupported op (named)', async () => {
  const ok = linfold(['check', 'fixtures/resnet_small.onnx', '--json', '--backend', 'cpu']);
  assert.equal(ok.code, 0, ok.stderr);
  const r = JSON.parse(ok.stdout);
  assert.ok(r.ok && r.outputs[0].maxRelError < 1e-4);
  const { loadModel, saveModel } = await import('../src/import/onnx-io.js');
  const m = loadModel('fixtures/resnet_small.onnx');
  const last = m.graph.nodes[m.graph.nodes.length - 1];
  const out = last.outputs[0];
  last.outputs[0] = 'pre';
  m.graph.nodes.push({ name: 'odd', opType: 'Celu2', domain: 'com.example', inputs: ['pre'], outputs: [out], attrs: {} });
  m.opsets.push({ domain: 'com.example', version: 1 });
  const path = join(tmp, 'odd.onnx');
  saveModel(m, path);
  const bad = linfold(['check', path]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /unsupported: com\.example\.Celu2/);
  const b = JSON.parse(linfold(['backends', '--json']).stdout);
  assert.equal(b.chosen, 'wasm', 'wasm is the default where the native packages are not installed');
});

test('linearize records the original; fold compares against it (depth, latency, accuracy) and states a verdict', { timeout: 300_000 }, () => {
  const dir = tempDir('cli-fold');
  const lin = join(dir, 'lin.onnx'), folded = join(dir, 'folded.onnx'), report = join(dir, 'fold.json');
  let r = linfold(['linearize', 'fixtures/mnist_cnn.onnx', '--steps', '2', '--quiet', '-o', lin], { timeout: 240_000 });
  assert.equal(r.code, 0, r.stderr);
  r = linfold(['fold', lin, '-o', folded, '--eval-data', 'mnist', '--report', report, '--quiet'], { timeout: 240_000 });
  assert.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(readFileSync(report, 'utf8'));
  assert.equal(rep.objective, 'latency');
  assert.equal(rep.original.file, resolve('fixtures/mnist_cnn.onnx'));
  assert.equal(rep.original.depth, 6);
  assert.ok(rep.original.latencyMs > 0 && rep.after.latencyMs > 0);
  assert.ok(rep.accuracy.original > 0.98 && rep.accuracy.folded > 0.9, JSON.stringify(rep.accuracy));
  assert.equal(rep.verdict.length, 2);
  assert.match(rep.verdict[1], /^against the original .*: as deep \(6 conv\/matmul layers\), /);
  assert.match(r.stdout, /against the original/);
  assert.match(readFileSync(report.replace(/\.json$/, '.md'), 'utf8'), /\| \| original \| before \(input\) \| after \|/);
  // an explicit --original wins; a missing one is named
  r = linfold(['fold', lin, '-o', folded, '--original', join(dir, 'nope.onnx'), '--quiet']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nope\.onnx/);
});
