// The command line as a user meets it: every command run with real output and with bad input (one-line errors,
// exit code 2 for bad files and values, 1 for what commander rejects; nothing half-written), JSON output, help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { assertCliError, assertUsageError, linfold } from './support/cli.js';
import { mnistNpy } from './support/npy.js';
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
  const cases: [string[], RegExp][] = [[['audit', bad], /bad\.onnx/], [['audit', join(tmp, 'missing.onnx')], /missing\.onnx/], [['audit', 'fixtures/resnet_small.onnx', '--input-shape', 'nope:1x2'], /nope/], [['check', bad], /bad\.onnx/]];
  for (const [args, names] of cases) assertCliError(linfold(args), names);
  const v = linfold(['--verbose', 'audit', bad]);
  assert.equal(v.code, 2);
  assert.match(v.stderr, /at .*onnx-io/);
});

test('an option with a bad value is named', () => {
  assertUsageError(linfold(['audit', 'fixtures/resnet_small.onnx', '--eps', 'abc']), /--eps/);
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
  // auto trains a model whose every op has a gradient rule on onnxruntime, and says so
  assert.match(r.stdout, /^wrote .*lin\.onnx \(trained on onnxruntime\)$/m);
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

// ---------------------------------------------------------------- every command, through the CLI

test('every command of --help is run through the CLI by some test file', () => {
  const help = linfold(['--help']).stdout;
  const commands = [...help.slice(help.indexOf('Commands:')).matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]).filter((c) => c !== 'help');
  assert.ok(commands.length >= 10, `commands: ${commands}`);
  const tests = readdirSync(import.meta.dirname).filter((f) => f.endsWith('.test.ts')).map((f) => readFileSync(join(import.meta.dirname, f), 'utf8')).join('\n');
  for (const c of commands) assert.match(tests, new RegExp(`linfold\\(\\[(?:'--[a-z]+', '[^']*', )?'${c}'`), `no test runs \`linfold ${c}\``);
});

test('bad input to linearize, fold, demo, backends: named in one line, nothing written', () => {
  const out = join(tmp, 'never.onnx');
  assertCliError(linfold(['linearize', join(tmp, 'missing.onnx'), '--steps', '1', '-o', out]), /missing\.onnx/);
  assertCliError(linfold(['fold', join(tmp, 'missing.onnx'), '-o', out]), /missing\.onnx/);
  // option values commander rejects: exit 1, the option named, then the pointer to --help
  assertUsageError(linfold(['linearize', 'fixtures/mnist_cnn.onnx', '--steps', 'abc', '-o', out]), /--steps/);
  assertUsageError(linfold(['demo', '--epochs', '-1', '--out', join(tmp, 'demo')]), /--epochs/);
  assertUsageError(linfold(['backends', '--nope']), /--nope/);
  assert.ok(!existsSync(out) && !existsSync(join(tmp, 'demo')), 'nothing written');
});

test('report: an HTML page with the audit\'s NAPL and APL; a missing sweep file is named and no page written', () => {
  const html = join(tmp, 'report.html');
  const r = linfold(['report', 'fixtures/mnist_cnn.onnx', '-o', html]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /report\.html/);
  const { summary } = JSON.parse(linfold(['audit', 'fixtures/mnist_cnn.onnx', '--json']).stdout);
  const page = readFileSync(html, 'utf8');
  assert.ok(page.includes(`NAPL ${summary.napl.toFixed(3)}; of the unnormalized one = APL ${summary.apl.toFixed(3)}`), `NAPL ${summary.napl}, APL ${summary.apl} on the page`);
  assert.match(page, /<svg/);
  const bad = join(tmp, 'bad-report.html');
  assertCliError(linfold(['report', 'fixtures/mnist_cnn.onnx', '--sweep', join(tmp, 'missing.json'), '-o', bad]), /missing\.json/);
  assert.ok(!existsSync(bad));
});

test('sweep → collect: two λ of one step each; the point files, sweep.json and the merged table agree', { timeout: 120_000 }, () => {
  const { x, y } = mnistNpy(tmp, 128);
  const out = join(tmp, 'sweep');
  const r = linfold(['sweep', 'fixtures/mnist_cnn.onnx', '--lambdas', '0.001,0.05', '--data', x, '--labels', y, '--steps', '1', '--slope-lr', '0.667', '--no-fold', '--out', out, '-o', join(out, 'curve.html'), '--quiet', '--json'], { env: { LINFOLD_THREADS: '1' } });
  assert.equal(r.code, 0, r.stderr);
  const swept = JSON.parse(r.stdout);
  assert.deepEqual(swept.points.map((p: { lambda: number }) => p.lambda), [0.001, 0.05]);
  for (const p of swept.points) assert.ok(p.napl > 0 && p.napl <= swept.baseline.napl + 1e-9 && p.valAccuracy >= 0 && p.valAccuracy <= 1, JSON.stringify(p));
  assert.match(readFileSync(join(out, 'curve.html'), 'utf8'), /id="chart-sweep"/);
  const c = linfold(['collect', out, '--require-all', '--json']);
  assert.equal(c.code, 0, c.stderr);
  const merged = JSON.parse(c.stdout);
  assert.deepEqual(merged.points.map((p: { lambda: number; napl: number }) => [p.lambda, p.napl]), swept.points.map((p: { lambda: number; napl: number }) => [p.lambda, p.napl]));
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')).points.map((p: { napl: number }) => p.napl), merged.points.map((p: { napl: number }) => p.napl));
  // bad input: a λ that is not a number (nothing started), a folder that is no sweep
  const none = join(tmp, 'sweep-none');
  assertUsageError(linfold(['sweep', 'fixtures/mnist_cnn.onnx', '--lambdas', '0.1,abc', '--out', none]), /--lambdas/);
  assert.ok(!existsSync(none));
  assertCliError(linfold(['collect', join(tmp, 'not-a-sweep')]), /not-a-sweep: no plan\.json/);
  // the library names its options (option index); the command line shows them as its flags
  const clash = linfold(['sweep', 'fixtures/mnist_cnn.onnx', '--lambdas', '0.1', '--index', '1', '--point', '2', '--out', none]);
  assertCliError(clash, /--index 1 and --point 2 disagree \(--point is another name for --index\)/);
  assert.doesNotMatch(clash.stderr, /option/);
});
