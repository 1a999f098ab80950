// Shape inference checked against independent references: ONNX's own backend test data (expected output
// tensors), and onnxruntime-node running real models with every intermediate value exposed as an output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinfoldError } from '../src/errors.js';
import { opsetOf, type Model, type Node, type ValueInfo } from '../src/import/ir.js';
import { decodeModel, encodeModel, loadModel } from '../src/import/onnx-io.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Tensor, type DType } from '../src/import/tensor.js';
import { randomFeeds } from '../src/import/random.js';
import { inferShapes } from '../src/import/shape-inference.js';
import { lookupOp } from '../src/import/ops/index.js';
import { dataSet, testCases, TESTDATA_MISSING } from './support/onnx-testdata.js';
import { attr, f32in, makeModel, node } from './support/models.js';
import { onnxFixtures } from './support/fixtures.js';

// ---------------------------------------------------------------- helpers

const { i: int, ints, s: str } = attr;

/** Infers a one-node model and returns the node's output infos. */
function infer1(opset: number, n: Node, inputs: ValueInfo[], inits: Tensor[] = []): ValueInfo[] {
  const m = makeModel(opset, inputs, [n], inits);
  inferShapes(m);
  return n.outputs.map((o) => m.graph.valueInfo.get(o)!);
}
const shape1 = (opset: number, n: Node, inputs: ValueInfo[], inits: Tensor[] = []) => infer1(opset, n, inputs, inits)[0].shape;

/** Deterministic pseudo-random feed for a graph input. */
function randomFeed(name: string, dtype: DType, dims: number[], seed: number): Tensor {
  let s = seed >>> 0 || 1;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const n = dims.reduce((a, b) => a * b, 1);
  if (dtype === 'float32') return Tensor.f32(name, dims, Array.from({ length: n }, () => rnd() * 2 - 1));
  if (dtype === 'int64') return Tensor.i64(name, dims, Array.from({ length: n }, () => Math.floor(rnd() * 4)));
  throw new Error(`no random feed for ${dtype}`);
}

/**
 * Runs `path` under onnxruntime with every node output exposed as a graph output and compares each value's
 * real dims and dtype with `inferred` (value name → info): dtype, rank and every numeric dim must be equal,
 * and each symbolic dim must stand for one size throughout (`binding`, shared across calls if given).
 * Returns how many values were compared, how many of those had fully numeric shapes, and the mismatches.
 */
async function compareWithOrt(
  source: string | Model, feeds: Record<string, Tensor>, inferred: Map<string, ValueInfo>, label: string, binding = new Map<string, number>(),
): Promise<{ compared: number; resolved: number; mismatches: string[] }> {
  const m = typeof source === 'string' ? loadModel(source) : decodeModel(encodeModel(source));
  const outs = new Set(m.graph.outputs.map((o) => o.name));
  for (const n of m.graph.nodes)
    for (const o of n.outputs) {
      const inf = inferred.get(o);
      if (o && !outs.has(o) && inf?.dtype) {
        m.graph.outputs.push({ name: o, dtype: inf.dtype });
        outs.add(o);
      }
    }
  m.graph.valueInfo.clear();
  const res = await runOrt(await ortSession(m, label), feeds);
  const mismatches: string[] = [];
  let compared = 0, resolved = 0;
  for (const [name, t] of Object.entries(res)) {
    const inf = inferred.get(name);
    if (!inf) continue;
    compared++;
    const s = inf.shape;
    const ok = inf.dtype === t.dtype && s?.length === t.dims.length && s.every((d, k) => {
      if (typeof d === 'number') return d === t.dims[k];
      const b = binding.get(d) ?? t.dims[k];
      binding.set(d, b);
      return b === t.dims[k];
    });
    if (!ok) mismatches.push(`${label}: '${name}' inferred ${inf.dtype}[${s}], onnxruntime gives ${t.dtype}[${t.dims}]`);
    else if (s!.every((d) => typeof d === 'number')) resolved++;
  }
  return { compared, resolved, mismatches };
}

