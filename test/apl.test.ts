// APL / NAPL on hand-built graphs; every expected value is worked out by hand in the comments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { Graph, type Shape } from '../src/import/ir.js';
import { type PathLengthOptions, type PathLengthResult, pathLength as pathLengthOnly } from '../src/analyze/path-length.js';
import { census } from '../src/analyze/census.js';
import { propagate } from '../src/analyze/propagate.js';
import { close, closeAll } from './support/numeric.js';

/**
 * pathLength, plus the invariants every result must satisfy: per output, each distribution sums to 1 and its
 * mean is the output's APL / NAPL of activations; the layer contributions sum to the first output's.
 */
function pathLength(g: Graph, opts?: PathLengthOptions): PathLengthResult {
  const r = pathLengthOnly(g, opts);
  for (const o of r.outputs) {
    const d = o.distribution!;
    if (!o.dependsOnInput) {
      assert.deepEqual(d, { apl: [], napl: [] });
      continue;
    }
    for (const [p, mean] of [[d.apl, o.activations.apl], [d.napl, o.activations.napl]] as const) {
      close(p.reduce((t, x) => t + x, 0), 1, 1e-12);
      close(p.reduce((t, x, k) => t + k * x, 0), mean, 1e-12);
      assert.ok(p.every((x) => x >= 0) && p[p.length - 1] > 0, `distribution ${p}`);
    }
  }
  const head = r.outputs[0];
  assert.equal(r.layerContributions.length, census(g, opts).layers.length);
  close(r.layerContributions.reduce((t, c) => t + c.apl, 0), head?.activations.apl ?? 0, 1e-12);
  close(r.layerContributions.reduce((t, c) => t + c.napl, 0), head?.activations.napl ?? 0, 1e-12);
  return r;
}

/** 3×3 conv, padding 1, stride 1, deterministic weights and bias; output shape [1, cout, hw, hw]. */
function conv3x3(b: GraphBuilder, x: string, cin: number, cout: number, hw: number, group = 1): string {
  return b.op('Conv', [x, b.init([cout, cin / group, 3, 3]), b.init([cout])], { group, pads: [1, 1, 1, 1], kernel_shape: [3, 3] }, [1, cout, hw, hw]);
}


test("Figure 1: skip around 4 hidden layers of width 4 → 257 paths, APL 256·4/257, NAPL 2", () => {
  const b = new GraphBuilder();
  const x = b.input('x', ['batch', 1]);
  // 1→4, 4→4, 4→4, 4→4 each followed by Relu (Gemm and MatMul mixed), then 4→1, added to the skip
  let h = b.op('Relu', [b.op('Gemm', [x, b.init([4, 1]), b.init([4])], { transB: 1 }, ['batch', 4])], {}, ['batch', 4]);
  h = b.op('Relu', [b.op('MatMul', [h, b.init([4, 4])], {}, ['batch', 4])], {}, ['batch', 4]);
  h = b.op('Relu', [b.op('Gemm', [h, b.init([4, 4])], {}, ['batch', 4])], {}, ['batch', 4]);
  h = b.op('Relu', [b.op('MatMul', [h, b.init([4, 4])], {}, ['batch', 4])], {}, ['batch', 4]);
  const o = b.op('MatMul', [h, b.init([4, 1])], {}, ['batch', 1]);
  const y = b.op('Add', [o, x], {}, ['batch', 1]);
  b.output(y);
  const r = pathLength(b.graph);
  // paths: 4·4·4·4 = 256 through the hidden layers, each with 4 nonlinear units, plus 1 skip path with 0
  close(r.outputs[0].logPaths!, Math.log(257));
  close(r.apl, (256 * 4) / 257);
  close(r.napl, 0.5 * 0 + 0.5 * 4);
  assert.equal(r.effectiveDepth, r.napl);
  assert.equal(r.outputs[0].units, 1);
  close(r.otherNonlinear.apl, 0);
  // distribution: 1 path of 257 meets no nonlinear unit, 256 meet 4; normalized: the skip and the deep
  // branch weigh ½ each
  closeAll(r.outputs[0].distribution!.apl, [1 / 257, 0, 0, 0, 256 / 257]);
  closeAll(r.outputs[0].distribution!.napl, [0.5, 0, 0, 0, 0.5]);
  // every deep path crosses each hidden layer once: 256/257 per layer (uniform), ½ (normalized)
  closeAll(r.layerContributions.map((l) => l.apl), Array(4).fill(256 / 257));
  closeAll(r.layerContributions.map((l) => l.napl), Array(4).fill(0.5));
  const c = census(b.graph);
  assert.equal(c.layers.length, 4);
  assert.deepEqual(c.layers.map((l) => [l.kind, l.channels, l.channelAxis]), Array(4).fill(['relu', 4, 1]));
  assert.equal(c.merges.length, 1);
});

