// The tfjs executor against onnxruntime-node: every fixture and hand-built graphs for ops the fixtures do not
// cover, on wasm and on cpu.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/import/onnx-io.js';
import type { Model } from '../src/import/ir.js';
import { Tensor } from '../src/import/tensor.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { LinfoldError } from '../src/errors.js';
import { tf, useBackend, listBackends } from '../src/import/tfjs/backends.js';
import { compile, unsupportedOps, feedsToTf, outputsToIR, type CompileOptions } from '../src/import/tfjs/executor.js';
import { checkModel, compareTensors } from '../src/import/tfjs/check.js';
import { randomFeeds } from '../src/import/random.js';
import { GraphBuilder, attr, seededDraws } from '../src/import/graph-builder.js';
import { fixture } from './support/fixtures.js';
import { tfjsOutputs } from './support/run.js';

const FIXTURES = ['resnet_small', 'mobilenetv2_small', 'mobilenetv3_small', 'transformer_gelu', 'bn_training', 'mnist_cnn'];
const fixturePath = (n: string) => fixture(`${n}.onnx`);
const TOL = 1e-4;
const { i, f, s, ints, floats } = attr;

/** Max relative error of each output of tfjs vs onnxruntime on `feeds`. */
async function parity(model: Model, feeds: Record<string, Tensor>, opts?: CompileOptions): Promise<Record<string, number>> {
  const ref = await runOrt(await ortSession(model), feeds);
  const got = tfjsOutputs(model, feeds, opts);
  const res: Record<string, number> = {};
  for (const o of model.graph.outputs) res[o.name] = compareTensors(got[o.name], ref[o.name]).maxRelError;
  return res;
}

async function assertParity(model: Model, feeds: Record<string, Tensor>, label: string, opts?: CompileOptions): Promise<void> {
  const before = tf.memory().numTensors;
  const errs = await parity(model, feeds, opts);
  for (const [name, e] of Object.entries(errs)) assert.ok(e <= TOL, `${label}: output ${name} rel error ${e}`);
  assert.equal(tf.memory().numTensors, before, `${label}: tensors leaked`);
}

const rnd = seededDraws(7);
const randT = (name: string, dims: number[], scale = 1) => Tensor.f32(name, dims, rnd.normals(dims.reduce((a, b) => a * b, 1), scale));

/** A one-op (or small) graph on a float input, weights as initializers. */
function single(opset: number, inShape: number[], build: (g: GraphBuilder, x: string) => string | string[]): { model: Model; feeds: Record<string, Tensor> } {
  const g = new GraphBuilder();
  const x = g.input('x', inShape);
  const outs = build(g, x);
  for (const o of Array.isArray(outs) ? outs : [outs]) g.output(o);
  return { model: g.model(opset), feeds: { x: randT('x', inShape) } };
}

const w = (g: GraphBuilder, name: string, dims: number[], scale = 0.3) => g.init(dims, rnd.normals(dims.reduce((a, b) => a * b, 1), scale), name);

