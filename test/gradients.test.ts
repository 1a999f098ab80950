// Gradients: (1) linfold's Conv2D / depthwise gradients (registered for wasm, which lacks the backprop kernels)
// against tfjs' own cpu gradients on random geometries; (2) every differentiable op through the executor
// against central finite differences; (3) no tensor leaks over 200 training steps.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, useBackend } from '../src/import/tfjs/backends.js';
import {
  originalGradient, conv2dInputGrad, conv2dFilterGrad, depthwiseInputGrad, depthwiseFilterGrad,
} from '../src/import/tfjs/gradients.js';
import { dilateAxes } from '../src/import/tfjs/conv-util.js';
import { im2colTransposed, PRELU_GRAD } from '../src/import/tfjs/wasm-kernels.js';
import { compile } from '../src/import/tfjs/executor.js';
import { GraphBuilder, attr, seededDraws } from '../src/import/graph-builder.js';
import { loadModel } from '../src/import/onnx-io.js';
import type { Model } from '../src/import/ir.js';
import { maxRel } from './support/numeric.js';
import { fixture } from './support/fixtures.js';

const { i, f, s, ints } = attr;
const rnd = seededDraws(11);

// ---------------------------------------------------------------------------------------------------------
// (1) conv gradients vs tfjs' built-in (cpu) gradients
// ---------------------------------------------------------------------------------------------------------
type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];
interface ConvCase { n: number; h: number; w: number; c: number; m: number; kh: number; kw: number; stride: [number, number]; dil: [number, number]; pad: Pad; depthwise: boolean }

function randomCases(count: number, depthwise: boolean): ConvCase[] {
  const r = seededDraws(depthwise ? 5 : 3);
  const pick = <T>(xs: T[]) => xs[Math.floor(r.uniform() * xs.length)];
  const out: ConvCase[] = [];
  while (out.length < count) {
    const kh = pick([1, 2, 3, 5]), kw = pick([1, 3, 4]);
    const dilated = r.uniform() < 0.35;
    // strides and dilations together in half of the dilated cases (tfjs' own convs take one or the other)
    const stride: [number, number] = dilated && r.uniform() < 0.5 ? [1, 1] : [pick([1, 2, 3]), pick([1, 2])];
    const dil: [number, number] = dilated ? [pick([1, 2, 3]), pick([2, 3])] : [1, 1];
    const h = pick([5, 7, 9, 12]), w = pick([4, 6, 11]);
    const pad: Pad = pick<Pad>(['same', 'valid', [[0, 0], [pick([0, 1, 2]), pick([0, 1, 3])], [pick([0, 1]), pick([0, 2])], [0, 0]]]);
    if (pad === 'valid' && ((kh - 1) * dil[0] + 1 > h || (kw - 1) * dil[1] + 1 > w)) continue;
    if (Array.isArray(pad) && ((kh - 1) * dil[0] + 1 > h + pad[1][0] + pad[1][1] || (kw - 1) * dil[1] + 1 > w + pad[2][0] + pad[2][1])) continue;
    const c = pick([1, 2, 3, 4]);
    out.push({ n: pick([1, 2, 3]), h, w, c, m: depthwise ? pick([1, 2]) : pick([1, 3, 5]), kh, kw, stride, dil, pad, depthwise });
  }
  return out;
}

const label = (k: ConvCase) => `${k.depthwise ? 'depthwise' : 'conv'} x[${k.n},${k.h},${k.w},${k.c}] k${k.kh}x${k.kw}→${k.m} s${k.stride} d${k.dil} pad ${JSON.stringify(k.pad)}`;

/** Reference gradients from tfjs' original gradient functions on cpu (dilations via a zero-inserted kernel). */
function reference(k: ConvCase, x: tf.Tensor4D, wt: tf.Tensor4D, dy: tf.Tensor4D): { dx: Float32Array; dw: Float32Array } {
  return tf.tidy(() => {
    const kernel = k.depthwise ? 'DepthwiseConv2dNative' : 'Conv2D';
    const grad = originalGradient(kernel)!;
    const wd = dilateAxes(wt, [0, 1], k.dil);
    const attrs = { strides: k.stride, pad: k.pad, dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined };
    const g = grad(dy, [x, wd], attrs);
    const dwd = g.filter();
    const [kh, kw] = wt.shape;
    const dw = tf.stridedSlice(dwd, [0, 0, 0, 0], [(kh - 1) * k.dil[0] + 1, (kw - 1) * k.dil[1] + 1, wt.shape[2], wt.shape[3]], [k.dil[0], k.dil[1], 1, 1]);
    return { dx: g.x().dataSync() as Float32Array, dw: dw.dataSync() as Float32Array };
  });
}

