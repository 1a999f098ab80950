// The blend form's one builder and one matcher: what linearize writes, the audit and the fold passes read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blendNodes, matchBlendAt } from '../src/import/blend.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { Tensor } from '../src/import/tensor.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { randomFeeds } from '../src/import/random.js';

test('blendNodes writes y = s + A ⊙ (x − s) (checked in onnxruntime) and matchBlendAt finds it', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', [2, 3, 4]);
  const s = b.op('Tanh', [x]);
  const m = b.output(s).model();
  const g = m.graph;
  const A = [0, 0.25, 1];
  g.initializers.set('A', Tensor.f32('A', [3, 1], A));
  const nodes = blendNodes(g, 'act', x, s, 'A', 'y');
  g.nodes.push(...nodes);
  g.outputs = [{ name: 'y', dtype: 'float32', shape: [2, 3, 4] }];
  const feeds = randomFeeds(g, { seed: 3 });
  const { y } = await runOrt(await ortSession(m), feeds);
  const xv = feeds.x.numbers();
  y.numbers().forEach((v, i) => {
    const a = A[Math.floor(i / 4) % 3], t = Math.tanh(xv[i]);
    assert.ok(Math.abs(v - (t + a * (xv[i] - t))) < 1e-6, `element ${i}`);
  });
  const found = matchBlendAt(nodes[0], g.consumers());
  assert.equal(found.length, 1);
  assert.deepEqual([found[0].x, found[0].s, found[0].slope, found[0].mirrored, found[0].fin], [x, s, 'A', false, nodes[2]]);
  assert.deepEqual(matchBlendAt(nodes[1], g.consumers()), [], 'only a Sub starts a blend');
});
