// Load → save round trips keep everything onnxruntime needs: identical outputs on the original and the
// rewritten file, for the fixtures and for ONNX's own backend test models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync, rmSync, openSync, ftruncateSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, encodeModel, decodeModel, saveModel } from '../src/import/onnx-io.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Graph, type Model } from '../src/import/ir.js';
import { Tensor, compareValues } from '../src/import/tensor.js';
import { LinfoldError } from '../src/errors.js';
import { randomFeeds } from '../src/import/random.js';
import { testCases, dataSet, TESTDATA_MISSING } from './support/onnx-testdata.js';
import { onnxFixtures } from './support/fixtures.js';
import { tempDir } from './support/tmp.js';

const tmp = tempDir('io');

function sameValues(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.dims.join() !== b.dims.join()) return false;
  if (a.dtype === 'string') return a.strings.every((s, i) => Buffer.compare(s, b.strings[i]) === 0);
  const p = a.numbers(), q = b.numbers();
  return p.every((v, i) => v === q[i] || (Number.isNaN(v) && Number.isNaN(q[i])));
}

test('round trip of the ONNX backend test models gives identical onnxruntime outputs', { timeout: 600_000, skip: TESTDATA_MISSING }, async () => {
  const cases = testCases();
  assert.ok(cases.length > 1000, `only ${cases.length} ONNX test cases found`);
  let compared = 0, skipped = 0;
  const failures: string[] = [];
  for (const tc of cases) {
    const model = loadModel(tc.model);
    const rewritten = decodeModel(encodeModel(model));
    const ds = dataSet(tc);
    let reference: Record<string, Tensor>, feeds: Record<string, Tensor> = {};
    try {
      // cases onnxruntime itself cannot load or run (training ops, sequences, locales) are skipped
      if (!ds) throw new Error('non-tensor data');
      model.graph.feeds.forEach((v, i) => { if (ds.inputs[i]) feeds[v.name] = ds.inputs[i]; });
      reference = await runOrt(await ortSession(readFileSync(tc.model)), feeds);
    } catch {
      skipped++;
      continue;
    }
    const again = await runOrt(await ortSession(rewritten), feeds);
    compared++;
    for (const [k, v] of Object.entries(reference))
      if (!again[k] || !sameValues(v, again[k])) failures.push(`${tc.suite}/${tc.name}: output ${k} differs`);
  }
  console.log(`round trip: ${compared} models compared, ${skipped} skipped (onnxruntime cannot run them)`);
  assert.ok(compared > 900, `only ${compared} models compared`);
  assert.deepEqual(failures, []);
});

test('round trip of every fixture gives identical outputs and keeps metadata', async () => {
  for (const { name: f, path } of onnxFixtures()) {
    const model = loadModel(path);
    const out = join(tmp, f);
    saveModel(model, out);
    const feeds = randomFeeds(model.graph, { otherDims: 8 });
    const a = await runOrt(await ortSession(path), feeds);
    const b = await runOrt(await ortSession(out), feeds);
    for (const k of Object.keys(a)) assert.ok(sameValues(a[k], b[k]), `${f}: ${k} differs`);
    const again = loadModel(out);
    assert.equal(again.producerName, model.producerName);
    assert.deepEqual(again.opsets, model.opsets);
    assert.equal(again.graph.nodes.length, model.graph.nodes.length);
  }
});


/** y = MatMul(x, W) + b: a model small enough to build by hand. */
function linearModel(w: Tensor, b: Tensor): Model {
  const g = new Graph();
  g.name = 'linear';
  g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', w.dims[0]] }];
  g.outputs = [{ name: 'y', dtype: 'float32', shape: ['batch', w.dims[1]] }];
  g.initializers.set(w.name, w);
  g.initializers.set(b.name, b);
  g.nodes = [
    { name: 'mm', opType: 'MatMul', domain: '', inputs: ['x', w.name], outputs: ['xw'], attrs: {} },
    { name: 'add', opType: 'Add', domain: '', inputs: ['xw', b.name], outputs: ['y'], attrs: {} },
  ];
  return { irVersion: 8, opsets: [{ domain: '', version: 13 }], producerName: 'test', producerVersion: '', domain: '', modelVersion: 0, docString: '', graph: g, passthrough: {} };
}

test('external data: written next to the model, read back lazily, same outputs', async () => {
  const w = Tensor.f32('W', [64, 32], Array.from({ length: 64 * 32 }, (_, i) => Math.sin(i)));
  const b = Tensor.f32('b', [32], Array.from({ length: 32 }, (_, i) => i / 10));
  const model = linearModel(w, b);
  const inline = join(tmp, 'inline.onnx'), ext = join(tmp, 'ext.onnx');
  saveModel(model, inline);
  saveModel(model, ext, { externalData: { threshold: 1024 } });
  assert.ok(existsSync(`${ext}.data`));
  assert.ok(statSync(ext).size < 1024, 'weights should not be inline');
  const loaded = loadModel(ext);
  assert.ok(loaded.graph.initializers.get('W')!.isExternal);
  assert.ok(!loaded.graph.initializers.get('b')!.isExternal, 'small tensors stay inline');
  assert.deepEqual(loaded.graph.initializers.get('W')!.numbers(), w.numbers());
  const feeds = randomFeeds(model.graph, { otherDims: 8 });
  const a = await runOrt(await ortSession(inline), feeds);
  const c = await runOrt(await ortSession(ext), feeds);
  assert.ok(sameValues(a.y, c.y));
  // an external model re-saved inline elsewhere carries its weights along
  const moved = join(tmp, 'moved.onnx');
  saveModel(loaded, moved);
  const d = await runOrt(await ortSession(moved), feeds);
  assert.ok(sameValues(a.y, d.y));
});