describe('conv gradients vs tfjs built-ins', () => {
  for (const depthwise of [false, true]) {
    test(`${depthwise ? 'depthwise' : 'Conv2D'}: wasm (registered) and cpu (both variants) on random geometries`, async () => {
      const ks = randomCases(depthwise ? 16 : 24, depthwise);
      for (const k of ks) {
        const xv = rnd.normals(k.n * k.h * k.w * k.c);
        const wv = rnd.normals(k.kh * k.kw * k.c * k.m);
        await useBackend('cpu');
        const x = tf.tensor4d(xv, [k.n, k.h, k.w, k.c]);
        const wt = tf.tensor4d(wv, [k.kh, k.kw, k.c, k.m]);
        // with strides and dilations, the forward conv takes the zero-inserted kernel
        const both = k.stride.some((v) => v > 1) && k.dil.some((v) => v > 1);
        const fwd = (a: tf.Tensor4D, b: tf.Tensor4D) => {
          const kb = (both ? dilateAxes(b, [0, 1], k.dil) : b) as tf.Tensor4D, d = both ? 1 : k.dil;
          return k.depthwise ? tf.depthwiseConv2d(a, kb, k.stride, k.pad, 'NHWC', d) : tf.conv2d(a, kb, k.stride, k.pad, 'NHWC', d);
        };
        const yShape = fwd(x, wt).shape;
        const dyv = rnd.normals(yShape.reduce((a, b) => a * b, 1));
        const dy = tf.tensor4d(dyv, yShape);
        const ref = reference(k, x, wt, dy);
        const attrs = { strides: k.stride, pad: k.pad, dataFormat: 'NHWC', dilations: k.dil };
        // linfold's variants on cpu, called directly
        const mineDx = (k.depthwise ? depthwiseInputGrad : conv2dInputGrad)(x, wt, dy, attrs);
        const mineDw = (k.depthwise ? depthwiseFilterGrad : conv2dFilterGrad)(x, wt, dy, attrs);
        assert.ok(maxRel(mineDx.dataSync(), ref.dx) < 1e-4, `${label(k)}: cpu input gradient`);
        assert.ok(maxRel(mineDw.dataSync(), ref.dw) < 1e-4, `${label(k)}: cpu filter gradient`);
        // the registered gradient on cpu (whichever variant the policy picks)
        const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(fwd(a as tf.Tensor4D, b as tf.Tensor4D), dy)))([x, wt]);
        assert.ok(maxRel(gx.dataSync(), ref.dx) < 1e-4, `${label(k)}: cpu tf.grads input`);
        assert.ok(maxRel(gw.dataSync(), ref.dw) < 1e-4, `${label(k)}: cpu tf.grads filter`);
        tf.dispose([x, wt, dy, mineDx, mineDw, gx, gw]);
        // wasm: the registered gradient through tf.grads
        await useBackend('wasm');
        const xw = tf.tensor4d(xv, [k.n, k.h, k.w, k.c]);
        const ww = tf.tensor4d(wv, [k.kh, k.kw, k.c, k.m]);
        const dyw = tf.tensor4d(dyv, yShape);
        const [wx, wwg] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(fwd(a as tf.Tensor4D, b as tf.Tensor4D), dyw)))([xw, ww]);
        assert.ok(maxRel(wx.dataSync(), ref.dx) < 1e-4, `${label(k)}: wasm input gradient`);
        assert.ok(maxRel(wwg.dataSync(), ref.dw) < 1e-4, `${label(k)}: wasm filter gradient`);
        tf.dispose([xw, ww, dyw, wx, wwg]);
      }
    });
  }
});

