// ≥ 1000 mutated and truncated copies of the fixtures: each must end in a clean LinfoldError or a valid
// audit report — never another exception, never a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeModel } from '../src/import/onnx-io.js';
import { audit } from '../src/analyze/audit.js';
import { LinfoldError } from '../src/errors.js';
import { seededRandom } from '../src/train/data.js';
import { onnxFixtures } from './support/fixtures.js';

const fixtures = onnxFixtures().map((f) => ({ name: f.name, bytes: readFileSync(f.path) }));

function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(rnd() * n);
  const kind = pick(5);
  const b = Uint8Array.from(src);
  switch (kind) {
    case 0: return b.subarray(0, pick(b.length)); // truncation
    case 1: for (let k = 0, n = 1 + pick(8); k < n; k++) b[pick(b.length)] = pick(256); return b; // byte flips
    case 2: { const at = pick(b.length), len = 1 + pick(64); b.fill(0, at, at + len); return b; } // zeroed run
    case 3: { const at = pick(b.length); return Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1 + pick(16))]); } // deletion
    default: { const at = pick(b.length); return Uint8Array.from([...b.subarray(0, at), ...Array.from({ length: 1 + pick(16) }, () => pick(256)), ...b.subarray(at)]); } // insertion
  }
}

test('1000+ mutated fixtures: clean error or valid audit, no crash, no hang', { timeout: 600_000 }, () => {
  const rnd = seededRandom(2024);
  let errors = 0, reports = 0, slowest = 0;
  const crashes: string[] = [];
  const cases = 1200;
  for (let i = 0; i < cases; i++) {
    const f = fixtures[i % fixtures.length];
    const bytes = mutate(f.bytes, rnd);
    const t0 = performance.now();
    try {
      const r = audit(decodeModel(bytes, { path: `${f.name}#${i}` }));
      assert.equal(r.schemaVersion, 1);
      assert.ok(Number.isFinite(r.summary.napl) && Number.isFinite(r.summary.apl), `${f.name}#${i}: non-finite APL`);
      JSON.stringify(r);
      reports++;
    } catch (e) {
      if (e instanceof LinfoldError) {
        errors++;
        assert.ok(!e.message.includes('\n'), `multi-line error: ${e.message}`);
      } else crashes.push(`${f.name}#${i}: ${(e as Error).stack?.split('\n').slice(0, 3).join(' | ')}`);
    }
    slowest = Math.max(slowest, performance.now() - t0);
  }
  console.log(`fuzz: ${cases} cases, ${reports} valid reports, ${errors} clean errors, slowest ${slowest.toFixed(0)} ms`);
  assert.deepEqual(crashes.slice(0, 10), []);
  assert.ok(slowest < 10_000, `a case took ${slowest} ms`);
});
