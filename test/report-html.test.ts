// The HTML report: chart marks counted in the SVG vega emits (one bar group per activation layer, one map
// cell per channel, one point per sweep entry), escaping of model strings, no external resources; then the
// page in headless Chromium (scripts/test-deps.sh installs it): DOM counts, no console errors, no network,
// a screenshot in test-output/report.png.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Model } from '../src/import/ir.js';
import { loadModel } from '../src/import/onnx-io.js';
import { audit, type AuditReport } from '../src/analyze/audit.js';
import { MARKS, renderHtmlReport } from '../src/report/html.js';
import type { SweepPoint } from '../src/sweep.js';
import { fixture } from './support/fixtures.js';
import { reluToPRelu } from './support/edits.js';

const FIXTURE = fixture('mnist_cnn.onnx');
const OUT = join(import.meta.dirname, '..', 'test-output');
const CHROMIUM = '/usr/bin/chromium';

/** The fixture with every Relu replaced by a PRelu whose slope is 1 (linear) on the even channels, 0 (ReLU) on the odd ones. */
function halfLinear(model: Model, report: AuditReport): Model {
  const byNode = new Map(report.layers.map((l) => [l.nodes[0], l]));
  return reluToPRelu(model, (n) => {
    const layer = byNode.get(n.name);
    assert.ok(layer && layer.channelAxis === 1, `Relu ${n.name} is a per-channel layer of the audit`);
    return Array.from({ length: layer.channels }, (_, c) => (c % 2 === 0 ? 1 : 0));
  });
}

const SWEEP: SweepPoint[] = [
  { lambda: 0, valAccuracy: 0.991, napl: 4, apl: 4.98, macs: 3782496, latencyMs: 0.41 },
  { lambda: 1e-3, valAccuracy: 0.989, napl: 3.1, apl: 3.9 },
  { lambda: 3e-3, valAccuracy: 0.985, napl: 2.2, apl: 2.8, latencyMs: 0.33 },
  { lambda: 1e-2, valAccuracy: 0.962, napl: 1.2, apl: 1.5, macs: 2100000 },
  { lambda: 1e-3, valAccuracy: 0.981, napl: 3.3, fromScratch: true },
  { lambda: 1e-2, valAccuracy: 0.93, napl: 1.4, fromScratch: true, label: 'scratch, λ=0.01' },
];

const FOLD = {
  model: 'mnist_cnn.onnx', objective: 'depth', tolerance: 1e-4, eps: 0, passes: ['fold-batchnorm', 'merge-conv'],
  before: { nodes: 17, layers: 7, depth: 7, params: 43546, macs: 3782496, apl: 4.98, napl: 4, latencyMs: 0.41, opCounts: {} },
  after: { nodes: 12, layers: 5, depth: 5, params: 40210, macs: 3605000, apl: 2.5, napl: 2, latencyMs: 0.33, opCounts: {} },
  taken: [{ pass: 'merge-conv', what: 'merged /layers/layers.0/conv1 <into> conv2', nodes: [] }],
  rejected: [], verification: { inputs: 'random', seed: 1, batch: 2, maxRelError: 2e-7, passed: true, perOutput: {} }, rounds: 1, notes: [],
};

