// --granularity block: the activations an inverted residual block joins by one conv share one slope. The
// grouping on a real torch export, the function unchanged at step 0 (onnxruntime), and the shared slope's
// gradient (the sum over the layers reading it) against finite differences on the tfjs executor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/import/onnx-io.js';
import { census } from '../src/analyze/census.js';
import { slopeBlocks } from '../src/train/block-slopes.js';
import { makeLinearizable } from '../src/train/linearizable.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { encodeModel } from '../src/import/onnx-io.js';
import { randomFeeds } from '../src/import/random.js';
import { compareValues, Tensor } from '../src/import/tensor.js';
import { tf, useBackend } from '../src/import/tfjs/backends.js';
import { compile, feedsToTf } from '../src/import/tfjs/executor.js';

const fixture = new URL('../fixtures/mobilenetv2_small.onnx', import.meta.url).pathname;

test('slopeBlocks: each inverted residual block pairs its expand and depthwise ReLU6; stem and head stay alone', () => {
  const m = loadModel(fixture);
  const groups = slopeBlocks(m.graph, census(m).layers);
  const short = groups.map((g) => g.map((n) => n.replace(/^\/|\/Clip$/g, '').split('/').pop()));
  assert.deepEqual(short, [['stem.2'], ['expand.2', 'dw.2'], ['expand.2', 'dw.2'], ['expand.2', 'dw.2'], ['expand.2', 'dw.2'], ['head.2']]);
});

test('granularity block: one slope per block read by both activations, the function unchanged at step 0', async () => {
  const source = loadModel(fixture);
  const { model, slopes } = makeLinearizable(source, { granularity: 'block' });
  assert.equal(slopes.length, 6);
  const g = model.graph;
  for (const s of slopes.slice(1, 5)) {
    assert.equal(g.nodes.filter((n) => n.inputs.includes(s.name)).length, 2, s.layer);
    assert.equal(g.initializers.get(s.name)!.size, 1);
    assert.match(s.layer, /expand.* \+ .*dw/);
  }
  assert.equal(slopes[1].channels, 2 * census(source).layers[1].channels);
  const feeds = randomFeeds(source.graph, { batch: 2, seed: 1 });
  const [a, b] = [await ortSession(encodeModel(source)), await ortSession(encodeModel(model))];
  const [ya, yb] = [Object.values(await runOrt(a, feeds))[0], Object.values(await runOrt(b, feeds))[0]];
  assert.ok(compareValues(yb.numbers(), ya.numbers()).maxRelError < 1e-6);
  assert.equal(ya.numbers().length, 20);
});

test('granularity block: the shared slope\'s gradient equals finite differences of the loss', async () => {
  await useBackend('cpu');
  const { model, slopes } = makeLinearizable(loadModel(fixture), { granularity: 'block' });
  const s = slopes[2];
  model.graph.initializers.set(s.name, Tensor.f32(s.name, [1, 1, 1], [0.3]));
  const exe = compile(model, { alsoTrainable: [s.name] });
  const feeds = feedsToTf(randomFeeds(model.graph, { batch: 2, seed: 4 }));
  const v = exe.variables.get(s.name)!;
  const loss = () => tf.tidy(() => tf.sum(tf.square(Object.values(exe.run(feeds))[0])) as tf.Scalar);
  const { grads } = tf.variableGrads(loss, [v]);
  const an = (await grads[v.name].data())[0];
  const at = async (x: number) => { v.assign(tf.tensor([x], [1, 1, 1])); return (await loss().data())[0]; };
  const eps = 1e-2;
  const fd = ((await at(0.3 + eps)) - (await at(0.3 - eps))) / (2 * eps);
  assert.ok(Math.abs(an) > 1e-3, `gradient ${an}`);
  assert.ok(Math.abs(fd - an) < 2e-2 * Math.abs(an), `finite difference ${fd} vs gradient ${an}`);
});