// ---------------------------------------------------------------- ONNX node tests

/** Cases whose expected shape is not a function of the input shapes and constant inputs. */
const KNOWN_UNSUPPORTED: Record<string, string> = {
  test_nonzero_example: 'NonZero: the output length depends on the input values',
};

test('ONNX node tests: inferred output shapes and dtypes match the expected outputs', { skip: TESTDATA_MISSING }, () => {
  let passed = 0, skipped = 0;
  const failures: string[] = [];
  for (const tc of testCases(['node'])) {
    const m = loadModel(tc.model);
    const supported = m.graph.nodes.every((n) => lookupOp(n.opType, n.domain, opsetOf(m, n.domain) ?? 0)?.infer);
    const ds = supported ? dataSet(tc) : undefined;
    if (!ds || ds.inputs.length !== m.graph.feeds.length || tc.name in KNOWN_UNSUPPORTED) {
      skipped++;
      continue;
    }
    // small rank ≤ 1 inputs are parameters (shapes, axes, pads, scales, k…): shape rules need their values
    const inputShapes: Record<string, number[]> = {};
    m.graph.feeds.forEach((f, i) => {
      const t = ds.inputs[i];
      if (t.dims.length <= 1 && t.size <= 16 && t.dtype !== 'string') m.graph.initializers.set(f.name, t.withName(f.name));
      else inputShapes[f.name] = t.dims;
    });
    try {
      inferShapes(m, { inputShapes });
      const wrong = m.graph.outputs.flatMap((o, i) => {
        const inf = m.graph.valueInfo.get(o.name), want = ds.outputs[i];
        // ONNX 1.12 writes expected bfloat16 outputs as uint16 tensors
        const dtypeOk = inf?.dtype === want.dtype || (inf?.dtype === 'bfloat16' && want.dtype === 'uint16');
        return JSON.stringify(inf?.shape) === JSON.stringify(want.dims) && dtypeOk
          ? [] : [`'${o.name}' inferred ${inf?.dtype}[${inf?.shape}], expected ${want.dtype}[${want.dims}]`];
      });
      if (wrong.length) failures.push(`${tc.name}: ${wrong.join('; ')}`);
      else passed++;
    } catch (e) {
      failures.push(`${tc.name}: ${(e as Error).message}`);
    }
  }
  console.log(`ONNX node tests: ${passed} passed, ${failures.length} failed, ${skipped} skipped`);
  assert.deepEqual(failures, []);
  assert.ok(passed > 600, `only ${passed} node tests ran`);
});

test('ONNX node tests with several nodes (expanded functions): every intermediate shape matches onnxruntime', { skip: TESTDATA_MISSING }, async () => {
  let models = 0, values = 0;
  const mismatches: string[] = [];
  for (const tc of testCases(['node'])) {
    const m = loadModel(tc.model);
    if (m.graph.nodes.length < 2 || !m.graph.nodes.every((n) => lookupOp(n.opType, n.domain, opsetOf(m, n.domain) ?? 0)?.infer)) continue;
    const ds = dataSet(tc);
    if (!ds || ds.inputs.length !== m.graph.feeds.length || ds.inputs.some((t) => t.dtype === 'string')) continue;
    const feeds: Record<string, Tensor> = {};
    const inputShapes: Record<string, number[]> = {};
    m.graph.feeds.forEach((f, i) => {
      const t = ds.inputs[i];
      feeds[f.name] = t;
      if (t.dims.length <= 1 && t.size <= 16) m.graph.initializers.set(f.name, t.withName(f.name));
      else inputShapes[f.name] = t.dims;
    });
    inferShapes(m, { inputShapes });
    const r = await compareWithOrt(tc.model, feeds, m.graph.valueInfo, tc.name);
    models++;
    values += r.compared;
    mismatches.push(...r.mismatches);
    if (r.resolved !== r.compared) mismatches.push(`${tc.name}: ${r.compared - r.resolved} values left symbolic`);
  }
  console.log(`expanded node tests: ${models} models, ${values} values compared with onnxruntime`);
  assert.deepEqual(mismatches, []);
  assert.ok(models > 50 && values > 1000, `only ${models} models / ${values} values compared`);
});