describe("linfold's JS kernels (wasm-kernels.ts) vs tfjs ops on cpu", () => {
  test('transposed im2col on random geometries (strides, dilations, pads) vs a one-hot convolution', async () => {
    const r = seededDraws(23);
    const pick = <T>(xs: T[]) => xs[Math.floor(r.uniform() * xs.length)];
    for (let k = 0; k < 20; k++) {
      const [n, h, w, c] = [pick([1, 2]), pick([4, 7, 9]), pick([5, 8]), pick([1, 2, 3])];
      const [kh, kw] = [pick([1, 2, 3]), pick([1, 3])];
      const [sh, sw, dh, dw] = [pick([1, 2, 3]), pick([1, 2]), pick([1, 2]), pick([1, 3])];
      const [top, left] = [pick([0, 1, 2]), pick([0, 1])];
      const oh = Math.floor((h + top + pick([0, 1]) - ((kh - 1) * dh + 1)) / sh) + 1;
      const ow = Math.floor((w + left + pick([0, 2]) - ((kw - 1) * dw + 1)) / sw) + 1;
      if (oh < 1 || ow < 1) continue;
      const xv = rnd.normals(n * h * w * c);
      const results: Float32Array[] = [];
      for (const backend of ['cpu', 'wasm'] as const) {
        await useBackend(backend);
        const x = tf.tensor4d(xv, [n, h, w, c]);
        const p = im2colTransposed(x, { kh, kw, sh, sw, dh, dw, top, left, oh, ow });
        assert.deepEqual(p.shape, [kh * kw * c, n * oh * ow]);
        results.push(p.dataSync() as Float32Array);
        tf.dispose([x, p]);
      }
      // reference: the patches as a convolution with a one-hot filter (a zero-inserted kernel for dilations; x
      // padded enough for any geometry, then the outputs that exist cut out with a strided slice)
      await useBackend('cpu');
      const ref = tf.tidy(() => {
        const K = kh * kw * c;
        const onehot = new Float32Array(K * K);
        for (let t = 0; t < K; t++) onehot[t * K + t] = 1;
        const f = dilateAxes(tf.tensor4d(onehot, [kh, kw, c, K]), [0, 1], [dh, dw]) as tf.Tensor4D;
        const xp = tf.pad(tf.tensor4d(xv, [n, h, w, c]), [[0, 0], [top, (oh - 1) * sh + (kh - 1) * dh + 1], [left, (ow - 1) * sw + (kw - 1) * dw + 1], [0, 0]]);
        const full = tf.conv2d(xp as tf.Tensor4D, f, 1, 'valid');
        const y = tf.stridedSlice(full, [0, 0, 0, 0], [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, K], [1, sh, sw, 1]);
        return tf.transpose(tf.reshape(y, [n * oh * ow, K])).dataSync() as Float32Array;
      });
      const what = `x[${n},${h},${w},${c}] k${kh}x${kw} s${sh},${sw} d${dh},${dw} pad ${top},${left} → ${oh}x${ow}`;
      assert.ok(maxRel(results[0], ref) < 1e-6, `cpu im2col ${what}`);
      assert.ok(maxRel(results[1], ref) < 1e-6, `wasm im2col ${what}`);
    }
  });

  test('Sum over leading axes (bias gradients) on random shapes', async () => {
    const r = seededDraws(29);
    const pick = <T>(xs: T[]) => xs[Math.floor(r.uniform() * xs.length)];
    for (let k = 0; k < 16; k++) {
      const shape = Array.from({ length: pick([2, 3, 4]) }, () => pick([1, 2, 3, 5, 7]));
      const axes = Array.from({ length: pick([1, shape.length - 1]) }, (_, a) => a);
      const keepDims = r.uniform() < 0.5;
      const xv = rnd.normals(shape.reduce((a, b) => a * b, 1));
      const results: Float32Array[] = [];
      for (const backend of ['cpu', 'wasm'] as const) {
        await useBackend(backend);
        results.push(tf.tidy(() => tf.sum(tf.tensor(xv, shape), axes, keepDims).dataSync() as Float32Array));
      }
      assert.ok(maxRel(results[1], results[0]) < 1e-5, `sum ${shape} over ${axes}`);
    }
  });
});

describe('PRelu gradients: wasm (fused kernel) vs cpu (tfjs composition)', () => {
  test('dx and dslope on random shapes, with exact zeros in x (x = 0 takes the slope side)', async () => {
    const r = seededDraws(31);
    const pick = <T>(xs: T[]) => xs[Math.floor(r.uniform() * xs.length)];
    for (let k = 0; k < 12; k++) {
      const shape = [...Array.from({ length: pick([1, 2, 3]) }, () => pick([1, 2, 5, 7])), pick([1, 3, 8, 24])];
      const size = shape.reduce((a, b) => a * b, 1);
      const xv = rnd.normals(size).map((v, i) => (i % 5 === 0 ? 0 : v));
      const dyv = rnd.normals(size);
      const slope = rnd.normals(shape[shape.length - 1]);
      const results: Float32Array[][] = [];
      for (const backend of ['cpu', 'wasm'] as const) {
        await useBackend(backend);
        let out: Float32Array[] = [];
        const profile = await tf.profile(() => {
          const g = tf.grads((x: tf.Tensor, a: tf.Tensor) => tf.sum(tf.mul(tf.prelu(x, a), tf.tensor(dyv, shape))))([tf.tensor(xv, shape), tf.tensor1d(slope)]);
          out = g.map((t) => t.dataSync() as Float32Array);
          tf.dispose(g);
        });
        if (backend === 'wasm') assert.ok(profile.kernelNames.includes(PRELU_GRAD), `wasm ran ${profile.kernelNames}`);
        results.push(out);
      }
      assert.ok(maxRel(results[1][0], results[0][0]) < 1e-6, `dx, x[${shape}]`);
      assert.ok(maxRel(results[1][1], results[0][1]) < 1e-5, `dslope, x[${shape}]`);
    }
  });
});