/** L conv+act layers, then GlobalAveragePool → Flatten → Gemm. `acts[i]` = slope list for PRelu, or 'relu'. */
function chain(acts: ('relu' | number[])[]): Graph {
  const b = new GraphBuilder();
  let h = b.input('x', ['batch', 3, 8, 8]);
  let cin = 3;
  for (const a of acts) {
    h = conv3x3(b, h, cin, 4, 8);
    cin = 4;
    h = a === 'relu' ? b.op('Relu', [h], {}, [1, 4, 8, 8]) : b.op('PRelu', [h, b.init([4, 1, 1], a)], {}, [1, 4, 8, 8]);
  }
  h = b.op('GlobalAveragePool', [h], {}, [1, 4, 1, 1]);
  h = b.op('Flatten', [h], { axis: 1 }, [1, 4]);
  b.output(b.op('Gemm', [h, b.init([2, 4]), b.init([2])], { transB: 1 }, [1, 2]));
  return b.graph;
}

test('plain chain of L conv+relu: APL = NAPL = L; linearizing one layer via PRelu slopes = 1 drops both by 1', () => {
  // every dense layer gives all output units the same state, so E is the same on every path: L
  for (const L of [1, 3, 5]) {
    const r = pathLength(chain(Array(L).fill('relu')));
    close(r.apl, L);
    close(r.napl, L);
  }
  const lin = pathLength(chain(['relu', [1, 1, 1, 1], 'relu']));
  close(lin.apl, 2);
  close(lin.napl, 2);
  // a ReLU exported as PRelu with slope 0 is as nonlinear as a Relu
  close(pathLength(chain(['relu', [0, 0, 0, 0], 'relu'])).napl, 3);
  // half of the middle layer linear: that layer adds 1/2 on average (the next conv mixes all 4 channels,
  // each with the same path count) → 1 + 0.5 + 1 = 2.5 for both APL and NAPL
  const half = pathLength(chain(['relu', [1, 1, 0, 0], 'relu']));
  close(half.apl, 2.5);
  close(half.napl, 2.5);
  // every path crosses one channel of each layer, all channels with the same path count: half the paths
  // cross a linear channel of the middle layer (count 2), half a nonlinear one (count 3)
  closeAll(half.outputs[0].distribution!.apl, [0, 0, 0.5, 0.5]);
  closeAll(half.outputs[0].distribution!.napl, [0, 0, 0.5, 0.5]);
  closeAll(half.layerContributions.map((l) => l.apl), [1, 0.5, 1]);
  closeAll(half.layerContributions.map((l) => l.napl), [1, 0.5, 1]);
  // all nonlinear: one count for every path
  const plain = pathLength(chain(['relu', 'relu', 'relu']));
  closeAll(plain.outputs[0].distribution!.apl, [0, 0, 0, 1]);
  closeAll(plain.outputs[0].distribution!.napl, [0, 0, 0, 1]);
  // slopes within eps (default 0.01) of 1 are linear; a tighter eps makes them nonlinear again
  const g = chain(['relu', [0.995, 1.005, 1, 1], 'relu']);
  close(pathLength(g).napl, 2);
  close(pathLength(g, { eps: 0.001 }).napl, 2.5);
  const c = census(g, { eps: 0.001 });
  assert.deepEqual(c.layers[1].linearMask, [false, false, true, true]);
});

