// Merges across zero padding: the pad-front rewrite (linearize --merge-ready) and the border-approximate merge
// (fold --borders approximate), checked with onnxruntime-node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attrInts, type Model } from '../src/import/ir.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { inferShapes } from '../src/import/shape-inference.js';
import { cloneModel } from '../src/export/graph-utils.js';
import { padFront } from '../src/export/pad-front.js';
import { fold } from '../src/export/pipeline.js';
import { renderFoldMarkdown } from '../src/export/report.js';
import { compareOutputs, randomFeeds, runModel } from '../src/export/verify.js';
import { count } from './support/fold.js';

const convs = (m: Model) => m.graph.nodes.filter((n) => n.opType === 'Conv');

/** x → conv 3×3 pad 1 (stride s) → PRelu(slope) → conv 3×3 pad 1 [→ PRelu(slope) → conv 3×3 pad 1] [+ x]. */
function padded(o: { stride?: number; convs?: number; slope?: number; residual?: boolean; size?: number } = {}): Model {
  const b = new GraphBuilder({ opset: 13, seed: 5 });
  const x = b.input('x', ['batch', 6, o.size ?? 12, o.size ?? 12]);
  let y = b.conv(x, 6, 6, 3, { pad: 1, stride: o.stride ?? 1 });
  for (let k = 1; k < (o.convs ?? 2); k++) y = b.conv(b.prelu(y, new Array(6).fill(o.slope ?? 1), [6, 1, 1]), 6, 6, 3, { pad: 1 });
  if (o.residual) y = b.op('Add', [y, x]);
  const m = b.output(y).model();
  inferShapes(m);
  return m;
}

async function rel(a: Model, b: Model, seed = 11): Promise<number> {
  const feeds = randomFeeds(a.graph, { batch: 3, seed });
  return compareOutputs(await runModel(a, feeds), await runModel(b, feeds)).maxRelError;
}

test('pad-front: B\'s padding moves onto A (p1 + p2·s1), the output shape stays, and the function changes at the borders only', async () => {
  for (const stride of [1, 2]) {
    const m = padded({ stride, size: stride === 1 ? 12 : 14 });
    const pf = cloneModel(m);
    const rw = padFront(pf);
    assert.equal(rw.length, 1);
    const [A, B] = convs(pf);
    assert.deepEqual(attrInts(A, 'pads'), new Array(4).fill(1 + stride));
    assert.deepEqual(attrInts(B, 'pads'), [0, 0, 0, 0]);
    assert.deepEqual(rw[0].padsAfter, new Array(4).fill(1 + stride));
    // same output shape, different values (on the outer ring only)
    const feeds = randomFeeds(m.graph, { batch: 2, seed: 4 });
    const [ro, rp] = [Object.values(await runModel(m, feeds))[0], Object.values(await runModel(pf, feeds))[0]];
    assert.deepEqual(rp.dims, ro.dims);
    const [H, W] = ro.dims.slice(2);
    const [vo, vp] = [ro.numbers(), rp.numbers()];
    let ring = 0;
    for (let i = 0; i < vo.length; i++) {
      const h = Math.floor(i / W) % H, w = i % W;
      const onRing = h === 0 || w === 0 || h === H - 1 || w === W - 1;
      if (!onRing) assert.ok(Math.abs(vo[i] - vp[i]) < 1e-4, `interior differs at ${i}`);
      else ring = Math.max(ring, Math.abs(vo[i] - vp[i]));
    }
    assert.ok(ring > 1e-3, 'the ring changes');
  }
});

test('pad-front is not applied at a nonlinear activation, nor where the pair merges exactly already', () => {
  assert.equal(padFront(padded({ slope: 0.5 })).length, 0);
  // 1×1 unpadded A ∘ 3×3 pad 1: merge-conv handles it exactly (bias map), no rewrite needed
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 6, 10, 10]);
  const m = b.output(b.conv(b.prelu(b.conv(x, 6, 6, 1), new Array(6).fill(1), [6, 1, 1]), 6, 6, 3, { pad: 1 })).model();
  inferShapes(m);
  assert.equal(padFront(m).length, 0);
});

test('a pad-front pair, a chain of three and a residual block fold exactly to one conv (onnxruntime, 1e-5)', async () => {
  for (const [o, pads] of [[{}, 2], [{ stride: 2, size: 14 }, 3], [{ convs: 3 }, 3], [{ residual: true }, 2]] as const) {
    const pf = padded(o);
    padFront(pf);
    assert.equal(attrInts(convs(pf)[0], 'pads')![0], pads);
    const { model, report } = await fold(pf, { latencyRuns: 0 });
    assert.equal(count(model, 'Conv'), 1, JSON.stringify(o));
    assert.equal(report.after.depth, 1);
    assert.ok(report.verification.maxRelError < 1e-5);
    assert.ok((await rel(pf, model)) < 1e-5, 'independent check');
    assert.equal(report.approximation, undefined);
  }
});

test('fold --borders approximate merges padded pairs as their pad-front form and reports the error', async () => {
  for (const o of [{}, { stride: 2, size: 14 }, { convs: 3 }]) {
    const m = padded(o);
    const exact = await fold(m, { latencyRuns: 0 });
    assert.equal(count(exact.model, 'Conv'), o.convs ?? 2, 'exact: refused');
    assert.ok(exact.report.rejected.some((e) => /padding ring|reads input pixel/.test(e.reason ?? '')));
    const { model, report } = await fold(m, { latencyRuns: 0, borders: 'approximate', accuracy: async (x) => count(x, 'Conv') });
    assert.equal(count(model, 'Conv'), 1);
    const a = report.approximation!;
    assert.equal(a.merges, (o.convs ?? 2) - 1);
    assert.ok(report.taken.filter((e) => e.approximate).every((e) => e.relError! > 1e-4 && /approximate at the borders/.test(e.what)));
    // the reported error is the folded model's against the input, measured independently here
    const r = await rel(m, model, 1234);
    assert.ok(a.maxRelError > 1e-3 && a.maxRelError >= r * 0.999, `${a.maxRelError} vs ${r}`);
    assert.ok(a.agreement >= 0 && a.agreement <= 1);
    assert.deepEqual(a.accuracy, { before: o.convs ?? 2, after: 1 });
    // approximate merge = exact merge of the pad-front form
    const pf = cloneModel(m);
    padFront(pf);
    assert.ok((await rel(pf, model)) < 1e-5);
    assert.match(renderFoldMarkdown(report), /Approximate at the borders: \d conv merge/);
  }
});