// ---------------------------------------------------------------- real models, every intermediate value

test('ONNX converted models: every intermediate shape matches onnxruntime', { skip: TESTDATA_MISSING }, async () => {
  let models = 0, values = 0;
  const mismatches: string[] = [], unresolved: string[] = [];
  for (const tc of testCases(['simple', 'pytorch-converted', 'pytorch-operator'])) {
    const ds = dataSet(tc);
    const m = loadModel(tc.model);
    if (!ds || ds.inputs.length !== m.graph.feeds.length || ds.inputs.some((t) => t.dtype === 'string')) continue;
    const feeds: Record<string, Tensor> = {};
    const inputShapes: Record<string, number[]> = {};
    m.graph.feeds.forEach((f, i) => {
      const t = ds.inputs[i];
      feeds[f.name] = t;
      // small 1-D integer inputs are shape parameters (Expand's target…): give inference their values
      if (t.dims.length === 1 && t.size <= 16 && t.dtype === 'int64') m.graph.initializers.set(f.name, t.withName(f.name));
      else inputShapes[f.name] = t.dims;
    });
    const { unknownOps } = inferShapes(m, { inputShapes });
    let r;
    try {
      r = await compareWithOrt(tc.model, feeds, m.graph.valueInfo, tc.name);
    } catch (e) {
      if (e instanceof LinfoldError) continue; // onnxruntime cannot load or run this case
      throw e;
    }
    models++;
    values += r.compared;
    mismatches.push(...r.mismatches);
    // with every input shape given, a value stays symbolic only downstream of an op without a rule
    if (!unknownOps.length && r.resolved !== r.compared) unresolved.push(tc.name);
  }
  console.log(`converted models: ${models} models, ${values} values compared with onnxruntime`);
  assert.deepEqual(mismatches, []);
  assert.deepEqual(unresolved, []);
  assert.ok(models > 80 && values > 100, `only ${models} models / ${values} values compared`);
});

test('fixtures: every intermediate shape matches onnxruntime, concrete and symbolic', async () => {
  const BATCH = 3;
  for (const { name: file, path } of onnxFixtures()) {
    const feeds: Record<string, Tensor> = {};
    const inputShapes: Record<string, number[]> = {};
    const g = loadModel(path).graph;
    g.feeds.forEach((f) => (inputShapes[f.name] = (f.shape ?? []).map((d) => (typeof d === 'number' ? d : BATCH))));
    // integer inputs (token ids) within the tables they index
    const ids = randomFeeds(g, { inputShapes, seed: 17 });
    g.feeds.forEach((f, k) => (feeds[f.name] = f.dtype === 'int64' ? ids[f.name] : randomFeed(f.name, f.dtype ?? 'float32', inputShapes[f.name], 17 + k)));
    const nValues = (m: Model) => m.graph.nodes.flatMap((n) => n.outputs.filter(Boolean)).length;
    // concrete input shapes: every value's shape must be fully known and equal to onnxruntime's
    const concrete = loadModel(path);
    assert.deepEqual(inferShapes(concrete, { inputShapes }).unknownOps, [], `${file}: ops without shape rules`);
    const c = await compareWithOrt(path, feeds, concrete.graph.valueInfo, file);
    assert.deepEqual(c.mismatches, []);
    assert.equal(c.resolved, nValues(concrete), `${file}: not every value compared and resolved`);
    // symbolic inputs as declared: numeric dims right, each symbol one size, 'batch' the batch size
    const symbolic = loadModel(path);
    inferShapes(symbolic);
    const binding = new Map<string, number>();
    const s = await compareWithOrt(path, feeds, symbolic.graph.valueInfo, file, binding);
    assert.deepEqual(s.mismatches, []);
    assert.equal(s.compared, nValues(symbolic));
    if (binding.has('batch')) assert.equal(binding.get('batch'), BATCH);
    // fixed-shape exports (mnist_mbv2_fixed, fixed_batch_*: torch.onnx.export's default, no dynamic_axes) resolve every value
    const declared = symbolic.graph.feeds.some((f) => (f.shape ?? []).some((d) => typeof d !== 'number'));
    if (declared) assert.ok(s.resolved < s.compared, `${file}: no symbolic dim flowed through`);
    else assert.equal(s.resolved, s.compared, `${file}: fixed input shapes, yet a value has a symbolic dim`);
    console.log(`${file}: ${c.compared} values; symbolic: ${s.compared - s.resolved} with symbolic dims (${[...binding.keys()].join(', ')})`);
  }
});