test('ResNet-style block with half the channels of one activation linear', () => {
  // x [1,4,8,8] → conv1 → relu1 → conv2 → PRelu(slopes 1,1,0,0) → conv3 → Add(·, relu1) → relu4 → GAP → Flatten → Gemm(4→1)
  //
  // per unit (N = path count, E = APL count, En = NAPL count), input units: N=1, E=En=0
  // relu1:  N = 4,                 E = 1,                           En = 1
  // conv2:  N = 4·4 = 16,          E = 1,                           En = 1
  // prelu:  N = 16;                channels 0,1: E = En = 1; channels 2,3: E = En = 2
  // conv3:  N = 4·16 = 64,         E = (16+16+32+32)/64 = 1.5,      En = mean(1,1,2,2) = 1.5
  // add:    N = 64 + 4 = 68,       E = (64·1.5 + 4·1)/68 = 25/17,   En = (1.5 + 1)/2 = 1.25
  // relu4:  N = 68,                E = 25/17 + 1 = 42/17,           En = 2.25
  // gemm:   N = 4·68 = 272,        E = 42/17,                       En = 2.25
  // fully nonlinear (slopes 0): conv3 E = En = 2; add E = (128+4)/68 = 33/17, En = 1.5; output E = 50/17, En = 2.5
  const build = (slopes: number[]) => {
    const b = new GraphBuilder();
    const x = b.input('x', [1, 4, 8, 8]);
    const r1 = b.op('Relu', [conv3x3(b, x, 4, 4, 8)], {}, [1, 4, 8, 8]);
    let h = b.op('PRelu', [conv3x3(b, r1, 4, 4, 8), b.init([4, 1, 1], slopes)], {}, [1, 4, 8, 8]);
    h = b.op('Add', [conv3x3(b, h, 4, 4, 8), r1], {}, [1, 4, 8, 8]);
    h = b.op('Relu', [h], {}, [1, 4, 8, 8]);
    h = b.op('Flatten', [b.op('GlobalAveragePool', [h], {}, [1, 4, 1, 1])], { axis: 1 }, [1, 4]);
    b.output(b.op('Gemm', [h, b.init([1, 4])], { transB: 1 }, [1, 1]));
    return b.graph;
  };
  const half = pathLength(build([1, 1, 0, 0]));
  close(half.outputs[0].logPaths!, Math.log(272));
  close(half.apl, 42 / 17);
  close(half.napl, 2.25);
  // distribution, per add channel: 64 main paths (relu1 + prelu: 32 with count 1 via linear prelu channels,
  // 32 with 2) and 4 skip paths (relu1 only: count 1) → {1: 36/68, 2: 32/68}; relu4 adds 1 → {2: 9/17, 3: 8/17}
  // (mean 42/17). Normalized: main {1: ½, 2: ½} and skip {1: 1}, ½ each → {1: ¾, 2: ¼} → {2: ¾, 3: ¼} (2.25).
  closeAll(half.outputs[0].distribution!.apl, [0, 0, 9 / 17, 8 / 17]);
  closeAll(half.outputs[0].distribution!.napl, [0, 0, 0.75, 0.25]);
  // contributions: every path crosses relu1 and relu4 (1 each); the prelu's nonlinear channels carry 32 of
  // the 68 paths per add channel (8/17), and ½ (main branch) · ½ (nonlinear channels) of the normalized walk
  closeAll(half.layerContributions.map((l) => l.apl), [1, 8 / 17, 1]);
  closeAll(half.layerContributions.map((l) => l.napl), [1, 0.25, 1]);
  const full = pathLength(build([0, 0, 0, 0]));
  close(full.apl, 50 / 17);
  close(full.napl, 2.5);
  // main paths count 2 (64), skip 1 (4) → after relu4 {2: 1/17, 3: 16/17}; normalized {2: ½, 3: ½}
  closeAll(full.outputs[0].distribution!.apl, [0, 0, 1 / 17, 16 / 17]);
  closeAll(full.outputs[0].distribution!.napl, [0, 0, 0.5, 0.5]);
  closeAll(full.layerContributions.map((l) => l.apl), [1, 16 / 17, 1]);
  closeAll(full.layerContributions.map((l) => l.napl), [1, 0.5, 1]);
  const c = census(build([1, 1, 0, 0]));
  assert.deepEqual(c.layers.map((l) => [l.kind, l.linearChannels, l.nonlinearChannels]), [['relu', 0, 4], ['prelu', 2, 2], ['relu', 0, 4]]);
});

