// push-bias-map: bias maps left by exact conv merges move forward into the next conv's map (one Add fewer
// each), checked against onnxruntime-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pushBiasMap } from '../src/export/push-bias-map.js';
import { fold } from '../src/export/pipeline.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { foldAndCompare, shapesCtx } from './support/fold.js';
import { count } from './support/graph.js';

/** Convs each followed by a constant bias-map Add [C, H, W] (what exact merges across zero padding leave). */
function mapped(n = 3, stride = 1, group = 1) {
  const b = new GraphBuilder({ opset: 13 });
  let y = b.input('x', ['batch', 8, 9, 9]);
  let hw = 9;
  for (let i = 0; i < n; i++) {
    const s = i === 1 ? stride : 1;
    y = b.conv(y, 8, 8, 3, { pad: 1, stride: s, group });
    hw = Math.floor((hw + 2 - 3) / s) + 1;
    y = b.op('Add', [y, b.normal([8, hw, hw], 0.5)]);
  }
  return b.output(y).model();
}

test('maps of a run of convs collapse into one Add after the last conv (exact)', async () => {
  for (const [stride, group] of [[1, 1], [2, 1], [1, 8]]) {
    const { model } = await foldAndCompare(mapped(3, stride, group), async (f) => assert.ok(pushBiasMap(f.graph, await shapesCtx(f))));
    assert.equal(count(model, 'Conv'), 3);
    assert.equal(count(model, 'Add'), 1, `stride ${stride} group ${group}`);
    assert.equal(model.graph.nodes[model.graph.nodes.length - 1].opType, 'Add');
    assert.ok(model.graph.nodes.filter((n) => n.opType === 'Conv').slice(0, 2).every((n) => n.inputs.length === 2), 'biases moved into the map');
  }
});

test('a map is not pushed into a conv without a map of its own (no Add would be saved)', async () => {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 8, 9, 9]);
  const m = b.output(b.conv(b.op('Add', [b.conv(x, 8, 8, 3, { pad: 1 }), b.normal([8, 9, 9], 0.5)]), 8, 8, 3, { pad: 1 })).model();
  assert.equal(pushBiasMap(m.graph, await shapesCtx(m)), false);
});

test('in the pipeline the maps are pushed: fewer nodes, same function', async () => {
  const { model, report } = await fold(mapped(3), { latencyRuns: 0 });
  assert.equal(count(model, 'Add'), 1);
  assert.ok(report.taken.some((e) => e.pass === 'push-bias-map'));
  assert.ok(report.verification.maxRelError < 1e-4);
});