// ---------------------------------------------------------------- rules, one op at a time

test('symbolic dims flow through Conv, pools, Gemm, MatMul, Reshape, Flatten, Concat', () => {
  const w = Tensor.f32('w', [8, 3, 3, 3], new Float32Array(216));
  assert.deepEqual(shape1(13, node('Conv', ['x', 'w'], ['y'], { pads: ints([1, 1, 1, 1]) }), [f32in('x', ['batch', 3, 32, 32])], [w]), ['batch', 8, 32, 32]);
  assert.deepEqual(shape1(13, node('Conv', ['x', 'w'], ['y'], { auto_pad: str('SAME_UPPER') }), [f32in('x', ['batch', 3, 'H', 'W'])], [w]), ['batch', 8, 'H', 'W']);
  const strided = shape1(13, node('Conv', ['x', 'w'], ['y'], { strides: ints([2, 2]) }), [f32in('x', ['batch', 3, 'H', 32])], [w])!;
  assert.equal(strided[0], 'batch');
  assert.match(String(strided[2]), /^unk__/); // unresolvable: a fresh name, not a failure
  assert.equal(strided[3], 15);
  assert.deepEqual(shape1(13, node('MatMul', ['a', 'b'], ['y']), [f32in('a', ['batch', 'seq', 64]), f32in('b', [64, 32])]), ['batch', 'seq', 32]);
  assert.deepEqual(shape1(13, node('MatMul', ['a', 'b'], ['y']), [f32in('a', [5, 1, 4, 3]), f32in('b', [7, 3, 2])]), [5, 7, 4, 2]);
  assert.deepEqual(shape1(13, node('MatMul', ['a', 'b'], ['y']), [f32in('a', [3]), f32in('b', [2, 3, 4])]), [2, 4]);
  assert.deepEqual(shape1(13, node('MatMul', ['a', 'b'], ['y']), [f32in('a', [2, 3, 4]), f32in('b', [4])]), [2, 3]);
  assert.deepEqual(shape1(13, node('Gemm', ['a', 'b'], ['y'], { transB: int(1) }), [f32in('a', ['batch', 16]), f32in('b', [10, 16])]), ['batch', 10]);
  const shape = Tensor.i64('s', [3], [0, -1, 64]);
  assert.deepEqual(shape1(13, node('Reshape', ['x', 's'], ['y']), [f32in('x', ['batch', 'seq', 8, 8])], [shape]), ['batch', 'seq', 64]);
  assert.deepEqual(shape1(13, node('Reshape', ['x', 's'], ['y']), [f32in('x', ['batch', 4, 2, 64])], [shape]), ['batch', 8, 64]);
  assert.deepEqual(shape1(13, node('Flatten', ['x'], ['y']), [f32in('x', ['batch', 8, 1, 1])]), ['batch', 8]);
  assert.deepEqual(shape1(13, node('Concat', ['a', 'b'], ['y'], { axis: int(1) }), [f32in('a', ['batch', 3]), f32in('b', ['batch', 5])]), ['batch', 8]);
  assert.deepEqual(shape1(13, node('Add', ['a', 'b'], ['y']), [f32in('a', ['batch', 1, 5]), f32in('b', [4, 1])]), ['batch', 4, 5]);
  assert.deepEqual(shape1(13, node('MaxPool', ['x'], ['y'], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), ceil_mode: int(1) }), [f32in('x', ['batch', 4, 6, 6])]), ['batch', 4, 3, 3]);
  assert.deepEqual(shape1(13, node('GlobalAveragePool', ['x'], ['y']), [f32in('x', ['batch', 4, 'H', 'W'])]), ['batch', 4, 1, 1]);
});