test('depthwise conv keeps per-channel paths apart', () => {
  // inputs a [1,1,4,4] and b [1,3,4,4]; c = Concat(a, Conv(b, 3→1)) → units: ch0 N=1, ch1 N=3, E = 0
  // PRelu(c, slopes [0, 1]):        ch0 E=1 (N=1),  ch1 E=0 (N=3)
  // depthwise Conv (group 2):       unchanged per channel
  // PRelu(slopes [1, 0]):           ch0 E=1 (N=1),  ch1 E=1 (N=3)
  // output (2 units): APL = (1·1 + 3·1)/4 = 1, NAPL = (1 + 1)/2 = 1, paths = 4.
  // A dense conv in place of the depthwise one would mix: each unit N=4, E=(1·1+3·0)/4=0.25, En=0.5, then
  // ch1 +1 → APL = (4·0.25 + 4·1.25)/8 = 0.75, NAPL = (0.5 + 1.5)/2 = 1.
  const build = (group: number) => {
    const b = new GraphBuilder();
    const a = b.input('a', [1, 1, 4, 4]);
    const bb = b.input('b', [1, 3, 4, 4]);
    let h = b.op('Concat', [a, conv3x3(b, bb, 3, 1, 4)], { axis: 1 }, [1, 2, 4, 4]);
    h = b.op('PRelu', [h, b.init([2, 1, 1], [0, 1])], {}, [1, 2, 4, 4]);
    h = conv3x3(b, h, 2, 2, 4, group);
    b.output(b.op('PRelu', [h, b.init([2, 1, 1], [1, 0])], {}, [1, 2, 4, 4]));
    return b.graph;
  };
  const dw = pathLength(build(2));
  close(dw.outputs[0].logPaths!, Math.log(4));
  close(dw.apl, 1);
  close(dw.napl, 1);
  const dense = pathLength(build(1));
  close(dense.apl, 0.75);
  close(dense.napl, 1);
});

test('depthwise conv with a channel multiplier: output m reads input channel floor(m/2)', () => {
  // x [1,2,4,4] → PRelu([1, 0]) → ch0 E=0, ch1 E=1 → Conv(W [4,1,3,3], group 2) → ch 0,1 E=0, ch 2,3 E=1
  // → PRelu([0, 0, 1, 1]) → every channel E = 1 → APL = NAPL = 1 (a dense conv would give 0.5 + 0.5 and 0.5 + 0)
  const b = new GraphBuilder();
  let h = b.op('PRelu', [b.input('x', [1, 2, 4, 4]), b.init([2, 1, 1], [1, 0])], {}, [1, 2, 4, 4]);
  h = conv3x3(b, h, 2, 4, 4, 2);
  b.output(b.op('PRelu', [h, b.init([4, 1, 1], [0, 0, 1, 1])], {}, [1, 4, 4, 4]));
  const r = pathLength(b.graph);
  close(r.apl, 1);
  close(r.napl, 1);
});

test('blend form y = s + A ⊙ (x − s) around a GELU erf chain, with A = 1 on some channels', () => {
  // x [1,3,4] (tokens × features; channels on the last axis) → MatMul 4→4 → Add bias → GELU (erf chain)
  // → blend with A = [1, 0.995, 0.5, 0] → MatMul 4→2.
  // after the first MatMul every unit: N = 4, E = 0. The blend: channels 0 and 1 linear (|A−1| ≤ 0.01),
  // 2 and 3 nonlinear → E = 0, 0, 1, 1. Output MatMul: N = 16, E = En = 0.5 → APL = NAPL = 0.5.
  const build = (A: number[]) => {
    const b = new GraphBuilder();
    const sh = [1, 3, 4];
    const c = (v: number) => b.init([], [v]);
    let h = b.op('MatMul', [b.input('x', sh), b.init([4, 4])], {}, sh);
    h = b.op('Add', [b.init([4]), h], {}, sh);
    const x = h;
    const d = b.op('Div', [x, c(Math.SQRT2)], {}, sh);
    const e = b.op('Erf', [d], {}, sh);
    const p = b.op('Add', [e, c(1)], {}, sh);
    const m = b.op('Mul', [x, p], {}, sh);
    const s = b.op('Mul', [m, c(0.5)], {}, sh);
    const sub = b.op('Sub', [x, s], {}, sh);
    const ma = b.op('Mul', [b.init([4], A), sub], {}, sh);
    const y = b.op('Add', [ma, s], {}, sh);
    b.output(b.op('MatMul', [y, b.init([4, 2])], {}, [1, 3, 2]));
    return b.graph;
  };
  const g = build([1, 0.995, 0.5, 0]);
  const r = pathLength(g);
  close(r.apl, 0.5);
  close(r.napl, 0.5);
  close(r.outputs[0].logPaths!, Math.log(16 * 2));
  const [l] = census(g).layers;
  assert.equal(l.kind, 'gelu');
  assert.equal(l.form, 'blend');
  assert.equal(l.baseForm, 'pattern');
  assert.equal(l.channelAxis, 2);
  assert.equal(l.channels, 4);
  assert.deepEqual(l.linearMask, [true, true, false, false]);
  assert.equal(l.nodes.length, 8);
  // A = 1 everywhere: the layer is the identity, the network has no nonlinear unit left
  close(pathLength(build([1, 1, 1, 1])).napl, 0);
  // A = 0: the original GELU
  close(pathLength(build([0, 0, 0, 0])).napl, 1);
});