describe('pooling gradients: wasm vs cpu built-ins', () => {
  test('MaxPool / AvgPool on random geometries (wasm MaxPoolGrad is replaced)', async () => {
    const r = seededDraws(17);
    const pick = <T>(xs: T[]) => xs[Math.floor(r.uniform() * xs.length)];
    for (let k = 0; k < 24; k++) {
      const shape: [number, number, number, number] = [pick([1, 2, 3]), pick([5, 6, 8]), pick([5, 7]), pick([1, 2, 3, 5])];
      const fs: [number, number] = [pick([1, 2, 3]), pick([2, 3])];
      const st: [number, number] = [pick([1, 2, 3]), pick([1, 2])];
      const pad = pick<'valid' | 'same'>(['valid', 'same']);
      // ReLU-like inputs (many ties at 0) half of the time
      const xv = Float32Array.from(r.normals(shape.reduce((a, b) => a * b, 1)), (v) => (k % 2 ? Math.max(v, 0) : v));
      const dyOf = (y: tf.Tensor) => tf.tensor(seededDraws(k).normals(y.size), y.shape);
      const results: Record<string, Float32Array[]> = {};
      for (const backend of ['cpu', 'wasm'] as const) {
        await useBackend(backend);
        const x = tf.tensor4d(xv, shape);
        for (const kind of ['max', 'avg'] as const) {
          const f = (t: tf.Tensor) => (kind === 'max' ? tf.maxPool(t as tf.Tensor4D, fs, st, pad) : tf.avgPool(t as tf.Tensor4D, fs, st, pad));
          const dy = dyOf(f(x));
          const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), dy)))(x);
          (results[kind] ??= []).push(g.dataSync() as Float32Array);
          tf.dispose([dy, g]);
        }
        x.dispose();
      }
      // wasm routes each dy to the first maximum of its window (scan order), ties included
      const firstMax = tf.tidy(() => {
        const x = tf.tensor4d(xv, shape);
        const info = tf.backend_util.computePool2DInfo(shape, fs, st, 1, pad);
        const dy = dyOf(tf.maxPool(x, fs, st, pad)).dataSync();
        const [n, h, w, c] = shape;
        const out = new Float32Array(xv.length);
        for (let b = 0; b < n; b++)
          for (let p = 0; p < info.outHeight; p++)
            for (let q = 0; q < info.outWidth; q++)
              for (let ch = 0; ch < c; ch++) {
                let best = -1;
                for (let i = 0; i < info.filterHeight; i++)
                  for (let j = 0; j < info.filterWidth; j++) {
                    const row = p * info.strideHeight - info.padInfo.top + i, col = q * info.strideWidth - info.padInfo.left + j;
                    if (row < 0 || row >= h || col < 0 || col >= w) continue;
                    const at = ((b * h + row) * w + col) * c + ch;
                    if (best < 0 || xv[at] > xv[best]) best = at;
                  }
                out[best] += dy[((b * info.outHeight + p) * info.outWidth + q) * c + ch];
              }
        return out;
      });
      assert.ok(maxRel(results.max[1], firstMax) < 1e-6, `wasm maxpool gradient ${shape} k${fs} s${st} ${pad}: first maxima`);
      for (const kind of ['max', 'avg']) {
        const [cpu, wasm] = results[kind];
        if (kind === 'max' && k % 2) {
          // with ties the two may pick different maxima: compare the per-window totals instead
          assert.ok(Math.abs(cpu.reduce((a, b) => a + b, 0) - wasm.reduce((a, b) => a + b, 0)) < 1e-4, `${kind}pool ${shape} k${fs} s${st} ${pad}`);
        } else assert.ok(maxRel(wasm, cpu) < 1e-5, `${kind}pool ${shape} k${fs} s${st} ${pad}`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// (2) every differentiable op: executor gradients vs central finite differences
// ---------------------------------------------------------------------------------------------------------
interface GradCase { name: string; model: Model; x: Float32Array; shape: number[]; extra?: Record<string, tf.Tensor> }

/** Values away from 0 (kinks of Relu/Abs/Clip at 0 and ±bounds are then far from a 1e-3 step). */
const awayFromZero = (n: number) => Float32Array.from(rnd.normals(n), (v) => Math.sign(v) * (0.15 + Math.abs(v)));

function gcase(name: string, shape: number[], build: (g: GraphBuilder, x: string) => string, opset = 17, x?: Float32Array): GradCase {
  const g = new GraphBuilder();
  const inp = g.input('x', shape);
  g.output(build(g, inp));
  return { name, model: g.model(opset), x: x ?? awayFromZero(shape.reduce((a, b) => a * b, 1)), shape };
}
const W = (g: GraphBuilder, name: string, dims: number[], scale = 0.5) => g.init(dims, rnd.normals(dims.reduce((a, b) => a * b, 1), scale), name);
const positive = (g: GraphBuilder, x: string) => g.op('Add', [g.op('Abs', [x]), g.init([], [0.5], `half${x}`)]);

function gradCases(): GradCase[] {
  const N4 = [2, 3, 6, 5];
  return [
    gcase('Relu', [3, 7], (g, x) => g.op('Relu', [x])),
    gcase('LeakyRelu', [3, 7], (g, x) => g.op('LeakyRelu', [x], { alpha: f(0.1) })),
    gcase('PRelu (slope variable)', N4, (g, x) => g.op('PRelu', [x, W(g, 'slope', [3, 1, 1])])),
    gcase('Clip', [3, 7], (g, x) => g.op('Clip', [x, g.init([], [-0.9], 'lo'), g.init([], [1.1], 'hi')]), 13),
    gcase('Sigmoid', [3, 7], (g, x) => g.op('Sigmoid', [x])),
    gcase('HardSigmoid', [3, 7], (g, x) => g.op('HardSigmoid', [x])),
    gcase('HardSwish', [3, 7], (g, x) => g.op('HardSwish', [x])),
    gcase('Tanh', [3, 7], (g, x) => g.op('Tanh', [x])),
    gcase('Erf', [3, 7], (g, x) => g.op('Erf', [x])),
    gcase('Gelu', [3, 7], (g, x) => g.op('Gelu', [x]), 20),
    gcase('Elu', [3, 7], (g, x) => g.op('Elu', [x], { alpha: f(0.8) })),
    gcase('Softplus', [3, 7], (g, x) => g.op('Softplus', [x])),
    gcase('Softmax (opset 13, axis 1)', [2, 4, 3], (g, x) => g.op('Softmax', [x], { axis: i(1) }), 13),
    gcase('LogSoftmax (opset 11, flattening)', [2, 4, 3], (g, x) => g.op('LogSoftmax', [x], { axis: i(1) }), 11),
    gcase('Add/Sub/Mul/Div with broadcast weights', [2, 3, 4], (g, x) => {
      const a = g.op('Add', [x, W(g, 'b', [4])]);
      const m = g.op('Mul', [a, W(g, 'scale', [3, 1])]);
      const d = g.op('Div', [m, positive(g, W(g, 'den', [4]))]);
      return g.op('Sub', [d, g.op('Mul', [x, x])]);
    }),
    gcase('Pow (base and exponent)', [3, 4], (g, x) => g.op('Pow', [positive(g, x), g.op('Add', [g.op('Mul', [x, g.init([], [0.3], 'k')]), g.init([], [2], 'two')])])),
    gcase('Sqrt/Exp/Log/Reciprocal/Neg/Abs', [3, 4], (g, x) => {
      const p = positive(g, x);
      return g.op('Add', [g.op('Add', [g.op('Sqrt', [p]), g.op('Exp', [g.op('Mul', [x, g.init([], [0.3], 't')])])]),
        g.op('Add', [g.op('Log', [p]), g.op('Neg', [g.op('Reciprocal', [p])])])]);
    }),
    gcase('Conv 2-D pads/stride + bias', N4, (g, x) => g.op('Conv', [x, W(g, 'W', [4, 3, 3, 3]), W(g, 'B', [4])], { pads: ints([1, 0, 2, 1]), strides: ints([2, 1]) })),
    gcase('Conv dilation 2', N4, (g, x) => g.op('Conv', [x, W(g, 'W', [2, 3, 2, 2])], { dilations: ints([2, 2]), pads: ints([1, 1, 1, 1]) })),
    gcase('Conv stride 2 + dilation 2', [1, 2, 9, 9], (g, x) => g.op('Conv', [x, W(g, 'W', [2, 2, 3, 3])], { dilations: ints([2, 2]), strides: ints([2, 2]) })),
    gcase('Conv groups 3 (depthwise, multiplier 2)', N4, (g, x) => g.op('Conv', [x, W(g, 'W', [6, 1, 3, 3])], { group: i(3), pads: ints([1, 1, 1, 1]) })),
    gcase('Conv grouped (2 groups)', [2, 4, 5, 5], (g, x) => g.op('Conv', [x, W(g, 'W', [6, 2, 3, 1])], { group: i(2), strides: ints([1, 2]) })),
    gcase('Conv 1-D', [2, 3, 9], (g, x) => g.op('Conv', [x, W(g, 'W', [4, 3, 3])], { pads: ints([1, 1]), strides: ints([2]) })),
    gcase('ConvTranspose stride 2', [1, 3, 4, 4], (g, x) => g.op('ConvTranspose', [x, W(g, 'W', [3, 2, 3, 3]), W(g, 'B', [2])], { strides: ints([2, 2]), pads: ints([1, 1, 0, 0]) })),
    gcase('BatchNormalization (inference)', N4, (g, x) => g.op('BatchNormalization', [x, W(g, 'sc', [3]), W(g, 'bi', [3]), W(g, 'mu', [3]), g.init([3], [0.5, 1, 2], 'var')]), 15),
    gcase('BatchNormalization (training mode)', N4, (g, x) =>
      g.node('BatchNormalization', [x, W(g, 'sc', [3]), W(g, 'bi', [3]), W(g, 'mu', [3]), g.init([3], [0.5, 1, 2], 'var')], { training_mode: i(1) }, 3)[0], 15),
    gcase('Conv → BN → Relu → MaxPool (channels-last chain)', N4, (g, x) => {
      const c = g.op('Conv', [x, W(g, 'W', [4, 3, 3, 3])], { pads: ints([1, 1, 1, 1]) });
      const bn = g.op('BatchNormalization', [c, W(g, 'sc', [4]), W(g, 'bi', [4]), W(g, 'mu', [4]), g.init([4], [1, 2, 1, 3], 'var')]);
      return g.op('MaxPool', [g.op('Relu', [bn])], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) });
    }, 15),
    gcase('Gemm (transB) and MatMul', [3, 4], (g, x) => g.op('MatMul', [g.op('Gemm', [x, W(g, 'B', [5, 4]), W(g, 'C', [5])], { transB: i(1) }), W(g, 'M', [5, 2])])),
    gcase('MatMul batched (two inputs)', [2, 3, 4], (g, x) => g.op('MatMul', [x, g.op('Transpose', [x], { perm: ints([0, 2, 1]) })])),
    gcase('Einsum attention', [2, 2, 3, 4], (g, x) => g.op('Einsum', [g.op('Softmax', [g.op('Einsum', [x, x], { equation: s('bhqd,bhkd->bhqk') })], { axis: i(-1) }), x], { equation: s('bhqk,bhkd->bhqd') })),
    gcase('LayerNormalization', [2, 3, 5], (g, x) => g.op('LayerNormalization', [x, W(g, 'sc', [5]), W(g, 'b', [5])], { axis: i(-1) })),
    gcase('MaxPool pads, ceil_mode', N4, (g, x) => g.op('MaxPool', [x], { kernel_shape: ints([3, 2]), strides: ints([2, 2]), pads: ints([1, 0, 1, 1]), ceil_mode: i(1) })),
    gcase('AveragePool pads (count_include_pad 0)', N4, (g, x) => g.op('AveragePool', [x], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]), strides: ints([2, 2]) })),
    gcase('GlobalAveragePool → Flatten', N4, (g, x) => g.op('Flatten', [g.op('GlobalAveragePool', [x])])),
    gcase('Reshape/Transpose/Concat/Split/Slice steps', [2, 6, 4], (g, x) => {
      const r = g.op('Transpose', [g.op('Reshape', [x, g.initI64([4, 3, 4], 'sh')])], { perm: ints([2, 0, 1]) });
      const [a, b] = g.node('Split', [r, g.initI64([1, 3], 'sp')], { axis: i(0) }, 2);
      const sl = g.op('Slice', [b, g.initI64([-1, 0], 'st'), g.initI64([-100, 4], 'en'), g.initI64([2, 1], 'ax'), g.initI64([-2, 2], 'step')]);
      return g.op('Concat', [g.op('Reshape', [a, g.initI64([-1], 's1')]), g.op('Reshape', [sl, g.initI64([-1], 's2')])], { axis: i(0) });
    }),
    gcase('Squeeze/Unsqueeze/Expand/Tile/Identity', [3, 1, 4], (g, x) => {
      const sq = g.op('Squeeze', [x, g.initI64([1], 'a')]);
      const ex = g.op('Expand', [g.op('Unsqueeze', [sq, g.initI64([0], 'b')]), g.initI64([2, 3, 4], 'shape')]);
      return g.op('Identity', [g.op('Tile', [ex, g.initI64([1, 2, 1], 'reps')])]);
    }),
    gcase('Pad reflect / edge / constant', [2, 3, 4], (g, x) => {
      const pads = g.initI64([0, 1, 2, 0, 2, 1], 'pads');
      return g.op('Add', [g.op('Add', [g.op('Pad', [x, pads], { mode: s('reflect') }), g.op('Pad', [x, pads], { mode: s('edge') })]), g.op('Pad', [x, pads])]);
    }),
    gcase('Resize linear and nearest', [1, 2, 3, 4], (g, x) => {
      const roi = g.init([0], [], 'roi'), sc = g.init([4], [1, 1, 2, 1.5], 'sc');
      return g.op('Add', [g.op('Resize', [x, roi, sc], { mode: s('linear') }), g.op('Resize', [x, roi, sc], { mode: s('nearest') })]);
    }),
    gcase('Where/Equal (mask of input)', [3, 4], (g, x) => g.op('Where', [g.op('Greater', [x, g.init([], [0], 'z')]), g.op('Mul', [x, x]), g.op('Neg', [x])])),
    gcase('ReduceMean/ReduceSum/ReduceMax', [2, 3, 4], (g, x) => g.op('Add', [
      g.op('Add', [g.op('ReduceMean', [x], { axes: ints([1]) }), g.op('ReduceSum', [x, g.initI64([1], 'ax')])]),
      g.op('ReduceMax', [x], { axes: ints([1]) }),
    ]), 13),
    gcase('DepthToSpace / SpaceToDepth', [1, 8, 2, 3], (g, x) => g.op('SpaceToDepth', [g.op('DepthToSpace', [x], { blocksize: i(2), mode: s('CRD') })], { blocksize: i(2) })),
    gcase('Cast float→float, Dropout (inference)', [3, 4], (g, x) => g.op('Dropout', [g.op('Cast', [x], { to: i(1) })])),
    gcase('Gather (embedding variable)', [2, 3], (g, x) => {
      const ids = g.op('Cast', [g.op('Floor', [g.op('Mul', [g.op('Abs', [x]), g.init([], [1.7], 'k')])])], { to: i(7) });
      return g.op('Add', [g.op('Gather', [W(g, 'emb', [6, 4]), ids]), g.op('Unsqueeze', [x, g.initI64([2], 'u')])]);
    }),
  ];
}