test('opset-dependent forms: Split, Squeeze, Reduce*, Slice, Resize, LayerNormalization, BatchNormalization', () => {
  const x = [f32in('x', [2, 6, 4])];
  assert.deepEqual(infer1(18, node('Split', ['x'], ['a', 'b', 'c', 'd'], { axis: int(1), num_outputs: int(4) }), x).map((v) => v.shape), [[2, 2, 4], [2, 2, 4], [2, 2, 4], [2, 0, 4]]);
  assert.deepEqual(infer1(11, node('Split', ['x'], ['a', 'b'], { axis: int(1), split: ints([2, 4]) }), x).map((v) => v.shape), [[2, 2, 4], [2, 4, 4]]);
  assert.deepEqual(infer1(13, node('Split', ['x', 's'], ['a', 'b'], { axis: int(-1) }), x, [Tensor.i64('s', [2], [1, 3])]).map((v) => v.shape), [[2, 6, 1], [2, 6, 3]]);
  assert.deepEqual(shape1(11, node('ReduceMean', ['x'], ['y'], { axes: ints([-1]) }), x), [2, 6, 1]);
  assert.deepEqual(shape1(18, node('ReduceMean', ['x', 'a'], ['y'], { keepdims: int(0) }), x, [Tensor.i64('a', [1], [1])]), [2, 4]);
  assert.deepEqual(shape1(18, node('ReduceMax', ['x', ''], ['y'], { noop_with_empty_axes: int(1) }), x), [2, 6, 4]);
  assert.deepEqual(shape1(13, node('ReduceSum', ['x'], ['y'], { keepdims: int(0) }), x), []);
  assert.deepEqual(shape1(11, node('Squeeze', ['x'], ['y'], { axes: ints([0]) }), [f32in('x', [1, 'seq', 1])]), ['seq', 1]);
  assert.deepEqual(shape1(13, node('Unsqueeze', ['x', 'a'], ['y']), [f32in('x', ['seq'])], [Tensor.i64('a', [2], [0, -1])]), [1, 'seq', 1]);
  const big = Tensor.i64('e', [1], [9223372036854775807n]);
  assert.deepEqual(shape1(13, node('Slice', ['x', 's', 'e', 'a'], ['y']), [f32in('x', ['batch', 'seq', 8])], [Tensor.i64('s', [1], [1]), big, Tensor.i64('a', [1], [2])]), ['batch', 'seq', 7]);
  assert.deepEqual(shape1(13, node('Slice', ['x', 's', 'e', 'a', 't'], ['y']), [f32in('x', [10])], [Tensor.i64('s', [1], [-1]), Tensor.i64('e', [1], [-9223372036854775807n]), Tensor.i64('a', [1], [0]), Tensor.i64('t', [1], [-3])]), [4]);
  assert.deepEqual(shape1(9, node('Slice', ['x'], ['y'], { starts: ints([0]), ends: ints([-1]), axes: ints([1]) }), [f32in('x', [3, 5])]), [3, 4]);
  assert.deepEqual(shape1(19, node('Resize', ['x', '', '', 'sz'], ['y'], { axes: ints([2, 3]), keep_aspect_ratio_policy: str('not_larger') }), [f32in('x', [1, 3, 40, 20])], [Tensor.i64('sz', [2], [20, 20])]), [1, 3, 20, 10]);
  assert.deepEqual(shape1(13, node('Resize', ['x', '', 'sc'], ['y']), [f32in('x', [1, 3, 5, 5])], [Tensor.f32('sc', [4], [1, 1, 1.8, 0.5])]), [1, 3, 9, 2]);
  const ln = infer1(17, node('LayerNormalization', ['x', 'g', 'b'], ['y', 'mean', 'istd'], { axis: int(-1) }), [f32in('x', ['batch', 'seq', 64]), f32in('g', [64]), f32in('b', [64])]);
  assert.deepEqual(ln.map((v) => v.shape), [['batch', 'seq', 64], ['batch', 'seq', 1], ['batch', 'seq', 1]]);
  const bn = infer1(15, node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y', 'rm', 'rv'], { training_mode: int(1) }), [f32in('x', ['batch', 8, 4, 4]), ...['s', 'b', 'm', 'v'].map((n) => f32in(n, [8]))]);
  assert.deepEqual(bn.map((v) => v.shape), [['batch', 8, 4, 4], [8], [8]]);
  const drop = infer1(13, node('Dropout', ['x'], ['y', 'mask']), [f32in('x', ['batch', 8])]);
  assert.deepEqual(drop.map((v) => [v.dtype, v.shape]), [['float32', ['batch', 8]], ['bool', ['batch', 8]]]);
  assert.deepEqual(shape1(20, node('Gelu', ['x'], ['y']), [f32in('x', ['batch', 8])]), ['batch', 8]);
});

test('ConvTranspose, AveragePool count_include_pad, Einsum attention equations', () => {
  const w = Tensor.f32('w', [4, 2, 3, 3], new Float32Array(72));
  assert.deepEqual(shape1(13, node('ConvTranspose', ['x', 'w'], ['y'], { strides: ints([2, 2]), pads: ints([1, 1, 1, 1]), output_padding: ints([1, 1]) }), [f32in('x', ['batch', 4, 8, 8])], [w]), ['batch', 2, 16, 16]);
  assert.deepEqual(shape1(13, node('ConvTranspose', ['x', 'w'], ['y'], { strides: ints([2, 2]), output_shape: ints([17, 17]), group: int(2) }), [f32in('x', ['batch', 4, 8, 8])], [w]), ['batch', 4, 17, 17]);
  assert.deepEqual(shape1(13, node('AveragePool', ['x'], ['y'], { kernel_shape: ints([3]), pads: ints([1, 1]), strides: ints([2]), count_include_pad: int(1) }), [f32in('x', [1, 2, 7])]), [1, 2, 4]);
  const q = f32in('q', ['batch', 12, 'seq', 64]), k = f32in('k', ['batch', 12, 'seq', 64]);
  assert.deepEqual(shape1(12, node('Einsum', ['q', 'k'], ['y'], { equation: str('bhid,bhjd->bhij') }), [q, k]), ['batch', 12, 'seq', 'seq']);
  // implicit output: ellipsis, then the letters used once in alphabetical order ('di', as numpy does)
  assert.deepEqual(shape1(12, node('Einsum', ['a', 'v'], ['y'], { equation: str('...ij,...jd') }), [f32in('a', ['batch', 12, 5, 7]), f32in('v', ['batch', 12, 7, 64])]), ['batch', 12, 64, 5]);
  assert.deepEqual(shape1(12, node('Einsum', ['x'], ['y'], { equation: str('ii') }), [f32in('x', [4, 4])]), []);
});

// ---------------------------------------------------------------- errors and unknown ops

test('inconsistent models fail with a LinfoldError naming the node', () => {
  const w = Tensor.f32('w', [4, 2, 3, 3], new Float32Array(72));
  const conv = () => inferShapes(makeModel(13, [f32in('x', [1, 3, 8, 8])], [node('Conv', ['x', 'w'], ['y'], {}, 'stem_conv')], [w]));
  assert.throws(conv, (e: unknown) => e instanceof LinfoldError && /stem_conv/.test(e.message) && /3 channels/.test(e.message) && !e.message.includes('\n'));
  assert.throws(
    () => inferShapes(makeModel(13, [f32in('a', [2, 3]), f32in('b', [4, 5])], [node('MatMul', ['a', 'b'], ['y'], {}, 'proj')])),
    (e: unknown) => e instanceof LinfoldError && /proj/.test(e.message) && /inner/.test(e.message),
  );
  assert.throws(
    () => inferShapes(makeModel(13, [f32in('x', [2, 3, 4])], [node('Reshape', ['x', 's'], ['y'], {}, 'view')], [Tensor.i64('s', [2], [5, 5])])),
    (e: unknown) => e instanceof LinfoldError && /view/.test(e.message) && /24 elements/.test(e.message),
  );
  assert.throws(
    () => inferShapes(makeModel(13, [f32in('a', [2, 3]), f32in('b', [4, 3])], [node('Add', ['a', 'b'], ['y'])])),
    (e: unknown) => e instanceof LinfoldError && /Add → y/.test(e.message) && /broadcast/.test(e.message),
  );
  const relu = () => makeModel(13, [f32in('x', ['batch', 3])], [node('Relu', ['x'], ['y'])]);
  assert.throws(() => inferShapes(relu(), { inputShapes: { x: [2, 3, 4] } }), (e: unknown) => e instanceof LinfoldError && /'x'/.test(e.message) && /rank 2/.test(e.message));
  assert.throws(() => inferShapes(relu(), { inputShapes: { nope: [2, 3] } }), (e: unknown) => e instanceof LinfoldError && /'nope' is not an input/.test(e.message));
  assert.throws(() => inferShapes(relu(), { inputShapes: { x: [2, 4] } }), (e: unknown) => e instanceof LinfoldError && /'x'/.test(e.message));
  const m = relu();
  inferShapes(m, { inputShapes: { x: [5, 3] } });
  assert.deepEqual(m.graph.inputs[0].shape, [5, 3]);
  assert.deepEqual(m.graph.valueInfo.get('y')?.shape, [5, 3]);
});

test('ops without a rule, or in another domain, are listed and leave their outputs unknown', () => {
  const custom: Node = { ...node('FusedGelu', ['x'], ['g'], {}, 'ms'), domain: 'com.microsoft' };
  const m = makeModel(13, [f32in('x', ['batch', 8])], [custom, node('Relu', ['g'], ['r']), node('NoSuchOp', ['r'], ['z'], {}, 'mystery'), node('Relu', ['x'], ['ok'])]);
  m.graph.outputs = [{ name: 'z' }, { name: 'ok' }];
  const res = inferShapes(m);
  assert.deepEqual(res.unknownOps, [
    { node: 'ms (FusedGelu)', opType: 'FusedGelu', domain: 'com.microsoft' },
    { node: 'mystery (NoSuchOp)', opType: 'NoSuchOp', domain: '' },
  ]);
  assert.equal(m.graph.valueInfo.get('g')?.shape, undefined);
  assert.equal(m.graph.valueInfo.get('r')?.shape, undefined);
  assert.deepEqual(m.graph.valueInfo.get('ok')?.shape, ['batch', 8]);
});

test('symbolic shape arithmetic: Shape → Gather → Concat → Reshape, Range and Expand keep named dims', async () => {
  // the multi-head split a dynamic-axes export emits: x[batch, seq, 64] → [batch, seq, 4, 16] → transpose
  const i64 = (name: string, v: number[], dims = [v.length]) => Tensor.i64(name, dims, v);
  const build = () => makeModel(13, [f32in('x', ['batch', 'seq', 64])], [
    node('Shape', ['x'], ['s']),
    node('Gather', ['s', 'i0'], ['b'], { axis: int(0) }),
    node('Gather', ['s', 'i1'], ['t'], { axis: int(0) }),
    node('Gather', ['s', 'i2'], ['c'], { axis: int(0) }),
    node('Div', ['c', 'heads'], ['hd']),
    node('Unsqueeze', ['b', 'ax0'], ['b1']),
    node('Unsqueeze', ['t', 'ax0'], ['t1']),
    node('Unsqueeze', ['hd', 'ax0'], ['hd1']),
    node('Concat', ['b1', 't1', 'h1', 'hd1'], ['target'], { axis: int(0) }),
    node('Reshape', ['x', 'target'], ['heads4']),
    node('Transpose', ['heads4'], ['q'], { perm: ints([0, 2, 1, 3]) }),
    node('Range', ['zero', 't', 'one'], ['pos']),
    node('Slice', ['s', 'ax0', 'end2', 'ax0'], ['bs']), // [batch, seq]
    node('Expand', ['pos', 'bs'], ['posx']), // position ids for every sequence of the batch
    node('Cast', ['posx'], ['posf'], { to: int(1) }),
    node('Mul', ['b', 'one'], ['b_same']),
    node('Add', ['b', 'one'], ['b_plus']),
  ], [i64('i0', [0], []), i64('i1', [1], []), i64('i2', [2], []), i64('heads', [4], []), i64('ax0', [0]), i64('end2', [2]), i64('h1', [4]), i64('zero', [0], []), i64('one', [1], [])],
  [{ name: 'q' }, { name: 'posf' }, { name: 'b_same' }, { name: 'b_plus' }]);
  const m = build();
  inferShapes(m);
  const vi = (n: string) => m.graph.valueInfo.get(n)?.shape;
  assert.deepEqual(vi('heads4'), ['batch', 'seq', 4, 16]);
  assert.deepEqual(vi('q'), ['batch', 4, 'seq', 16]);
  assert.deepEqual(vi('pos'), ['seq']);
  assert.deepEqual(vi('posx'), ['batch', 'seq']);
  assert.deepEqual(vi('b_same'), []);
  // and every symbol stands for one size under onnxruntime
  const x = randomFeed('x', 'float32', [2, 5, 64], 3);
  const binding = new Map<string, number>();
  const r = await compareWithOrt(build(), { x }, m.graph.valueInfo, 'symbolic chain', binding);
  assert.deepEqual(r.mismatches, []);
  assert.deepEqual([binding.get('batch'), binding.get('seq')], [2, 5]);
  // with concrete input shapes everything resolves, and the partially known values became constants
  const c = build();
  const res = inferShapes(c, { inputShapes: { x: [2, 5, 64] } });
  assert.deepEqual(res.constants.get('target')?.numbers(), [2, 5, 4, 16]);
  assert.deepEqual(c.graph.valueInfo.get('posx')?.shape, [2, 5]);
  assert.deepEqual(res.constants.get('b_plus')?.numbers(), [3]);
});

test('nodes are sorted before inference and constants are returned', () => {
  const m = makeModel(13, [f32in('x', [2, 3, 4])], [
    node('Reshape', ['x', 'shape'], ['y']),
    node('Concat', ['two', 'rest'], ['shape'], { axis: int(0) }),
    node('Constant', [], ['two'], { value_ints: ints([2]) }),
  ], [Tensor.i64('rest', [1], [-1])]);
  m.graph.outputs = [{ name: 'y' }];
  const res = inferShapes(m);
  assert.deepEqual(m.graph.nodes.map((n) => n.opType), ['Constant', 'Concat', 'Reshape']);
  assert.deepEqual(res.constants.get('shape')?.numbers(), [2, -1]);
  assert.deepEqual(m.graph.valueInfo.get('y'), { name: 'y', dtype: 'float32', shape: [2, 12] });
  assert.deepEqual(m.graph.outputs[0].shape, [2, 12]);
});