/** Hand-built graphs: name → model + feeds. */
function cases(): [string, () => { model: Model; feeds: Record<string, Tensor> }][] {
  return [
    ['Conv1D groups+dilation+pads', () => single(13, [2, 4, 20], (g, x) =>
      g.op('Conv', [x, w(g, 'W', [6, 2, 3]), w(g, 'B', [6])], { group: i(2), dilations: ints([2]), pads: ints([2, 1]), kernel_shape: ints([3]) }))],
    ['Conv2D SAME_UPPER stride 2', () => single(13, [2, 3, 11, 9], (g, x) =>
      g.op('Conv', [x, w(g, 'W', [5, 3, 3, 3])], { auto_pad: s('SAME_UPPER'), strides: ints([2, 2]) }))],
    ['Conv2D SAME_LOWER, asymmetric kernel', () => single(13, [1, 3, 10, 7], (g, x) =>
      g.op('Conv', [x, w(g, 'W', [4, 3, 2, 3])], { auto_pad: s('SAME_LOWER'), strides: ints([2, 1]) }))],
    ['Conv2D stride 2 and dilation 2 together', () => single(13, [1, 2, 13, 13], (g, x) =>
      g.op('Conv', [x, w(g, 'W', [3, 2, 3, 3])], { strides: ints([2, 2]), dilations: ints([2, 2]), pads: ints([1, 2, 2, 1]) }))],
    ['depthwise conv, multiplier 2', () => single(13, [2, 4, 9, 9], (g, x) =>
      g.op('Conv', [x, w(g, 'W', [8, 1, 3, 3]), w(g, 'B', [8])], { group: i(4), pads: ints([1, 1, 1, 1]), strides: ints([2, 2]) }))],
    ['grouped conv (group 2) → Relu → depthwise dilated', () => single(13, [1, 4, 12, 12], (g, x) => {
      const c = g.op('Conv', [x, w(g, 'W1', [6, 2, 3, 3])], { group: i(2), pads: ints([1, 1, 1, 1]) });
      const r = g.op('Relu', [c]);
      return g.op('Conv', [r, w(g, 'W2', [6, 1, 3, 3])], { group: i(6), dilations: ints([2, 2]), pads: ints([2, 2, 2, 2]) });
    })],
    ['ConvTranspose stride 2, pads, output_padding', () => single(13, [2, 3, 5, 6], (g, x) =>
      g.op('ConvTranspose', [x, w(g, 'W', [3, 4, 3, 3]), w(g, 'B', [4])], { strides: ints([2, 2]), pads: ints([1, 0, 1, 1]), output_padding: ints([1, 0]) }))],
    ['ConvTranspose group 2, dilation 2', () => single(13, [1, 4, 5, 5], (g, x) =>
      g.op('ConvTranspose', [x, w(g, 'W', [4, 3, 3, 3])], { group: i(2), dilations: ints([2, 2]), strides: ints([1, 1]) }))],
    ['ConvTranspose output_shape', () => single(13, [1, 2, 4, 4], (g, x) =>
      g.op('ConvTranspose', [x, w(g, 'W', [2, 3, 3, 3])], { strides: ints([2, 2]), output_shape: ints([9, 8]) }))],
    ['ConvTranspose 1-D', () => single(13, [2, 3, 7], (g, x) =>
      g.op('ConvTranspose', [x, w(g, 'W', [3, 2, 4])], { strides: ints([3]), pads: ints([1, 2]) }))],
    ['Conv → BatchNormalization → PRelu → MaxPool ceil → Conv (NHWC chain)', () => single(15, [2, 3, 15, 15], (g, x) => {
      const c = g.op('Conv', [x, w(g, 'W', [6, 3, 3, 3]), w(g, 'B', [6])], { pads: ints([1, 1, 1, 1]) });
      const var_ = g.init([6], Array.from({ length: 6 }, () => 0.5 + rnd.uniform()), 'var');
      const bn = g.op('BatchNormalization', [c, w(g, 'sc', [6]), w(g, 'bi', [6]), w(g, 'mean', [6]), var_], { epsilon: f(1e-3) });
      const p = g.op('PRelu', [bn, w(g, 'slope', [6, 1, 1])]);
      const mp = g.op('MaxPool', [p], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), ceil_mode: i(1) });
      return g.op('Conv', [mp, w(g, 'W2', [4, 6, 1, 1])]);
    })],
    ['AveragePool pads without count_include_pad; GlobalMaxPool', () => single(13, [2, 3, 9, 8], (g, x) => {
      const a = g.op('AveragePool', [x], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]), strides: ints([2, 2]) });
      return [a, g.op('GlobalMaxPool', [x])];
    })],
    ['AveragePool count_include_pad, MaxPool 1-D', () => single(13, [2, 3, 10], (g, x) => [
      g.op('AveragePool', [x], { kernel_shape: ints([4]), pads: ints([2, 1]), count_include_pad: i(1) }),
      g.op('MaxPool', [x], { kernel_shape: ints([3]), strides: ints([2]), pads: ints([1, 1]) }),
    ])],
    ['BatchNormalization on [N, C]; LeakyRelu; Elu; Softplus', () => single(15, [5, 4], (g, x) => {
      const var_ = g.init([4], [0.5, 1, 2, 0.25], 'var');
      const bn = g.op('BatchNormalization', [x, w(g, 'sc', [4]), w(g, 'bi', [4]), w(g, 'mean', [4]), var_]);
      return [g.op('LeakyRelu', [bn], { alpha: f(0.2) }), g.op('Elu', [bn], { alpha: f(0.7) }), g.op('Softplus', [bn])];
    })],
    ['Clip attribute form (opset 6) and input form (opset 13)', () => {
      const a = single(6, [3, 5], (g, x) => g.op('Clip', [x], { min: f(-0.5), max: f(0.7) }));
      return a;
    }],
    ['Clip input form; Sigmoid; Tanh; HardSigmoid; HardSwish', () => single(14, [3, 5], (g, x) => {
      const lo = g.init([], [-0.3], 'lo');
      return [g.op('Clip', [x, lo, '']), g.op('Sigmoid', [x]), g.op('Tanh', [x]), g.op('HardSigmoid', [x], { alpha: f(0.3), beta: f(0.4) }), g.op('HardSwish', [x])];
    })],
    ['Gelu (opset 20), erf and tanh forms', () => single(20, [4, 6], (g, x) => [g.op('Gelu', [x]), g.op('Gelu', [x], { approximate: s('tanh') })])],
    ['Softmax/LogSoftmax opset 11 (flattening at axis 1)', () => single(11, [2, 3, 4], (g, x) =>
      [g.op('Softmax', [x], { axis: i(1) }), g.op('LogSoftmax', [x], { axis: i(1) })])],
    ['Softmax/LogSoftmax opset 13 (axis 1)', () => single(13, [2, 3, 4], (g, x) =>
      [g.op('Softmax', [x], { axis: i(1) }), g.op('LogSoftmax', [x], { axis: i(-1) })])],
    ['Gemm transA/transB, alpha, beta', () => single(13, [4, 3], (g, x) =>
      g.op('Gemm', [x, w(g, 'B', [5, 4]), w(g, 'C', [5])], { transA: i(1), transB: i(1), alpha: f(0.5), beta: f(2) }))],
    ['MatMul broadcasting and 1-D operands', () => single(13, [2, 3, 4, 5], (g, x) => [
      g.op('MatMul', [x, w(g, 'B3', [3, 5, 2])]),
      g.op('MatMul', [x, w(g, 'v', [5])]),
      g.op('MatMul', [w(g, 'u', [4]), x]),
    ])],
    ['LayerNormalization over the last two axes', () => single(17, [2, 3, 4], (g, x) =>
      g.op('LayerNormalization', [x, w(g, 'sc', [3, 4]), w(g, 'b', [3, 4])], { axis: i(-2), epsilon: f(1e-3) }))],
    ['Einsum attention forms', () => {
      const g = new GraphBuilder();
      const q = g.input('q', [2, 3, 5, 4]), k = g.input('k', [2, 3, 6, 4]), v = g.input('v', [2, 3, 6, 4]);
      const sc = g.op('Einsum', [q, k], { equation: s('bhqd,bhkd->bhqk') });
      const p = g.op('Softmax', [sc], { axis: i(-1) });
      const o = g.op('Einsum', [p, v], { equation: s('bhqk,bhkd->bhqd') });
      const lin = g.op('Einsum', [o, w(g, 'Wl', [7, 4])], { equation: s('...d,jd->...j') });
      const bm = g.op('Einsum', [q, k], { equation: s('bhid,bhjd->bhij') });
      const tr = g.op('Einsum', [q], { equation: s('bhqd->bdqh') });
      const red = g.op('Einsum', [q, v], { equation: s('bhqd,bhkd->bh') });
      [o, lin, bm, tr, red].forEach((n) => g.output(n));
      return { model: g.model(13), feeds: { q: randT('q', [2, 3, 5, 4]), k: randT('k', [2, 3, 6, 4]), v: randT('v', [2, 3, 6, 4]) } };
    }],
    ['Reductions: attribute axes (opset 13) and input axes (opset 18)', () => {
      const a = single(18, [2, 3, 4], (g, x) => {
        const ax = g.initI64([1, -1], 'ax');
        return [g.op('ReduceMean', [x, ax]), g.op('ReduceSum', [x, ax], { keepdims: i(0) }), g.op('ReduceMax', [x, ax]), g.op('ReduceSum', [x])];
      });
      return a;
    }],
    ['Reductions opset 13', () => single(13, [2, 3, 4], (g, x) => [
      g.op('ReduceMean', [x], { axes: ints([1]) }), g.op('ReduceMax', [x], { axes: ints([0, 2]), keepdims: i(0) }),
      g.op('ReduceSum', [x, g.initI64([2], 'ax')]),
    ])],
    ['Resize nearest (asymmetric/floor) and linear (half_pixel), scales and sizes', () => single(13, [1, 2, 5, 4], (g, x) => {
      const roi = g.init([0], [], 'roi');
      const scales = g.init([4], [1, 1, 2, 1.5], 'scales');
      const none = g.init([0], [], 'none');
      const sizes = g.initI64([1, 2, 7, 3], 'sizes');
      return [
        g.op('Resize', [x, roi, scales], { mode: s('nearest'), coordinate_transformation_mode: s('asymmetric'), nearest_mode: s('floor') }),
        g.op('Resize', [x, roi, scales], { mode: s('linear') }),
        g.op('Resize', [x, roi, none, sizes], { mode: s('linear'), coordinate_transformation_mode: s('align_corners') }),
        g.op('Resize', [x, roi, none, sizes], { mode: s('nearest') }),
      ];
    })],
    ['Pad constant/reflect/edge; Expand; Tile', () => single(13, [2, 3, 4], (g, x) => {
      const pads = g.initI64([0, 1, 2, 0, 2, 1], 'pads');
      const v = g.init([], [0.5], 'v');
      const shape = g.initI64([2, 2, 3, 4], 'shape');
      return [
        g.op('Pad', [x, pads, v]), g.op('Pad', [x, pads], { mode: s('reflect') }), g.op('Pad', [x, pads], { mode: s('edge') }),
        g.op('Expand', [x, shape]), g.op('Tile', [x, g.initI64([1, 2, 2], 'reps')]),
      ];
    })],
    ['Where/Equal/Range/Cast/ConstantOfShape', () => {
      const g = new GraphBuilder();
      const x = g.input('x', [3, 4]);
      const ids = g.input('ids', [3, 4], 'int64');
      const eq = g.op('Equal', [ids, g.initI64([2], 'two', [])]);
      const wh = g.op('Where', [eq, x, g.init([1], [-1], 'z')]);
      const r = g.op('Range', [g.init([], [0.5], 'st'), g.init([], [3], 'lim'), g.init([], [0.75], 'd')]);
      const ri = g.op('Range', [g.initI64([1], 'sti', []), g.initI64([9], 'limi', []), g.initI64([3], 'di', [])]);
      const c = g.op('Cast', [ids], { to: i(1) });
      const sh = g.op('Shape', [x]);
      const cs = g.op('ConstantOfShape', [sh], { value: attr.t(Tensor.f32('v', [1], [0.25])) });
      [wh, r, c, cs].forEach((o) => g.output(o));
      g.output(ri, 'int64');
      const idv = Array.from({ length: 12 }, () => Math.floor(rnd.uniform() * 4));
      return { model: g.model(13), feeds: { x: randT('x', [3, 4]), ids: Tensor.i64('ids', [3, 4], idv) } };
    }],
    ['Slice steps (negative, >1), Split, Squeeze/Unsqueeze (inputs), Gather negative indices', () => single(13, [4, 6, 5], (g, x) => {
      const sl = g.op('Slice', [x, g.initI64([-1, 0], 'st'), g.initI64([-100, 6], 'en'), g.initI64([0, 1], 'ax'), g.initI64([-2, 3], 'sp')]);
      const [a, b] = g.node('Split', [x, g.initI64([2, 4], 'split')], { axis: i(1) }, 2);
      const un = g.op('Unsqueeze', [b, g.initI64([0, -1], 'uax')]);
      const sq = g.op('Squeeze', [un, g.initI64([0], 'sax')]);
      const ga = g.op('Gather', [x, g.initI64([-1, 0, 2, -2], 'idx', [2, 2])], { axis: i(1) });
      return [sl, a, sq, ga];
    })],
    ['Squeeze/Unsqueeze/Split attribute forms (opset 11)', () => single(11, [1, 6, 5], (g, x) => {
      const sq = g.op('Squeeze', [x], { axes: ints([0]) });
      const un = g.op('Unsqueeze', [sq], { axes: ints([2]) });
      const [a, b, c] = g.node('Split', [un], { axis: i(0), split: ints([1, 2, 3]) }, 3);
      return [a, b, c];
    })],
    ['dynamic shape chain: Shape → Gather → Unsqueeze → Concat → Reshape', () => single(13, [3, 4, 5], (g, x) => {
      const sh = g.op('Shape', [x]);
      const n = g.op('Gather', [sh, g.initI64([0], 'zero', [])], { axis: i(0) });
      const nu = g.op('Unsqueeze', [n, g.initI64([0], 'a0')]);
      const shape = g.op('Concat', [nu, g.initI64([-1], 'm1')], { axis: i(0) });
      const fl = g.op('Reshape', [x, shape]);
      return g.op('Flatten', [g.op('Transpose', [g.op('Reshape', [fl, g.initI64([0, 5, 4], 's2')])], { perm: ints([0, 2, 1]) })], { axis: i(-1) });
    })],
    ['NHWC mixing: Conv branches concatenated, residual Add with an NCHW tensor, Mul by channel scale', () => single(13, [2, 4, 6, 6], (g, x) => {
      const a = g.op('Conv', [x, w(g, 'Wa', [3, 4, 1, 1])]);
      const b = g.op('Conv', [x, w(g, 'Wb', [5, 4, 3, 3])], { pads: ints([1, 1, 1, 1]) });
      const cat = g.op('Concat', [a, b], { axis: i(1) });
      const proj = g.op('Conv', [cat, w(g, 'Wc', [4, 8, 1, 1])]);
      const res = g.op('Add', [proj, x]);
      const sc = g.op('Mul', [res, w(g, 'scale', [4, 1, 1])]);
      const sl = g.op('Slice', [sc, g.initI64([1], 'st'), g.initI64([3], 'en'), g.initI64([1], 'ax')]);
      return [g.op('Relu', [sc]), sl, g.op('Add', [res, w(g, 'row', [6])])];
    })],
  ];
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`executor on ${backend}`, () => {
    before(async () => {
      await useBackend(backend);
    });

    for (const name of FIXTURES) {
      test(`fixture ${name}: parity with onnxruntime`, async () => {
        const model = loadModel(fixturePath(name));
        const feeds = randomFeeds(model.graph, { seed: 3, otherDims: 8 });
        for (const [k, v] of Object.entries(feeds)) if (v.dims[0] === 2) feeds[k] = randomFeeds(model.graph, { inputShapes: { [k]: [3, ...v.dims.slice(1)] }, seed: 3, otherDims: 8 })[k];
        await assertParity(model, feeds, name);
        await assertParity(model, feeds, `${name} (no layout pass)`, { layout: false });
        await assertParity(model, feeds, `${name} (no constant folding)`, { foldConstants: false });
      });
    }

    for (const [name, make] of cases()) {
      test(`graph: ${name}`, async () => {
        const { model, feeds } = make();
        await assertParity(model, feeds, name);
        await assertParity(model, feeds, `${name} (no layout pass)`, { layout: false });
      });
    }

    test('checkModel reports ops, backend and errors', async () => {
      const r = await checkModel(loadModel(fixturePath('resnet_small')), { backend });
      assert.equal(r.backend, backend);
      assert.ok(r.ok, JSON.stringify(r));
      assert.deepEqual(r.ops.find((o) => o.op === 'Conv'), { op: 'Conv', count: 6, supported: true });
      assert.ok(r.outputs[0].maxRelError < TOL);
    });
  });
}