/** The items of the data mark `name` inside the figure `id`: [aria-label] of each. */
function markItems(html: string, id: string, name: string): string[] {
  const fig = html.match(new RegExp(`<figure class="chart" id="chart-${id}"[\\s\\S]*?</figure>`));
  assert.ok(fig, `figure chart-${id} present`);
  // vega may split a mark into several groups (one per facet or stack): take the items of all of them
  const groups = [...fig[0].matchAll(new RegExp(`<g class="mark-[a-z]+ role-mark ${name}_marks"[^>]*>([\\s\\S]*?)</g>`, 'g'))];
  assert.ok(groups.length, `mark ${name} in chart-${id}`);
  return groups.flatMap((g) => [...g[1].matchAll(/<(?:path|rect)\b[^>]*\baria-label="([^"]*)"/g)].map((m) => m[1]));
}
const layerOf = (label: string) => label.match(/^layer (\d+) /)?.[1];

let cached: { report: AuditReport; compare: AuditReport; html: string } | undefined;
async function build() {
  if (cached) return cached;
  const report = audit(loadModel(FIXTURE));
  const compare = audit(halfLinear(loadModel(FIXTURE), report));
  const html = await renderHtmlReport({ report, compare, fold: FOLD, sweep: SWEEP });
  cached = { report, compare, html };
  return cached;
}

test('the PRelu copy is half linear on every layer', async () => {
  const { report, compare } = await build();
  assert.equal(compare.layers.length, report.layers.length);
  for (const [i, l] of compare.layers.entries()) {
    assert.equal(l.name, report.layers[i].name);
    assert.equal(l.kind, 'prelu');
    assert.equal(l.nonlinearChannels, l.channels / 2);
  }
  assert.ok(compare.summary.napl < report.summary.napl);
});

test('SVG: one bar group per activation layer, one map cell per channel, one point per sweep entry', async () => {
  const { report, compare, html } = await build();
  // bars: per layer, before and after, each stacked nonlinear + linear
  const bars = markItems(html, 'layers', MARKS.layerBars);
  const groups = new Set(bars.map(layerOf));
  assert.deepEqual([...groups], report.layers.map((_, i) => String(i + 1)));
  assert.equal(bars.length, report.layers.length * 4);
  for (const [i, l] of report.layers.entries()) {
    const mine = bars.filter((b) => layerOf(b) === String(i + 1));
    assert.ok(mine.some((b) => b.includes(`before: ${l.nonlinearChannels} nonlinear of ${l.channels}`)));
    assert.ok(mine.some((b) => b.includes(`after: ${compare.layers[i].nonlinearChannels} nonlinear of ${l.channels}`)));
  }
  // core-network maps: one cell per channel of every layer, before and after
  for (const [side, r] of [['before', report], ['after', compare]] as const) {
    const cells = markItems(html, `core-${side}`, MARKS.coreCells);
    assert.equal(cells.length, r.summary.channels, `${side}: one cell per channel`);
    for (const [i, l] of r.layers.entries()) {
      const row = cells.filter((c) => layerOf(c) === String(i + 1));
      assert.equal(row.length, l.channels, `${side} layer ${i + 1}: ${l.channels} cells`);
      assert.equal(row.filter((c) => c.endsWith(': nonlinear')).length, l.nonlinearChannels);
    }
    if (side === 'after') assert.equal(cells.filter((c) => c.endsWith(': linearized')).length, compare.summary.linearChannels);
  }
  // sweep: every point, both series
  const points = markItems(html, 'sweep', MARKS.sweepPoints);
  assert.equal(points.length, SWEEP.length);
  assert.equal(points.filter((p) => p.startsWith('from scratch')).length, 2);
  // contribution bars: one per layer and model
  assert.equal(markItems(html, 'contribution', MARKS.contribution).length, report.layers.length * 2);
  // headline numbers and tables
  assert.deepEqual([...html.matchAll(/<div class="kpi-label">([^<]*)<\/div>/g)].map((m) => m[1]), ['APL', 'NAPL', 'Effective depth', 'Params', 'MACs']);
  assert.match(html, /<span class="stat-label">latency<\/span> 0\.41 ms → <b>0\.33 ms<\/b>/);
  assert.match(html, /<th class="num">MACs before<\/th>/);
  assert.match(html, /latency, onnxruntime-node/);
});

test('single report: no compare columns, one bar per layer, one map', async () => {
  const { report } = await build();
  const html = await renderHtmlReport({ report });
  const bars = markItems(html, 'layers', MARKS.layerBars);
  assert.equal(new Set(bars.map(layerOf)).size, report.layers.length);
  assert.equal(bars.length, report.layers.length * 2);
  assert.equal(markItems(html, 'core', MARKS.coreCells).length, report.summary.channels);
  assert.doesNotMatch(html, /id="chart-sweep"|id="fold"/);
  assert.doesNotMatch(html, /MACs before/);
});

test('model strings are escaped; the page references nothing outside itself', async () => {
  const { report } = await build();
  const evil = '<img src=x onerror="alert(1)">&';
  const r: AuditReport = structuredClone(report);
  r.model.file = evil;
  r.layers[0].name = evil;
  r.cost.nodes[0].node = evil;
  r.model.inputs[0].name = evil;
  r.warnings.push(evil);
  const html = await renderHtmlReport({ report: r, sweep: [{ lambda: 1, valAccuracy: 0.5, napl: 1, label: evil }], fold: { before: {}, after: {}, notes: [evil] } });
  // no tag or attribute from the model: every tag is one the renderer writes, no attribute is an event handler
  const tags = [...html.matchAll(/<([a-zA-Z][\w:-]*)((?:\s+[\w:-]+(?:\s*=\s*"[^"]*")?)*)\s*\/?>/g)];
  assert.equal(tags.length, html.match(/<[a-zA-Z]/g)!.length, 'every tag well formed');
  const names = new Set(tags.map((t) => t[1].toLowerCase()));
  const allowed = 'html head meta title style body header main div nav a section h1 h2 h3 p b sup ul li code span table thead tbody tfoot tr th td details summary figure figcaption footer svg g path rect line text defs clippath';
  assert.deepEqual([...names].filter((n) => !allowed.split(' ').includes(n)), []);
  const attrs = tags.flatMap((t) => [...t[2].matchAll(/\s([\w:-]+)(?:\s*=\s*"[^"]*")?/g)].map((m) => m[1].toLowerCase()));
  assert.deepEqual(attrs.filter((a) => a.startsWith('on')), []);
  assert.match(html, /&lt;img src=x onerror=&quot;alert\(1\)&quot;&gt;&amp;/);
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /\s(?:src|href)="(?!#)/i);
  assert.doesNotMatch(html, /url\((?!#)|@import/i);
});

test('a real distribution and per-channel masks are drawn when the report has them', async () => {
  const { report } = await build();
  const r = structuredClone(report) as AuditReport & { pathLengths: { distribution?: { apl: number[]; napl: number[] } }[] };
  r.pathLengths[0].distribution = { napl: [0, 0, 0, 0, 1], apl: [0.01, 0.04, 0.1, 0.2, 0.3, 0.35] };
  const masked = r.layers[0] as (typeof r.layers)[0] & { linearMask?: boolean[] };
  masked.linearMask = Array.from({ length: masked.channels }, (_, c) => c % 3 === 0);
  const html = await renderHtmlReport({ report: r });
  assert.equal(markItems(html, 'distribution', `${MARKS.distribution}_napl`).length, 5);
  assert.equal(markItems(html, 'distribution', `${MARKS.distribution}_apl`).length, 6);
  const row = markItems(html, 'core', MARKS.coreCells).filter((c) => layerOf(c) === '1');
  assert.deepEqual(row.map((c) => c.endsWith(': linear')), masked.linearMask);
});

test('headless Chromium: charts drawn, no console errors, no network; screenshot', { skip: !existsSync(CHROMIUM) && `${CHROMIUM} missing (scripts/test-deps.sh installs it)`, timeout: 120_000 }, async () => {
  const { report, compare, html } = await build();
  mkdirSync(OUT, { recursive: true });
  const file = join(OUT, 'report.html');
  writeFileSync(file, html);
  const url = pathToFileURL(file).href;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('request', (q) => { if (q.url() !== url) requests.push(q.url()); });
    await page.goto(url, { waitUntil: 'load' });
    // a string, not a function: tsx would wrap a function's inner closures in its __name helper, unknown in the page
    const dom = (await page.evaluate(`(() => {
      const marks = ${JSON.stringify(MARKS)};
      const count = (fig, mark) => document.querySelectorAll('#chart-' + fig + ' svg g.' + mark + '_marks > path').length;
      const svgs = [...document.querySelectorAll('figure.chart svg')].map((s) => {
        const b = s.getBoundingClientRect();
        return { fig: s.closest('figure').id, w: b.width, h: b.height, children: s.querySelectorAll('*').length };
      });
      const layerGroups = new Set([...document.querySelectorAll('#chart-layers g.' + marks.layerBars + '_marks > path')]
        .map((p) => p.getAttribute('aria-label').split(' ')[1]));
      return {
        svgs, layerGroups: layerGroups.size, bars: count('layers', marks.layerBars), before: count('core-before', marks.coreCells),
        after: count('core-after', marks.coreCells), points: count('sweep', marks.sweepPoints),
        kpis: [...document.querySelectorAll('.kpi-label')].map((k) => k.textContent),
      };
    })()`)) as {
      svgs: { fig: string; w: number; h: number; children: number }[]; layerGroups: number; bars: number; before: number; after: number;
      points: number; kpis: string[];
    };
    assert.deepEqual(dom.svgs.map((s) => s.fig).sort(), ['chart-contribution', 'chart-core-after', 'chart-core-before', 'chart-distribution', 'chart-layers', 'chart-sweep']);
    for (const s of dom.svgs) assert.ok(s.w > 200 && s.h > 50 && s.children > 20, `${s.fig} drawn (${s.w}×${s.h}, ${s.children} elements)`);
    assert.equal(dom.layerGroups, report.layers.length);
    assert.equal(dom.bars, report.layers.length * 4);
    assert.equal(dom.before, report.summary.channels);
    assert.equal(dom.after, compare.summary.channels);
    assert.equal(dom.points, SWEEP.length);
    assert.deepEqual(dom.kpis, ['APL', 'NAPL', 'Effective depth', 'Params', 'MACs']);
    await page.screenshot({ path: join(OUT, 'report.png'), fullPage: true });
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);
  } finally {
    await browser.close();
  }
});
