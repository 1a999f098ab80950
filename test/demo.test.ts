// `linfold demo` end to end. With --epochs 0 nothing is trained, so the folded model must score exactly the
// original's accuracy under onnxruntime and keep its NAPL: the plumbing is checked without minutes of training.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { linfold } from './support/cli.js';

test('demo: writes the models, the report and a five-line summary', { timeout: 300_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'linfold-demo-'));
  try {
    const r = linfold(['demo', '--out', out, '--epochs', '0', '--quiet'], { timeout: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    for (const f of Object.values(summary.files) as string[]) assert.ok(existsSync(f), f);
    assert.ok(summary.accuracy.before > 0.98, 'the bundled model is the pretrained one');
    assert.equal(summary.accuracy.after, summary.accuracy.before);
    assert.equal(summary.napl.after, summary.napl.before);
    const lines = r.stdout.trim().split('\n');
    for (const key of ['accuracy', 'NAPL', 'depth', 'MACs', 'latency']) assert.ok(lines.some((l) => l.startsWith(key)), `summary line ${key}`);
    assert.match(readFileSync(summary.files.report, 'utf8'), /<svg/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