test('squeeze-excite gate: the gating Mul merges features and gate like an Add and counts as another nonlinear op', () => {
  // f = Relu(Conv(x 2→2)): N=2, E=1. gate: GAP(f) → Conv 2→1 (N=4, E=1) → Relu (E=2) → Conv 1→2 (N=4, E=2)
  // → Sigmoid (E=3). y = Mul(f, gate): N = 2 + 4 = 6, E = (2·1 + 4·3)/6 = 7/3, En = (1 + 3)/2 = 2; O = On = 1.
  const b = new GraphBuilder();
  const f = b.op('Relu', [conv3x3(b, b.input('x', [1, 2, 4, 4]), 2, 2, 4)], {}, [1, 2, 4, 4]);
  let gt = b.op('GlobalAveragePool', [f], {}, [1, 2, 1, 1]);
  gt = b.op('Relu', [b.op('Conv', [gt, b.init([1, 2, 1, 1])], {}, [1, 1, 1, 1])], {}, [1, 1, 1, 1]);
  gt = b.op('Sigmoid', [b.op('Conv', [gt, b.init([2, 1, 1, 1])], {}, [1, 2, 1, 1])], {}, [1, 2, 1, 1]);
  b.output(b.op('Mul', [f, gt], {}, [1, 2, 4, 4]));
  const r = pathLength(b.graph);
  close(r.apl, 7 / 3);
  close(r.napl, 2);
  close(r.otherNonlinear.apl, 1);
  close(r.otherNonlinear.napl, 1);
  const withOther = pathLength(b.graph, { countOtherNonlinear: true });
  close(withOther.apl, 7 / 3 + 1);
  close(withOther.napl, 3);
  const c = census(b.graph);
  const gate = c.layers.find((l) => l.kind === 'sigmoid')!;
  assert.equal(gate.isGate, true);
  assert.equal(gate.channels, 2);
  assert.deepEqual(c.otherNonlinear.map((o) => o.kind), ['gating_mul']);
});

test('attention: MatMul of two activations merges its operands; heads are followed through Reshape/Transpose', () => {
  // x [1,T=2,D=4] → q = x·Wq, k = x·Wk, v = x·Wv (each unit N = 4, E = 0), heads: Reshape [1,2,2,2] → Transpose
  // scores = q·kᵀ contracts the head dim (2 units per head): per head N = 2·4 + 2·4 = 16 → Softmax → A·V
  // contracts tokens (not units): per (head, d) N = 16 + 4 = 20 → back to [1,2,4] → PRelu slopes [0,0,1,1]
  // (channels 0,1 nonlinear) → out = MatMul 4→1: N = 4·20 = 80, E = En = 0.5.
  // Other nonlinear ops per path: the v path (N 4 of 20 per unit) crosses 1 (A·V), the q/k paths 3
  // (q·kᵀ, Softmax, A·V) → O = (16·3 + 4·1)/20 = 2.6, On = (3 + 1)/2 = 2.
  const b = new GraphBuilder();
  const x = b.input('x', [1, 2, 4]);
  const proj = () => b.op('MatMul', [x, b.init([4, 4])], {}, [1, 2, 4]);
  const heads = (t: string, perm: number[], shape: number[]) =>
    b.op('Transpose', [b.op('Reshape', [t, b.initI64([1, 2, 2, 2])], {}, [1, 2, 2, 2])], { perm }, shape);
  const q = heads(proj(), [0, 2, 1, 3], [1, 2, 2, 2]);
  const k = heads(proj(), [0, 2, 3, 1], [1, 2, 2, 2]);
  const v = heads(proj(), [0, 2, 1, 3], [1, 2, 2, 2]);
  const a = b.op('Softmax', [b.op('MatMul', [q, k], {}, [1, 2, 2, 2])], { axis: -1 }, [1, 2, 2, 2]);
  let h = b.op('MatMul', [a, v], {}, [1, 2, 2, 2]);
  h = b.op('Reshape', [b.op('Transpose', [h], { perm: [0, 2, 1, 3] }, [1, 2, 2, 2]), b.initI64([1, 2, 4])], {}, [1, 2, 4]);
  h = b.op('PRelu', [h, b.init([4], [0, 0, 1, 1])], {}, [1, 2, 4]);
  b.output(b.op('MatMul', [h, b.init([4, 1])], {}, [1, 2, 1]));
  const r = pathLength(b.graph);
  close(r.outputs[0].logPaths!, Math.log(80));
  close(r.apl, 0.5);
  close(r.napl, 0.5);
  close(r.otherNonlinear.apl, 2.6);
  close(r.otherNonlinear.napl, 2);
  const c = census(b.graph);
  assert.deepEqual(c.otherNonlinear.map((o) => o.kind), ['activation_matmul', 'softmax', 'activation_matmul']);
  assert.equal(c.layers[0].channelAxis, 2);
  assert.deepEqual(c.warnings, []);
});

