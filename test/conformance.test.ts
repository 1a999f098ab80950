// ONNX's own backend tests (Debian libonnx-testdata: the per-op `node` suite plus the small `simple`,
// `pytorch-converted` and `pytorch-operator` models) through the tfjs executor: every case whose ops all have a
// kernel and whose tensors tfjs can hold runs and is compared with the expected outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testCases, dataSet, TESTDATA_MISSING, type TestCase } from './support/onnx-testdata.js';
import { loadModel } from '../src/import/onnx-io.js';
import { opsetOf, type Model } from '../src/import/ir.js';
import { Tensor } from '../src/import/tensor.js';
import { tf, useBackend } from '../src/import/tfjs/backends.js';
import { lookupKernel } from '../src/import/tfjs/kernels.js';
import { compile } from '../src/import/tfjs/executor.js';
import { toTf, fromTf, tfjsCanHold } from '../src/import/tfjs/convert.js';

const RTOL = 1e-3;
const ATOL = 1e-5;
// both backends by default (≈2 s each on tiny graphs); LINFOLD_CONFORMANCE_BACKEND=wasm|cpu picks one
const BACKENDS = (process.env.LINFOLD_CONFORMANCE_BACKEND ?? 'cpu,wasm').split(',') as ('cpu' | 'wasm')[];

/**
 * Cases that run but cannot match, each for a documented TensorFlow.js limit (not a kernel bug).
 */
export const ALLOWED_FAILURES: Record<string, string> = {
  test_training_dropout: 'training-mode Dropout draws a random mask; the expected output is one draw of numpy\'s generator',
  test_training_dropout_default: 'training-mode Dropout draws a random mask (numpy draw)',
  test_training_dropout_default_mask: 'training-mode Dropout draws a random mask (numpy draw)',
  test_training_dropout_mask: 'training-mode Dropout draws a random mask (numpy draw)',
  // pytorch-operator suite: float64 data beyond float32's range (tfjs has no float64)
  test_operator_add_broadcast: 'float64 values ~1e198 overflow float32',
  test_operator_add_size1_right_broadcast: 'float64 values ~1e223 overflow float32',
  test_operator_add_size1_singleton_broadcast: 'float64 values ~1e199 overflow float32',
  test_operator_addconstant: 'float64 values ~1e223 overflow float32',
};

/** ONNX's test data stores bfloat16 tensors as uint16 bit patterns; read them as the model declares them. */
function asDeclared(t: Tensor, declared: string | undefined): Tensor {
  return declared === 'bfloat16' && t.dtype === 'uint16' ? Tensor.fromArray(t.name, 'bfloat16', t.dims, t.data) : t;
}

type Outcome = { status: 'pass' | 'fail' | 'skip'; reason?: string };

function opsOf(model: Model): string[] {
  return [...new Set(model.graph.nodes.map((n) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType)))];
}

function close(got: Tensor, want: Tensor): string | undefined {
  if (got.dims.length !== want.dims.length || got.dims.some((d, i) => d !== want.dims[i]))
    return `shape [${got.dims}] instead of [${want.dims}]`;
  const a = got.numbers(), b = want.numbers();
  const exact = !(want.dtype.startsWith('float') || want.dtype === 'bfloat16');
  for (let i = 0; i < b.length; i++) {
    if (Number.isNaN(b[i]) && Number.isNaN(a[i])) continue;
    if (a[i] === b[i]) continue;
    if (exact || !(Math.abs(a[i] - b[i]) <= ATOL + RTOL * Math.abs(b[i])))
      return `element ${i}: ${a[i]} instead of ${b[i]}`;
  }
  return undefined;
}