test('a model over 2 GiB of weights is split into external data and read back', { timeout: 300_000 }, async () => {
  // 2.2 GiB of zeros in a sparse data file: the writer must stream it, the reader must not inline it
  const big = join(tmp, 'big.bin');
  const n = 600 * 2 ** 20; // float32 elements: 2.34 GiB
  const fd = openSync(big, 'w');
  ftruncateSync(fd, n * 4);
  closeSync(fd);
  const w = Tensor.fromExternal('W', 'float32', [n / 16, 16], { file: big, offset: 0, length: n * 4 });
  const b = Tensor.f32('b', [16], Array.from({ length: 16 }, (_, i) => i));
  const g = linearModel(b, b).graph;
  g.initializers = new Map([['W', w], ['idx', Tensor.i64('idx', [1], [n / 16 - 1])], ['b', b]]);
  g.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 16] }];
  g.outputs = [{ name: 'y', dtype: 'float32', shape: [1, 16] }];
  g.nodes = [
    { name: 'row', opType: 'Gather', domain: '', inputs: ['W', 'idx'], outputs: ['r'], attrs: {} },
    { name: 'add', opType: 'Add', domain: '', inputs: ['x', 'r'], outputs: ['xr'], attrs: {} },
    { name: 'add2', opType: 'Add', domain: '', inputs: ['xr', 'b'], outputs: ['y'], attrs: {} },
  ];
  const model: Model = { ...linearModel(b, b), graph: g };
  const out = join(tmp, 'big.onnx');
  saveModel(model, out); // over the protobuf limit: external data is chosen automatically
  assert.ok(existsSync(`${out}.data`) && statSync(`${out}.data`).size >= n * 4);
  assert.ok(statSync(out).size < 4096);
  const loaded = loadModel(out);
  assert.equal(loaded.graph.initializers.get('W')!.byteLength, n * 4);
  const y = await runOrt(await ortSession(out), { x: Tensor.f32('x', [1, 16], new Array(16).fill(1)) });
  assert.deepEqual(y.y.numbers(), Array.from({ length: 16 }, (_, i) => 1 + i));
  assert.throws(() => encodeModel(model), /2 GiB/);
});

test('bad files give one clear error naming the file', () => {
  const notOnnx = join(tmp, 'text.onnx');
  writeFileSync(notOnnx, 'this is not a model\n'.repeat(20));
  assert.throws(() => loadModel(notOnnx), (e: Error) => e instanceof LinfoldError && e.message.startsWith(notOnnx));
  const good = readFileSync('fixtures/resnet_small.onnx');
  const truncated = join(tmp, 'truncated.onnx');
  writeFileSync(truncated, good.subarray(0, Math.floor(good.length / 2)));
  assert.throws(() => loadModel(truncated), (e: Error) => e instanceof LinfoldError && e.message.includes(truncated));
  assert.throws(() => loadModel(join(tmp, 'missing.onnx')), /no such file/);
  // external data file missing
  const w = Tensor.f32('W', [64, 32], new Array(64 * 32).fill(1));
  const ext = join(tmp, 'lost.onnx');
  saveModel(linearModel(w, Tensor.f32('b', [32], new Array(32).fill(0))), ext, { externalData: true });
  rmSync(`${ext}.data`);
  assert.throws(() => loadModel(ext), (e: Error) => e instanceof LinfoldError && /external data file 'lost.onnx.data'.*missing/.test(e.message));
});

test('IR 10 fields survive a round trip (node metadata, overload, graph metadata)', () => {
  const model = linearModel(Tensor.f32('W', [2, 2], [1, 2, 3, 4]), Tensor.f32('b', [2], [0, 0]));
  model.irVersion = 10;
  model.graph.nodes[0].passthrough = { metadata_props: [{ key: 'origin', value: 'fc1' }], doc_string: 'doc' };
  model.graph.passthrough = { metadata_props: [{ key: 'g', value: '1' }] };
  model.passthrough = { metadata_props: [{ key: 'm', value: '2' }] };
  const back = decodeModel(encodeModel(model));
  assert.equal(back.irVersion, 10);
  assert.deepEqual(back.graph.nodes[0].passthrough?.metadata_props.map((e: { key: string; value: string }) => [e.key, e.value]), [['origin', 'fc1']]);
  assert.equal(back.graph.nodes[0].passthrough?.doc_string, 'doc');
  assert.equal(back.graph.passthrough?.metadata_props[0].value, '1');
  assert.equal(back.passthrough.metadata_props[0].value, '2');
  const future = encodeModel({ ...model, irVersion: 12 });
  assert.throws(() => decodeModel(future), /IR version 12 is newer/);
});

test('compareValues: relative to the largest finite reference value; NaN only equals NaN; shapes that differ differ', () => {
  assert.deepEqual(compareValues([1, -4, 2], [1, -4, 2]), { maxAbsError: 0, maxAbsReference: 4, maxRelError: 0 });
  assert.deepEqual(compareValues([1.5, -4, 2], [1, -4, 2]), { maxAbsError: 0.5, maxAbsReference: 4, maxRelError: 0.125 });
  assert.equal(compareValues([NaN, 1], [NaN, 1]).maxRelError, 0);
  assert.equal(compareValues([NaN, 1], [0, 1]).maxRelError, Infinity);
  assert.equal(compareValues([0, 1], [NaN, 1]).maxRelError, Infinity);
  assert.equal(compareValues([Infinity, 2], [Infinity, 1]).maxAbsReference, 1);
  assert.equal(compareValues([0.25, 0], [0, 0]).maxRelError, 0.25);
  assert.equal(compareValues([1, 2], [1, 2, 3]).maxRelError, Infinity);
});
