// merge-plan: the cheapest partition of a chain of linear layers (dynamic programming), checked against
// brute force over every partition, and the chains and merged geometries it reads off a graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cheapestPartition, findChains, planMerges } from '../src/export/merge-plan.js';
import { geometryMacs, layerCoster, type LayerGeometry } from '../src/export/layer-cost.js';
import { GraphBuilder } from '../src/import/graph-builder.js';
import { passContext } from '../src/export/pass.js';
import { staticShapes } from '../src/export/shapes.js';
import { randomFeeds } from '../src/export/verify.js';
import { seededRandom } from '../src/import/random.js';
import { mergeConv } from '../src/export/merge-conv.js';
import { removeIdentity } from '../src/export/remove-identity.js';

test('cheapestPartition: hand-computed chains', () => {
  const single = (i: number, j: number) => (i === j ? 1 : undefined);
  assert.deepEqual(cheapestPartition(3, single), { segments: [[0, 0], [1, 1], [2, 2]], cost: 3 });
  // pairs lose, the whole chain wins: what judging pairs one at a time misses
  const costs: Record<string, number> = { '0,0': 1, '1,1': 1, '2,2': 1, '0,1': 2.5, '1,2': 2.5, '0,2': 1.5 };
  assert.deepEqual(cheapestPartition(3, (i, j) => costs[`${i},${j}`]), { segments: [[0, 2]], cost: 1.5 });
  // the whole chain cannot merge (e.g. a zero-padded border): the best pair
  const noWhole = { ...costs, '0,2': undefined, '0,1': 1.2 };
  assert.deepEqual(cheapestPartition(3, (i, j) => noWhole[`${i},${j}` as keyof typeof noWhole]), { segments: [[0, 1], [2, 2]], cost: 2.2 });
  // ties go to fewer segments (a shallower model at the same cost); with a tolerance, near-ties too
  assert.deepEqual(cheapestPartition(2, (i, j) => (i === j ? 1 : 2)).segments, [[0, 1]]);
  assert.deepEqual(cheapestPartition(2, (i, j) => (i === j ? 1 : 2.04)).segments, [[0, 0], [1, 1]]);
  assert.deepEqual(cheapestPartition(2, (i, j) => (i === j ? 1 : 2.04), 0.03).segments, [[0, 1]]);
  assert.deepEqual(cheapestPartition(2, (i, j) => (i === j ? 1 : 2.1), 0.03).segments, [[0, 0], [1, 1]]);
});

test('cheapestPartition equals brute force over every partition (random costs, some merges impossible)', () => {
  const rand = seededRandom(11);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rand() * 7);
    const table = new Map<string, number | undefined>();
    for (let i = 0; i < n; i++)
      for (let j = i; j < n; j++) table.set(`${i},${j}`, i === j ? 1 + rand() : rand() < 0.25 ? undefined : rand() * (j - i + 2));
    const cost = (i: number, j: number) => table.get(`${i},${j}`);
    let best = Infinity;
    for (let mask = 0; mask < 1 << (n - 1); mask++) {
      // bit k set = a cut after layer k
      let total = 0, start = 0;
      for (let k = 0; k < n; k++) {
        if (k === n - 1 || mask & (1 << k)) {
          const c = cost(start, k);
          total += c === undefined ? Infinity : c;
          start = k + 1;
        }
      }
      best = Math.min(best, total);
    }
    const p = cheapestPartition(n, cost);
    assert.ok(Math.abs(p.cost - best) < 1e-12, `trial ${trial}: ${p.cost} vs ${best}`);
    let sum = 0;
    for (const [i, j] of p.segments) sum += cost(i, j)!;
    assert.ok(Math.abs(sum - p.cost) < 1e-12);
    assert.equal(p.segments[0][0], 0);
    assert.equal(p.segments[p.segments.length - 1][1], n - 1);
  }
});

/** stem 3×3 → [expand 1×1 → dw 3×3 → project 1×1] + x, all activations identity PRelus (removed first). */
async function invertedResidual() {
  const b = new GraphBuilder({ opset: 13 });
  const x = b.input('x', ['batch', 3, 12, 12]);
  const s = b.prelu(b.conv(x, 3, 8, 3, { pad: 1 }), new Array(8).fill(1));
  let h = b.prelu(b.conv(s, 8, 32, 1), new Array(32).fill(1));
  h = b.prelu(b.conv(h, 32, 32, 3, { pad: 1, group: 32 }), new Array(32).fill(1));
  const m = b.output(b.op('Add', [s, b.conv(h, 32, 8, 1)])).model();
  const shapes = await staticShapes(m, randomFeeds(m.graph, { batch: 1 }));
  const ctx = passContext({ shapes });
  assert.ok(removeIdentity(m.graph, ctx));
  return { m, ctx };
}

test('findChains: the residual branch is one chain; merged geometries agree with the merge that is applied', async () => {
  const { m, ctx } = await invertedResidual();
  const chains = findChains(m.graph, ctx);
  // the stem's output is read by the branch and the Add: it ends no chain; the branch is expand → dw → project
  assert.equal(chains.length, 1);
  const ch = chains[0];
  assert.deepEqual(ch.nodes.map((n) => n.opType), ['Conv', 'Conv', 'Conv']);
  assert.deepEqual(ch.absorbs, [{ kind: 'add', shape: [1, 8, 12, 12] }]);
  const whole = ch.segment(0, 2)!;
  assert.equal(whole.kind, 'conv');
  if (whole.kind !== 'conv') return;
  assert.deepEqual([whole.cin, whole.cout, whole.group, whole.kernel, whole.pads], [8, 8, 1, [3, 3], [1, 1, 1, 1]]);
  assert.equal(geometryMacs(whole), 8 * 8 * 9 * 144);
  const pair = ch.segment(0, 1)!;
  assert.equal(geometryMacs(pair), 32 * 8 * 9 * 144);
  // the merge as applied gives the same geometry
  mergeConv(m.graph, ctx);
  const convs = m.graph.nodes.filter((n) => n.opType === 'Conv');
  assert.equal(convs.length, 2);
  const merged = convs.find((n) => n.inputs[0] !== 'x')!;
  assert.deepEqual(m.graph.initializers.get(merged.inputs[1])!.dims, [8, 8, 3, 3]);
});

test('planMerges under MACs: the whole branch, with the residual Add saved; under depth the same; pairs reported apart', async () => {
  const { m, ctx } = await invertedResidual();
  const chains = findChains(m.graph, ctx);
  for (const objective of ['macs', 'depth'] as const) {
    const coster = layerCoster(objective);
    const plan = planMerges(chains, (g: LayerGeometry) => coster.cost(g));
    assert.deepEqual(plan.chains[0].segments, [[0, 2]], objective);
    assert.equal(plan.together.size, 2);
    assert.deepEqual(plan.chains[0].apart, []);
  }
  // a cost under which only the first pair pays (the whole branch is dear): expand∘dw merged, project apart
  const dense3x3 = (g: LayerGeometry) => g.kind === 'conv' && g.group === 1 && g.kernel[0] === 3;
  const plan = planMerges(chains, (g) => (dense3x3(g) && g.kind === 'conv' && g.cout === 32 ? 0.5 : dense3x3(g) ? 5 : g.kind === 'add' ? 0 : 1));
  assert.deepEqual(plan.chains[0].segments, [[0, 1], [2, 2]]);
  assert.equal(plan.chains[0].apart.length, 1);
  assert.equal(plan.chains[0].costNow, 3);
  assert.equal(plan.chains[0].costPlanned, 1.5);
});