/** Loss = Σ out ⊙ R (a fixed random projection). */
function projectedLoss(exe: ReturnType<typeof compile>, x: tf.Tensor, R: tf.Tensor): tf.Scalar {
  const out = Object.values(exe.run({ x }))[0];
  return tf.sum(tf.mul(out, R));
}

async function checkFiniteDifferences(c: GradCase, backend: 'wasm' | 'cpu'): Promise<void> {
  await useBackend(backend);
  const exe = compile(c.model);
  const x = tf.variable(tf.tensor(c.x, c.shape), false);
  try {
    const outShape = tf.tidy(() => Object.values(exe.run({ x }))[0].shape);
    // counted after a first run: the executable keeps tensors derived from its weights (conv filters in tfjs
    // layout) until a weight changes; the finite differences below change them (a stale one fails the check)
    const before = tf.memory().numTensors;
    const R = tf.tensor(rnd.normals(outShape.reduce((a, b) => a * b, 1)), outShape);
    const L = () => tf.tidy(() => projectedLoss(exe, x, R).dataSync()[0]);
    // analytic: input gradient and variable gradients
    const gx = tf.grad((inp: tf.Tensor) => projectedLoss(exe, inp, R))(x);
    const { value, grads } = exe.trainableVariables.length
      ? tf.variableGrads(() => projectedLoss(exe, x, R), exe.trainableVariables)
      : { value: tf.scalar(0), grads: {} as Record<string, tf.Tensor> };
    value.dispose();
    const eps = 1e-3;
    /** (L(p + εv) − L(p − εv)) / 2ε for a variable p and direction v. */
    const directional = (p: tf.Variable, v: tf.Tensor): number => {
      const step = (k: number) => {
        const next = tf.tidy(() => tf.add(p, tf.mul(v, k * eps)));
        p.assign(next);
        next.dispose();
      };
      step(+1);
      const lp = L();
      step(-2);
      const lm = L();
      step(+1);
      return (lp - lm) / (2 * eps);
    };
    const compare = (what: string, analytic: number, numeric: number) => {
      const tol = 2e-2 * Math.max(Math.abs(analytic), Math.abs(numeric)) + 2e-3;
      assert.ok(Math.abs(analytic - numeric) <= tol, `${c.name} on ${backend}: d/d${what} analytic ${analytic} vs numeric ${numeric}`);
    };
    // ids derived from x (Gather) make L piecewise constant in x: only the embedding gradient is checked there
    const checkInput = !c.name.startsWith('Gather');
    for (let k = 0; k < 3; k++) {
      if (checkInput) {
        const v = tf.tensor(rnd.normals(x.size), x.shape);
        compare('x', tf.tidy(() => tf.sum(tf.mul(gx, v)).dataSync()[0]), directional(x, v));
        v.dispose();
      }
      for (const variable of exe.trainableVariables) {
        const gv = grads[variable.name];
        assert.ok(gv, `${c.name}: no gradient for ${variable.name}`);
        const v = tf.tensor(rnd.normals(variable.size), variable.shape);
        compare(variable.name.replace(/^linfold\d+\//, ''), tf.tidy(() => tf.sum(tf.mul(gv, v)).dataSync()[0]), directional(variable, v));
        v.dispose();
      }
    }
    tf.dispose([gx, R, ...Object.values(grads)]);
    assert.equal(tf.memory().numTensors, before, `${c.name}: tensors leaked`);
  } finally {
    x.dispose();
    exe.dispose();
  }
}

describe('gradients vs finite differences (through the executor)', () => {
  for (const c of gradCases()) {
    test(c.name, async () => {
      await checkFiniteDifferences(c, 'wasm');
      if (/Conv|Pool|BatchNorm|Gather/.test(c.name)) await checkFiniteDifferences(c, 'cpu');
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// (3) memory: 200 forward + backward steps leave the tensor count unchanged
// ---------------------------------------------------------------------------------------------------------
describe('memory', () => {
  before(async () => {
    await useBackend('wasm');
  });

  const train = (model: Model, feed: () => Record<string, tf.Tensor>, loss: (out: tf.Tensor) => tf.Scalar, steps: number) => {
    const exe = compile(model);
    const opt = tf.train.sgd(1e-3);
    const inputs = feed();
    try {
      const step = () => opt.minimize(() => loss(Object.values(exe.run(inputs))[0]), false, exe.trainableVariables);
      step();
      const start = tf.memory().numTensors;
      for (let k = 1; k < steps; k++) step();
      return { start, end: tf.memory().numTensors };
    } finally {
      tf.dispose(Object.values(inputs));
      opt.dispose();
      exe.dispose();
    }
  };

  test('200 SGD steps of a conv net (BatchNormalization in training mode, depthwise, MaxPool, PRelu) leak no tensors', () => {
    const g = new GraphBuilder();
    const x = g.input('x', ['batch', 3, 12, 12]);
    const c1 = g.op('Conv', [x, W(g, 'W1', [8, 3, 3, 3]), W(g, 'B1', [8])], { pads: ints([1, 1, 1, 1]), strides: ints([2, 2]) });
    const bn = g.node('BatchNormalization', [c1, W(g, 'sc', [8]), W(g, 'bi', [8]), W(g, 'mu', [8]), g.init([8], Array(8).fill(1), 'var')], { training_mode: i(1) }, 3)[0];
    const dw = g.op('Conv', [g.op('Relu', [bn]), W(g, 'W2', [8, 1, 3, 3])], { group: i(8), pads: ints([1, 1, 1, 1]) });
    const mp = g.op('MaxPool', [dw], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) });
    const p = g.op('PRelu', [g.op('MaxPool', [mp], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }), W(g, 'slope', [8, 1, 1])]);
    g.output(g.op('Gemm', [g.op('Flatten', [g.op('GlobalAveragePool', [p])]), W(g, 'fc', [4, 8]), W(g, 'fcb', [4])], { transB: i(1) }));
    const { start, end } = train(g.model(15), () => ({ x: tf.randomNormal([4, 3, 12, 12]) }), (out) => tf.mean(tf.square(out)), 200);
    assert.equal(end, start);
  });

  test('200 steps of the transformer fixture (embedding gradient) leak no tensors', () => {
    const model = loadModel(fixture('transformer_gelu.onnx'));
    const vocab = model.graph.initializers.get('tok.weight')?.dims[0] ?? 10;
    const { start, end } = train(model, () => ({ tokens: tf.tensor2d(Array.from({ length: 32 }, (_, k) => (k * 7) % vocab), [2, 16], 'int32') }),
      (out) => tf.mean(tf.square(out)), 200);
    assert.equal(end, start);
  });
});