describe('executor API', () => {
  before(async () => {
    await useBackend('wasm');
  });

  test('unsupported ops: one error naming all of them', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [2]);
    const a = g.op('FancyOp', [x]);
    const b = g.op('OtherOp', [a]);
    g.output(g.op('Relu', [g.op('FancyOp', [b])]));
    const model = g.model(13);
    assert.deepEqual(unsupportedOps(model).map((u) => [u.op, u.count]), [['FancyOp', 2], ['OtherOp', 1]]);
    assert.throws(() => compile(model), (e: Error) => e instanceof LinfoldError && /FancyOp/.test(e.message) && /OtherOp/.test(e.message));
  });

  test('variables: weights trainable, shapes and scalars constant, running stats non-trainable', () => {
    const t = loadModel(fixturePath('transformer_gelu'));
    const exe = compile(t);
    try {
      const names = [...exe.variables.keys()];
      assert.ok(names.includes('tok.weight') && names.includes('pos'), 'embedding and positional table are trainable');
      assert.ok(names.some((n) => n.startsWith('onnx::MatMul')), 'MatMul matrices are trainable');
      assert.ok(names.includes('layers.0.ln1.weight') && names.includes('layers.0.attn.q.bias'));
      for (const [name, init] of t.graph.initializers) if (init.dtype !== 'float32') assert.ok(!exe.variables.has(name), `${name} (${init.dtype}) is constant`);
      assert.equal(exe.trainableVariables.length, exe.variables.size);
    } finally {
      exe.dispose();
    }
    const bn = compile(loadModel(fixturePath('bn_training')));
    try {
      const mean = bn.variables.get('features.1.running_mean')!;
      assert.ok(mean && !mean.trainable, 'running mean is a non-trainable variable');
      assert.ok(bn.variables.get('features.1.weight')!.trainable);
      assert.ok(!bn.trainableVariables.includes(mean));
    } finally {
      bn.dispose();
    }
  });

  test('BatchNormalization training mode: batch statistics and running-stat updates', async () => {
    const model = loadModel(fixturePath('bn_training'));
    const exe = compile(model);
    const x = tf.randomNormal([4, 1, 28, 28], 0, 1, 'float32', 1);
    try {
      const momentum = 0.9;
      const m0 = exe.variables.get('features.1.running_mean')!.dataSync().slice();
      const conv = exe.run({ input: x }, { outputs: ['/features/features.0/Conv_output_0'] })['/features/features.0/Conv_output_0'];
      const batchMean = tf.tidy(() => tf.mean(conv, [0, 2, 3]).dataSync().slice());
      conv.dispose();
      const inference = exe.run({ input: x }, { training: false }).logits;
      const training = exe.run({ input: x }, { training: true, updateStats: true }).logits;
      const m1 = exe.variables.get('features.1.running_mean')!.dataSync();
      for (let c = 0; c < m1.length; c++) assert.ok(Math.abs(m1[c] - (m0[c] * momentum + batchMean[c] * (1 - momentum))) < 1e-5, `channel ${c}`);
      assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(inference, training))).dataSync()[0]) > 1e-3, 'batch statistics differ from running ones');
      tf.dispose([inference, training]);
    } finally {
      x.dispose();
      exe.dispose();
    }
  });

  test('syncToModel / toModel write trained weights back (onnxruntime agrees)', async () => {
    const model = loadModel(fixturePath('resnet_small'));
    const exe = compile(model);
    try {
      for (const v of exe.trainableVariables) v.assign(tf.tidy(() => tf.mul(v, 1.1)));
      const trained = exe.toModel();
      assert.notEqual(trained.graph.initializers, model.graph.initializers);
      const feeds = randomFeeds(model.graph, { seed: 5, otherDims: 8 });
      const ref = await runOrt(await ortSession(trained), feeds);
      const tfFeeds = feedsToTf(feeds);
      const out = exe.run(tfFeeds);
      const got = outputsToIR(exe, out);
      tf.dispose([...Object.values(out), ...Object.values(tfFeeds)]);
      assert.ok(compareTensors(got.logits, ref.logits).maxRelError < TOL);
      const orig = await runOrt(await ortSession(model), feeds);
      assert.ok(compareTensors(orig.logits, ref.logits).maxRelError > 1e-3, 'the original model is unchanged');
    } finally {
      exe.dispose();
    }
  });

  test('run() works inside tf.grad and returns only caller-owned tensors', () => {
    const exe = compile(loadModel(fixturePath('resnet_small')));
    const x = tf.randomNormal([2, 1, 28, 28], 0, 1, 'float32', 2);
    try {
      const before = tf.memory().numTensors;
      const g = tf.grad((inp: tf.Tensor) => tf.sum(exe.run({ input: inp }).logits))(x);
      assert.deepEqual(g.shape, [2, 1, 28, 28]);
      assert.ok(tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) > 0);
      g.dispose();
      assert.equal(tf.memory().numTensors, before);
      const out = exe.run({ input: x }, { outputs: ['input', 'logits'] });
      out.input.dispose();
      assert.ok(!x.isDisposed, 'the feed itself is not handed out');
      tf.dispose(Object.values(out));
    } finally {
      x.dispose();
      exe.dispose();
    }
  });

  test('weights changed by assign() are used by the next inference run (derived filters are refreshed)', () => {
    const exe = compile(loadModel(fixturePath('resnet_small')));
    const x = tf.randomNormal([2, 1, 28, 28], 0, 1, 'float32', 3);
    try {
      const logits = () => tf.tidy(() => exe.run({ input: x }).logits.dataSync() as Float32Array);
      logits();
      const before = tf.memory().numTensors;
      for (const v of exe.trainableVariables) {
        const next = tf.mul(v, 1.5);
        v.assign(next);
        next.dispose();
      }
      const got = logits();
      assert.equal(tf.memory().numTensors, before, 'one derived tensor per weight, replaced, not added');
      const fresh = compile(exe.toModel());
      try {
        const want = tf.tidy(() => fresh.run({ input: x }).logits.dataSync() as Float32Array);
        let err = 0;
        want.forEach((w, k) => (err = Math.max(err, Math.abs(w - got[k]) / (1e-3 + Math.abs(w)))));
        assert.ok(err < 1e-4, `after assign: rel error ${err} against a fresh compile`);
      } finally {
        fresh.dispose();
      }
    } finally {
      x.dispose();
      exe.dispose();
    }
  });

  test('missing feed: clear error', () => {
    const g = new GraphBuilder();
    g.output(g.op('Relu', [g.input('x', [2])]));
    const exe = compile(g.model(13));
    try {
      assert.throws(() => exe.run({}), /input 'x' was not fed/);
    } finally {
      exe.dispose();
    }
  });

  test('backends: listBackends reports wasm and cpu available, tfjs-node as optional', async () => {
    const list = listBackends();
    assert.deepEqual(list.map((b) => b.name), ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']);
    assert.ok(list.find((b) => b.name === 'wasm')!.available);
    assert.ok(list.find((b) => b.name === 'cpu')!.available);
    const tfNode = list.find((b) => b.name === 'tensorflow')!;
    if (!tfNode.available) {
      assert.match(tfNode.reason!, /tfjs-node/);
      await assert.rejects(useBackend('tensorflow'), (e: Error) => e instanceof LinfoldError && /tfjs-node/.test(e.message));
    }
    assert.equal(await useBackend('auto'), tfNode.available ? 'tensorflow' : 'wasm');
    assert.ok(listBackends().find((b) => b.chosen));
  });
});