export function runCase(tc: TestCase): Outcome & { ops: string[] } {
  let model: Model;
  try {
    model = loadModel(tc.model);
  } catch (e) {
    return { status: 'skip', reason: `load: ${(e as Error).message}`, ops: [] };
  }
  const ops = opsOf(model);
  const missing = model.graph.nodes.filter((n) => !lookupKernel(n.opType, n.domain, opsetOf(model, n.domain) ?? 1));
  if (missing.length) return { status: 'skip', reason: `no kernel: ${[...new Set(missing.map((n) => n.opType))].join(', ')}`, ops };
  const raw = dataSet(tc);
  if (!raw) return { status: 'skip', reason: 'inputs or outputs are not tensors', ops };
  const ds = {
    inputs: raw.inputs.map((t, i) => asDeclared(t, model.graph.feeds[i]?.dtype)),
    outputs: raw.outputs.map((t, i) => asDeclared(t, model.graph.outputs[i]?.dtype)),
  };
  const all = [...ds.inputs, ...ds.outputs];
  const bad = all.find((t) => !tfjsCanHold(t.dtype));
  if (bad) return { status: 'skip', reason: `${bad.dtype} tensors`, ops };
  if (ds.outputs.length === 0) return { status: 'skip', reason: 'no expected outputs', ops };
  const before = tf.memory().numTensors;
  let exe;
  try {
    exe = compile(model);
  } catch (e) {
    return { status: 'fail', reason: `compile: ${(e as Error).message}`, ops };
  }
  const feeds: Record<string, tf.Tensor> = {};
  try {
    const names = model.graph.feeds.map((f) => f.name);
    ds.inputs.forEach((t, i) => {
      if (names[i]) feeds[names[i]] = toTf(t);
    });
    const outs = exe.run(feeds);
    try {
      for (let i = 0; i < ds.outputs.length; i++) {
        const info = model.graph.outputs[i];
        const t = outs[info.name];
        if (!t) return { status: 'fail', reason: `output ${info.name} missing`, ops };
        const why = close(fromTf(info.name, t, ds.outputs[i].dtype), ds.outputs[i]);
        if (why) return { status: 'fail', reason: `${info.name}: ${why}`, ops };
      }
    } finally {
      tf.dispose(Object.values(outs));
    }
    return { status: 'pass', ops };
  } catch (e) {
    return { status: 'fail', reason: (e as Error).message.split('\n')[0].slice(0, 300), ops };
  } finally {
    tf.dispose(Object.values(feeds));
    exe.dispose();
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0) console.log(`  ${tc.name}: ${leaked} tensors leaked`);
  }
}

for (const BACKEND of BACKENDS)
test(`ONNX backend tests (libonnx-testdata: node, simple, pytorch-converted, pytorch-operator) on ${BACKEND}`, { skip: TESTDATA_MISSING }, async () => {
  await useBackend(BACKEND);
  const perOp = new Map<string, { pass: number; fail: number; skip: number }>();
  const failures: string[] = [];
  const allowed: string[] = [];
  let pass = 0, fail = 0, skip = 0, unsupported = 0;
  const t0 = Date.now();
  const perSuite = new Map<string, { pass: number; fail: number; skip: number }>();
  for (const tc of testCases(['node', 'simple', 'pytorch-converted', 'pytorch-operator'])) {
    const r = runCase(tc);
    if (r.status === 'skip' && r.reason?.startsWith('no kernel')) {
      unsupported++;
      continue;
    }
    let status = r.status;
    if (status === 'fail' && ALLOWED_FAILURES[tc.name]) {
      allowed.push(`${tc.name}: ${ALLOWED_FAILURES[tc.name]} (${r.reason})`);
      status = 'skip';
    } else if (status === 'fail') failures.push(`${tc.name}: ${r.reason}`);
    if (status === 'pass') pass++;
    else if (status === 'fail') fail++;
    else skip++;
    const su = perSuite.get(tc.suite) ?? { pass: 0, fail: 0, skip: 0 };
    su[status]++;
    perSuite.set(tc.suite, su);
    for (const op of r.ops) {
      const e = perOp.get(op) ?? { pass: 0, fail: 0, skip: 0 };
      e[status]++;
      perOp.set(op, e);
    }
  }
  const lines = [...perOp].sort(([a], [b]) => a.localeCompare(b)).map(([op, c]) => `  ${op.padEnd(28)} ${c.pass} passed, ${c.fail} failed, ${c.skip} skipped`);
  console.log(`conformance on ${BACKEND} (${((Date.now() - t0) / 1000).toFixed(1)} s):\n${lines.join('\n')}`);
  for (const [suite, c] of perSuite) console.log(`suite ${suite}: ${c.pass} passed, ${c.fail} failed, ${c.skip} skipped`);
  console.log(`total: ${pass} passed, ${fail} failed, ${skip} skipped (${unsupported} more cases use ops without a kernel)`);
  if (allowed.length) console.log(`allowed failures:\n  ${allowed.join('\n  ')}`);
  if (failures.length) console.log(`failures:\n  ${failures.join('\n  ')}`);
  assert.equal(failures.length, 0, `${failures.length} conformance failures:\n${failures.join('\n')}`);
  assert.ok(pass > 700, `only ${pass} cases passed`);
});