test('several outputs are reported separately; the headline is the first', () => {
  // y1 = Relu(Relu(x·W)) → APL = NAPL = 2; y2 = x·W → 0
  const b = new GraphBuilder();
  const x = b.input('x', [1, 3]);
  const h = b.op('MatMul', [x, b.init([3, 3])], {}, [1, 3]);
  b.output(b.op('Relu', [b.op('Relu', [h], {}, [1, 3])], {}, [1, 3]));
  b.output(h);
  const r = pathLength(b.graph);
  assert.equal(r.outputs.length, 2);
  close(r.napl, 2);
  close(r.outputs[1].napl, 0);
  close(r.outputs[1].logPaths!, Math.log(9));
});

test('distribution and contributions through a concat of branches with different counts', () => {
  // x [1,2] → h = Relu(x·W 2→2) (units N=2, count 1) ; c = Concat(h, x) along features: units 0,1 (N=2, count 1)
  // and 2,3 (N=1, count 0) → PRelu slopes [0, 1, 0, 1] on c: counts 2, 1, 1, 0 → MatMul 4→1.
  // Paths: 2 + 2 + 1 + 1 = 6; counts 2 (2 paths), 1 (2 + 1), 0 (1) → APL dist {0: 1/6, 1: 3/6, 2: 2/6}, mean 7/6.
  // Normalized (units of c uniform): {0: ¼, 1: ½, 2: ¼}, mean 1.
  // Contributions: Relu: the 4 paths through h (4/6), normalized ½; PRelu: channels 0 and 2 (2 + 1 paths: 3/6),
  // normalized 2/4.
  const b = new GraphBuilder();
  const x = b.input('x', [1, 2]);
  const h = b.op('Relu', [b.op('MatMul', [x, b.init([2, 2])], {}, [1, 2])], {}, [1, 2]);
  let c = b.op('Concat', [h, x], { axis: 1 }, [1, 4]);
  c = b.op('PRelu', [c, b.init([4], [0, 1, 0, 1])], {}, [1, 4]);
  b.output(b.op('MatMul', [c, b.init([4, 1])], {}, [1, 1]));
  const r = pathLength(b.graph);
  close(r.outputs[0].logPaths!, Math.log(6));
  close(r.apl, 7 / 6);
  close(r.napl, 1);
  closeAll(r.outputs[0].distribution!.apl, [1 / 6, 3 / 6, 2 / 6]);
  closeAll(r.outputs[0].distribution!.napl, [0.25, 0.5, 0.25]);
  closeAll(r.layerContributions.map((l) => l.apl), [4 / 6, 3 / 6]);
  closeAll(r.layerContributions.map((l) => l.napl), [0.5, 0.5]);
});

test('an output that no path reaches: empty distribution, zero contributions', () => {
  const b = new GraphBuilder();
  const x = b.input('x', [1, 2]);
  b.output(b.op('Relu', [b.op('Shape', [x], {}, [2])], {}, [2]));
  b.output(b.op('Relu', [x], {}, [1, 2]));
  const r = pathLength(b.graph);
  assert.equal(r.outputs[0].dependsOnInput, false);
  assert.deepEqual(r.outputs[0].distribution, { apl: [], napl: [] });
  assert.deepEqual(r.layerContributions, [{ apl: 0, napl: 0 }, { apl: 0, napl: 0 }]);
  closeAll(r.outputs[1].distribution!.apl, [0, 1]);
});

test('the propagation keeps the distributions of graph outputs only', () => {
  // chain of 3 conv+relu: intermediate values are released once read; the output keeps its distributions
  const g = chain(['relu', 'relu', 'relu']);
  const p = propagate(g);
  const out = g.outputs[0].name;
  for (const [v, s] of p.states) {
    if (v === out) assert.ok(!s.released && s.v.kLen === 4, 'output keeps its distributions');
    else assert.equal(s.released, true, `${v} released`);
    // the scalar state stays for every value
    assert.equal(s.E.length, s.logN.length);
  }
});
