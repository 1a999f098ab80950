// `linfold report`: one self-contained HTML page for an AuditReport (optionally against a second one, with a
// fold report and an accuracy-vs-NAPL sweep). Charts are vega-lite specs rendered to inline SVG in Node
// (vega View with renderer 'none' → toSVG: no canvas, no browser); the page loads nothing (a CSP forbids
// it) and runs no script. Hovering a mark shows its values (a <title> added from vega's aria-label).
//
// Every chart sits in <figure class="chart" id="chart-…">; its data marks are named so that tests and
// tools can count them: `g.<MARKS.x>_marks > path` (see MARKS).
import type { TopLevelSpec, Config } from 'vega-lite';
import type { AuditReport, LayerRow } from '../analyze/audit.js';
import type { OutputPathLength } from '../analyze/path-length.js';
import { fmtCount, fmtNum } from '../analyze/render.js';
import type { FoldMetrics, FoldReport } from '../export/pipeline.js';
import type { SweepPoint } from '../sweep.js';

export interface HtmlReportInput {
  /** The model the page is about ("before" when `compare` is given). */
  report: AuditReport;
  /** A second audit of the same network, e.g. after linearization or folding ("after"). */
  compare?: AuditReport;
  /** A fold report, typically read back from `fold --json` output: checked at run time. */
  fold?: unknown;
  sweep?: SweepPoint[];
  /** Page title; default: "linfold report — <model file>". */
  title?: string;
}

/** Names of the data marks of each chart; in the SVG: `<g class="mark-… role-mark <name>_marks">`. */
export const MARKS = {
  /** Per-layer stacked bars: one item per (layer, model, state). */
  layerBars: 'layer_bars',
  /** Per-layer contribution to NAPL: one bar per (layer, model). */
  contribution: 'contribution_bars',
  /** Path-length distribution: one bar per (k, model). */
  distribution: 'distribution_bars',
  /** Core-network map: one cell per channel (or per bin of channels, for layers wider than MAP_MAX_CELLS). */
  coreCells: 'core_cells',
  /** Sweep: one point per sweep entry. */
  sweepPoints: 'sweep_points',
} as const;

/** Layers wider than this are drawn in the core-network map as this many bins of channels. */
export const MAP_MAX_CELLS = 256;

/** Optional fields the page uses when an AuditReport carries them (not in schemaVersion 1 yet). */
type LayerRowExt = LayerRow & {
  /** Per channel: true = linear (identity). The census has it; lets the map show the real channel positions. */
  linearMask?: boolean[];
  /** Expected number of this layer's nonlinear units on a path to the first output (uniform / normalized). */
  contribution?: { apl: number; napl: number };
};
type OutputExt = OutputPathLength & {
  /** apl[k] / napl[k]: probability that a path meets exactly k nonlinear activation units. */
  distribution?: { apl: number[]; napl: number[] };
};

// ---------- colours and chart theme ----------
const C = {
  nl: '#4338ca', lin: '#c7d2fe',
  beforeNl: '#64748b', beforeLin: '#cbd5e1',
  mapNl: '#312e81', mapLin: '#e0e7ff', mapLinearized: '#f59e0b', mapMixed: '#818cf8',
  post: '#4338ca', scratch: '#f59e0b',
  ink: '#0f172a', muted: '#64748b', grid: '#eef2f7', domain: '#cbd5e1',
};
const MONO = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace';
const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
const VL_CONFIG: Config = {
  font: FONT,
  background: '#ffffff',
  padding: 4,
  view: { stroke: null },
  axis: {
    labelColor: '#475569', titleColor: '#334155', titleFontWeight: 600, titleFontSize: 12, labelFontSize: 11,
    gridColor: C.grid, domainColor: C.domain, tickColor: C.domain, titlePadding: 10,
  },
  legend: { labelColor: '#334155', titleColor: '#334155', titleFontWeight: 600, labelFontSize: 11, titleFontSize: 11, orient: 'top', symbolType: 'square' },
  title: { color: C.ink, fontSize: 13, fontWeight: 600, anchor: 'start' },
};
/** Width of a chart's SVG, axes and legends included (the page's content column). */
const CHART_W = 940;
const FIT = { type: 'fit-x', contains: 'padding' } as const;

// ---------- small helpers ----------
export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const pct = (x: number, digits = 1) => `${(x * 100).toFixed(digits)}%`;
/** Keep the informative end of a long layer name: '/layers/layers.0/relu1/Relu' → '…layers.0/relu1/Relu'. */
const shortName = (s: string, max = 30) => (s.length <= max ? s : `…${s.slice(s.length - max + 1)}`);
function fmtPaths(log10: number | null): string {
  if (log10 === null) return 'none';
  if (log10 < 6) return Math.round(10 ** log10).toLocaleString('en-US');
  const e = Math.floor(log10);
  return `${(10 ** (log10 - e)).toFixed(2)} × 10<sup>${e}</sup>`;
}
function delta(before: number, after: number): { text: string; cls: string } {
  if (!num(before) || !num(after)) return { text: '', cls: '' };
  if (before === after) return { text: '±0', cls: 'same' };
  const d = before !== 0 ? `${after > before ? '+' : '−'}${Math.abs(((after - before) / before) * 100).toFixed(1)}%` : after > before ? '+' : '−';
  return { text: d, cls: after < before ? 'down' : 'up' };
}

// ---------- vega rendering ----------
type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');
let libs: Promise<[Vega, VegaLite]> | undefined;
const loadLibs = () => (libs ??= Promise.all([import('vega'), import('vega-lite')]));

async function toSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vl] = await loadLibs();
  // vega-lite warns (on the console) about autosize on step-sized views: the specs here are ours, keep quiet
  const compiled = vl.compile({ ...spec, config: { ...VL_CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec, { logger: vega.logger(vega.Error) }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    const svg = await view.toSVG();
    // A tooltip without script: each mark item that vega labelled gets a <title> with the same text.
    return svg.replace(/<(path|rect|line|circle)((?:\s[^>]*?)?\saria-label="([^"]*)"[^>]*?)\/>/g, (_m, tag: string, attrs: string, label: string) =>
      `<${tag}${attrs}><title>${label}</title></${tag}>`);
  } finally {
    view.finalize();
  }
}

// ---------- layer rows shared by the per-layer charts ----------
interface Row {
  key: string;
  label: string;
  before?: LayerRowExt;
  after?: LayerRowExt;
}

/** Layers of both reports, matched by name (by position when no name matches and the counts agree). */
function layerRows(r: AuditReport, cmp?: AuditReport): Row[] {
  const a = r.layers as LayerRowExt[];
  const b = (cmp?.layers ?? []) as LayerRowExt[];
  const rows: { before?: LayerRowExt; after?: LayerRowExt }[] = [];
  if (!cmp) rows.push(...a.map((l) => ({ before: l })));
  else {
    const byName = new Map(b.map((l) => [l.name, l]));
    const named = a.filter((l) => byName.has(l.name)).length;
    if (named === 0 && a.length === b.length) a.forEach((l, i) => rows.push({ before: l, after: b[i] }));
    else {
      const used = new Set<string>();
      for (const l of a) {
        const m = byName.get(l.name);
        if (m) used.add(m.name);
        rows.push({ before: l, after: m });
      }
      for (const l of b) if (!used.has(l.name)) rows.push({ after: l });
    }
  }
  const w = String(rows.length).length;
  return rows.map((x, i) => {
    const name = (x.before ?? x.after)!.name;
    return { ...x, key: String(i + 1), label: `${String(i + 1).padStart(w, ' ')}  ${shortName(name)}` };
  });
}

const maskOf = (l: LayerRowExt): boolean[] | undefined =>
  Array.isArray(l.linearMask) && l.linearMask.length === l.channels ? l.linearMask : undefined;

// ---------- charts ----------
function layerChartSpec(rows: Row[], compare: boolean): TopLevelSpec {
  const values: Record<string, unknown>[] = [];
  const txt: Record<string, unknown>[] = [];
  for (const row of rows) {
    for (const [model, l] of [['before', row.before], ['after', row.after]] as const) {
      if (!l) continue;
      const who = compare ? `${model}: ` : '';
      const states = [['nonlinear', l.nonlinearChannels], ['linear', l.linearChannels]] as const;
      for (const [state, n] of states)
        values.push({
          row: row.label, key: row.key, model, series: compare ? `${model} · ${state}` : state, n,
          order: state === 'nonlinear' ? 0 : 1,
          desc: `layer ${row.key} ${l.name} — ${who}${n} ${state} of ${l.channels} channels (${l.kind})`,
        });
      txt.push({ row: row.label, model, total: l.channels, text: `${l.nonlinearChannels}/${l.channels}` });
    }
  }
  const domain = compare ? ['before · nonlinear', 'before · linear', 'after · nonlinear', 'after · linear'] : ['nonlinear', 'linear'];
  const range = compare ? [C.beforeNl, C.beforeLin, C.nl, C.lin] : [C.nl, C.lin];
  const step = compare ? 13 : 20;
  const y = { field: 'row', type: 'nominal', sort: null, title: null, axis: { labelFont: MONO, labelLimit: 340, ticks: false, domain: false } } as const;
  const yOffset = compare ? { yOffset: { field: 'model', type: 'nominal', sort: ['before', 'after'], scale: { paddingInner: 0.1 } } } : {};
  return {
    width: CHART_W,
    autosize: FIT,
    height: { step },
    layer: [
      {
        name: MARKS.layerBars,
        data: { values },
        mark: { type: 'bar' },
        encoding: {
          y, ...yOffset,
          x: { field: 'n', type: 'quantitative', stack: 'zero', title: 'channels', axis: { grid: true, tickCount: 6 } },
          color: { field: 'series', type: 'nominal', scale: { domain, range }, title: null },
          order: { field: 'order', type: 'quantitative' },
          description: { field: 'desc', type: 'nominal' },
        },
      },
      {
        data: { values: txt },
        mark: { type: 'text', align: 'left', dx: 4, fontSize: 10, color: C.muted },
        encoding: { y, ...yOffset, x: { field: 'total', type: 'quantitative' }, text: { field: 'text', type: 'nominal' } },
      },
    ],
    resolve: { scale: { y: 'shared' } },
  } as TopLevelSpec;
}

function contributionSpec(rows: Row[], compare: boolean, exact: boolean): TopLevelSpec {
  const values: Record<string, unknown>[] = [];
  for (const row of rows)
    for (const [model, l] of [['before', row.before], ['after', row.after]] as const) {
      if (!l) continue;
      const v = exact && l.contribution ? l.contribution.napl : l.channels ? l.nonlinearChannels / l.channels : 0;
      values.push({ row: row.label, model, v, desc: `layer ${row.key} ${l.name} — ${compare ? `${model}: ` : ''}${fmtNum(v)}` });
    }
  const y = { field: 'row', type: 'nominal', sort: null, title: null, axis: { labelFont: MONO, labelLimit: 340, ticks: false, domain: false } } as const;
  return {
    width: CHART_W,
    autosize: FIT,
    height: { step: compare ? 12 : 18 },
    data: { values },
    name: MARKS.contribution,
    mark: { type: 'bar' },
    encoding: {
      y,
      ...(compare ? { yOffset: { field: 'model', type: 'nominal', sort: ['before', 'after'] } } : {}),
      x: { field: 'v', type: 'quantitative', title: exact ? 'contribution to NAPL' : 'nonlinear fraction n / C', scale: exact ? {} : { domain: [0, 1] }, axis: { grid: true, format: '.2f' } },
      color: compare
        ? { field: 'model', type: 'nominal', scale: { domain: ['before', 'after'], range: [C.beforeNl, C.nl] }, title: null }
        : { value: C.nl },
      description: { field: 'desc', type: 'nominal' },
    },
  } as TopLevelSpec;
}

function distributionSpec(dists: { model: string; kind: 'napl' | 'apl'; p: number[] }[], compare: boolean): TopLevelSpec {
  const values = dists.flatMap((d) => d.p.map((p, k) => ({
    k, p, model: d.model, kind: d.kind === 'napl' ? 'normalized (NAPL)' : 'unnormalized (APL)',
    desc: `${compare ? `${d.model}: ` : ''}${d.kind === 'napl' ? 'normalized' : 'uniform over paths'} — P(${k} nonlinear units) = ${p.toPrecision(3)}`,
  })));
  const panel = (kind: string) => ({
    width: CHART_W / 2 - 110,
    height: 180,
    title: kind,
    transform: [{ filter: { field: 'kind', equal: kind } }],
    name: `${MARKS.distribution}_${kind.startsWith('normalized') ? 'napl' : 'apl'}`,
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'k', type: 'ordinal', title: 'nonlinear units on the path', axis: { labelAngle: 0 } },
      y: { field: 'p', type: 'quantitative', title: 'share of paths', axis: { format: '.0%', grid: true } },
      ...(compare ? { xOffset: { field: 'model', type: 'nominal', sort: ['before', 'after'] } } : {}),
      color: compare ? { field: 'model', type: 'nominal', scale: { domain: ['before', 'after'], range: [C.beforeNl, C.nl] }, title: null } : { value: C.nl },
      description: { field: 'desc', type: 'nominal' },
    },
  });
  return { data: { values }, hconcat: [panel('normalized (NAPL)'), panel('unnormalized (APL)')], spacing: 40 } as TopLevelSpec;
}

type CellState = 'nonlinear' | 'linear' | 'linearized' | 'mixed';

function mapSpec(rows: Row[], side: 'before' | 'after', compare: boolean): { spec: TopLevelSpec; cells: number; binned: boolean; exact: boolean } {
  const values: Record<string, unknown>[] = [];
  const counts: Record<string, unknown>[] = [];
  let binned = false;
  let exact = true;
  const states = new Set<CellState>();
  for (const row of rows) {
    const l = side === 'before' ? row.before : row.after;
    if (!l || l.channels === 0) continue;
    const prev = side === 'after' ? row.before : undefined;
    const C0 = l.channels;
    const m = maskOf(l);
    if (!m && l.nonlinearChannels > 0 && l.linearChannels > 0) exact = false;
    // per channel: 0 nonlinear, 1 linear, 2 linearized (linear here, nonlinear in `before`)
    const st = new Uint8Array(C0);
    if (m) for (let c = 0; c < C0; c++) st[c] = m[c] ? 1 : 0;
    else for (let c = l.nonlinearChannels; c < C0; c++) st[c] = 1;
    if (prev && prev.channels === C0) {
      const pm = maskOf(prev);
      if (pm && m) for (let c = 0; c < C0; c++) { if (st[c] === 1 && !pm[c]) st[c] = 2; }
      else if (!m) {
        const k = Math.max(0, Math.min(C0 - l.nonlinearChannels, prev.nonlinearChannels - l.nonlinearChannels));
        for (let c = l.nonlinearChannels; c < l.nonlinearChannels + k; c++) st[c] = 2;
      }
    }
    const bins = C0 > MAP_MAX_CELLS ? MAP_MAX_CELLS : C0;
    if (bins < C0) binned = true;
    for (let b = 0; b < bins; b++) {
      const lo = Math.floor((b * C0) / bins), hi = Math.floor(((b + 1) * C0) / bins);
      let nl = 0, lz = 0;
      for (let c = lo; c < hi; c++) { if (st[c] === 0) nl++; else if (st[c] === 2) lz++; }
      const n = hi - lo;
      const state: CellState = nl === n ? 'nonlinear' : nl === 0 ? (lz === n ? 'linearized' : 'linear') : 'mixed';
      states.add(state);
      const where = n === 1 ? `channel ${lo}` : `channels ${lo}–${hi - 1}`;
      values.push({
        row: row.label, x0: lo / C0, x1: hi / C0, state,
        desc: `layer ${row.key} ${l.name} — ${where}: ${n === 1 ? state : `${nl} of ${n} nonlinear`}`,
      });
    }
    counts.push({ row: row.label, text: `${l.nonlinearChannels}/${C0}` });
  }
  const order: CellState[] = ['nonlinear', 'mixed', 'linearized', 'linear'];
  const colour: Record<CellState, string> = { nonlinear: C.mapNl, mixed: C.mapMixed, linearized: C.mapLinearized, linear: C.mapLin };
  const domain = order.filter((s) => states.has(s) || s === 'nonlinear' || s === 'linear');
  const y = { field: 'row', type: 'nominal', sort: null, title: null, axis: { labelFont: MONO, labelLimit: 340, ticks: false, domain: false } } as const;
  const spec = {
    width: CHART_W,
    autosize: FIT,
    height: { step: 16 },
    ...(compare ? { title: side === 'before' ? 'before' : 'after' } : {}),
    layer: [
      {
        name: MARKS.coreCells,
        data: { values },
        mark: { type: 'rect', stroke: '#ffffff', strokeWidth: values.length / Math.max(1, counts.length) > 96 ? 0 : 0.6 },
        encoding: {
          y,
          x: { field: 'x0', type: 'quantitative', scale: { domain: [0, 1], nice: false }, axis: { format: '.0%', title: 'channel position in the layer', grid: false, tickCount: 5 } },
          x2: { field: 'x1' },
          color: { field: 'state', type: 'nominal', scale: { domain, range: domain.map((d) => colour[d]) }, title: null, sort: domain },
          description: { field: 'desc', type: 'nominal' },
        },
      },
      {
        data: { values: counts },
        mark: { type: 'text', align: 'left', dx: 6, fontSize: 10, color: C.muted },
        encoding: { y, x: { datum: 1, type: 'quantitative' }, text: { field: 'text', type: 'nominal' } },
      },
    ],
  } as TopLevelSpec;
  return { spec, cells: values.length, binned, exact };
}

function sweepSpec(points: SweepPoint[], percent: boolean, current: { napl: number; label: string }[]): TopLevelSpec {
  const values = points.map((p) => {
    const series = p.fromScratch ? 'from scratch' : 'post-training';
    const acc = percent ? p.valAccuracy / 100 : p.valAccuracy;
    const tag = p.label ?? `λ=${fmtLambda(p.lambda)}`;
    return {
      napl: p.napl, acc, lambda: p.lambda, series, tag,
      desc: `${series}, ${tag}: accuracy ${pct(acc, 2)}, NAPL ${fmtNum(p.napl)}${num(p.apl) ? `, APL ${fmtNum(p.apl)}` : ''}${num(p.macs) ? `, MACs ${fmtCount(p.macs)}` : ''}${num(p.latencyMs) ? `, ${p.latencyMs.toFixed(2)} ms` : ''}`,
    };
  });
  const color = { field: 'series', type: 'nominal', scale: { domain: ['post-training', 'from scratch'], range: [C.post, C.scratch] }, title: null } as const;
  const x = { field: 'napl', type: 'quantitative', title: 'NAPL (effective depth)', scale: { domainMin: 0, nice: true }, axis: { grid: true } } as const;
  const y = { field: 'acc', type: 'quantitative', title: 'validation accuracy', scale: { zero: false, nice: true, padding: 12 }, axis: { format: '.1%', grid: true } } as const;
  return {
    width: CHART_W,
    autosize: FIT,
    height: 320,
    data: { values },
    layer: [
      ...(current.length ? [{
        data: { values: current },
        mark: { type: 'rule', strokeDash: [4, 4], color: '#94a3b8' },
        encoding: { x: { field: 'napl', type: 'quantitative' } },
      }, {
        data: { values: current },
        mark: { type: 'text', align: 'right', baseline: 'bottom', dx: -4, dy: -4, fontSize: 10, color: C.muted },
        encoding: { x: { field: 'napl', type: 'quantitative' }, y: { value: 320 }, text: { field: 'label', type: 'nominal' } },
      }] : []),
      { mark: { type: 'line', strokeWidth: 2, opacity: 0.7 }, encoding: { x, y, color, order: { field: 'napl', type: 'quantitative' } } },
      {
        name: MARKS.sweepPoints,
        mark: { type: 'point', filled: true, size: 90, opacity: 1, stroke: '#ffffff', strokeWidth: 1 },
        encoding: { x, y, color, shape: { field: 'series', type: 'nominal', scale: { domain: ['post-training', 'from scratch'], range: ['circle', 'diamond'] }, title: null }, description: { field: 'desc', type: 'nominal' } },
      },
      ...(points.length <= 40 ? [{
        mark: { type: 'text', align: 'left', dx: 7, dy: -7, fontSize: 9.5, color: C.muted },
        encoding: { x, y, text: { field: 'tag', type: 'nominal' } },
      }] : []),
    ],
  } as TopLevelSpec;
}
const fmtLambda = (l: number) => (l === 0 ? '0' : Math.abs(l) < 1e-3 || Math.abs(l) >= 1e4 ? l.toExponential(1) : String(+l.toPrecision(3)));

// ---------- fold report (read back from JSON: every field may be missing) ----------
type FoldLike = Partial<Omit<FoldReport, 'before' | 'after' | 'original'>> & {
  before: Partial<FoldMetrics>;
  after: Partial<FoldMetrics>;
  original?: Partial<FoldMetrics> & { file?: string };
};
function asFold(f: unknown): FoldLike | undefined {
  if (!isObj(f) || !isObj(f.before) || !isObj(f.after)) return undefined;
  return f as unknown as FoldLike;
}

// ---------- HTML pieces ----------
function kpi(label: string, before: number | null | undefined, after: number | null | undefined, fmt: (x: number) => string, hint = ''): string {
  if (!num(before) && !num(after)) return '';
  let value: string;
  let sub = '';
  if (num(before) && num(after) && after !== undefined) {
    const d = delta(before, after);
    value = `${escapeHtml(fmt(after))}`;
    sub = `<div class="kpi-sub"><span class="was">${escapeHtml(fmt(before))} →</span> <span class="delta ${d.cls}">${escapeHtml(d.text)}</span></div>`;
  } else value = escapeHtml(fmt((num(before) ? before : after) as number));
  return `<div class="kpi"><div class="kpi-label">${escapeHtml(label)}</div><div class="kpi-value">${value}</div>${sub}${hint ? `<div class="kpi-hint">${escapeHtml(hint)}</div>` : ''}</div>`;
}

function stat(label: string, before: number | null | undefined, after: number | null | undefined, fmt: (x: number) => string, suffix: string): string {
  if (!num(before) && !num(after)) return '';
  const both = num(before) && num(after);
  const v = both ? `${escapeHtml(fmt(before))} → <b>${escapeHtml(fmt(after as number))}</b>` : `<b>${escapeHtml(fmt((num(before) ? before : after) as number))}</b>`;
  return `<span class="stat"><span class="stat-label">${escapeHtml(label)}</span> ${v}${escapeHtml(suffix)}</span>`;
}

function table(headers: string[], rows: string[][], opts: { num?: boolean[]; cls?: string; foot?: string[] } = {}): string {
  const td = (c: string, i: number, tag: 'td' | 'th') => `<${tag}${opts.num?.[i] ? ' class="num"' : ''}>${c}</${tag}>`;
  return `<div class="table-wrap${opts.cls ? ` ${opts.cls}` : ''}"><table><thead><tr>${headers.map((h, i) => td(h, i, 'th')).join('')}</tr></thead><tbody>${
    rows.map((r) => `<tr>${r.map((c, i) => td(c, i, 'td')).join('')}</tr>`).join('')}</tbody>${
    opts.foot ? `<tfoot><tr>${opts.foot.map((c, i) => td(c, i, 'td')).join('')}</tr></tfoot>` : ''}</table></div>`;
}

const figure = (id: string, svg: string, caption: string) =>
  `<figure class="chart" id="chart-${id}" data-chart="${id}">${svg}${caption ? `<figcaption>${caption}</figcaption>` : ''}</figure>`;
const note = (html: string, kind: 'info' | 'warn' = 'info') => `<div class="note ${kind}">${html}</div>`;
const code = (s: string) => `<code>${escapeHtml(s)}</code>`;
const bar = (frac: number, colour = C.nl) => `<span class="inline-bar"><span style="width:${Math.max(0, Math.min(100, frac * 100)).toFixed(1)}%;background:${colour}"></span></span>`;

function modelLine(r: AuditReport): string {
  const m = r.model;
  const opset = m.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ');
  const shape = (s: (number | string)[] | null) => (s ? `[${s.join(', ')}]` : '[?]');
  const io = [...m.inputs.map((i) => `in ${code(i.name)} ${escapeHtml(i.dtype ?? '?')} ${escapeHtml(shape(i.shape))}`),
    ...m.outputs.map((o) => `out ${code(o.name)} ${escapeHtml(o.dtype ?? '?')} ${escapeHtml(shape(o.shape))}`)];
  return `<div class="meta">${escapeHtml(m.producer || 'unknown producer')} · opset ${escapeHtml(opset)} · ${m.nodeCount} nodes · ${io.join(' · ')}</div>`;
}

const CSS = `
:root{--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f6f7fb;--card:#fff;--accent:#4338ca}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 ${FONT};-webkit-font-smoothing:antialiased}
header.top{background:linear-gradient(135deg,#1e1b4b,#3730a3);color:#fff;padding:28px 0 84px}
.wrap{max-width:1040px;margin:0 auto;padding:0 24px}
.brand{font-size:12px;letter-spacing:.12em;text-transform:uppercase;opacity:.75}
h1{margin:6px 0 4px;font-size:26px;font-weight:650;overflow-wrap:anywhere}
header .meta{color:#c7d2fe;font-size:12.5px}
header .meta code{background:rgba(255,255,255,.12);color:#fff}
.cmp{margin-top:6px;font-size:12.5px;color:#e0e7ff}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:14px;margin-top:-64px}
.stats{display:flex;flex-wrap:wrap;gap:8px 22px;margin:16px 2px 0;font-size:13px;color:#334155;font-variant-numeric:tabular-nums}
.stat-label{color:var(--muted);margin-right:2px}
.kpi{background:var(--card);border-radius:12px;padding:14px 16px;box-shadow:0 1px 2px rgba(15,23,42,.06),0 8px 24px rgba(15,23,42,.06)}
.kpi-label{font-size:11.5px;color:var(--muted);text-transform:uppercase;letter-spacing:.06em;font-weight:600}
.kpi-value{font-size:30px;font-weight:700;margin-top:2px;font-variant-numeric:tabular-nums}
.kpi-sub{font-size:12px;color:var(--muted);font-variant-numeric:tabular-nums}
.kpi-hint{font-size:11.5px;color:var(--muted)}
.delta{font-weight:600}.delta.down{color:#047857}.delta.up{color:#b45309}.delta.same{color:var(--muted)}
nav.toc{display:flex;flex-wrap:wrap;gap:6px;margin:22px 0 6px}
nav.toc a{font-size:12.5px;color:#3730a3;text-decoration:none;background:#e0e7ff;padding:4px 10px;border-radius:999px}
section{background:var(--card);border-radius:12px;padding:20px 22px;margin:16px 0;box-shadow:0 1px 2px rgba(15,23,42,.05)}
h2{font-size:17px;margin:0 0 4px;font-weight:650}
h3{font-size:14px;margin:18px 0 6px;font-weight:650}
p.lead{margin:0 0 12px;color:var(--muted);font-size:13px}
figure.chart{margin:8px 0 4px;overflow-x:auto}
figure.chart svg{display:block;max-width:100%;height:auto}
figcaption{font-size:12px;color:var(--muted);margin-top:6px}
.table-wrap{overflow:auto;max-height:560px;border:1px solid var(--line);border-radius:8px;margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{padding:6px 10px;text-align:left;border-bottom:1px solid var(--line);white-space:nowrap}
thead th{position:sticky;top:0;background:#f8fafc;color:#334155;font-weight:600;z-index:1}
tfoot td{font-weight:650;background:#f8fafc;position:sticky;bottom:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:hover{background:#f8fafc}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f5f9;padding:1px 5px;border-radius:4px;overflow-wrap:anywhere}
td:first-child{white-space:normal;min-width:180px}
.share{display:inline-block;min-width:44px;text-align:right;font-variant-numeric:tabular-nums}
.inline-bar{display:inline-block;width:72px;height:6px;background:#eef2ff;border-radius:3px;vertical-align:middle;margin-left:8px;overflow:hidden}
.inline-bar span{display:block;height:100%;border-radius:3px}
.note{font-size:12.5px;border-radius:8px;padding:10px 12px;margin:10px 0;background:#f1f5f9;color:#334155}
.note.warn{background:#fff7ed;color:#9a3412}
.note ul{margin:4px 0 0;padding-left:18px}
.pill{display:inline-block;font-size:11px;padding:1px 8px;border-radius:999px;background:#dcfce7;color:#166534;font-weight:600}
.pill.bad{background:#fee2e2;color:#991b1b}
footer{color:var(--muted);font-size:12px;padding:8px 0 40px}
`;

interface Section { id: string; title: string; html: string }

/** What every section of the page reads. */
interface Page {
  r: AuditReport;
  cmp?: AuditReport;
  s: AuditReport['summary'];
  rows: Row[];
  /** Report fields a section had to do without (listed in the notes). */
  missing: string[];
  input: HtmlReportInput;
  fold?: FoldLike;
}

/** 1. Nonlinear channels per layer. */
async function channelsSection(page: Page): Promise<Section | undefined> {
  const { cmp, rows } = page;
  let html = `<p class="lead">Channels of every activation layer that are still nonlinear (dark) or linear — identity on the whole real line (light). Effective width = nonlinear channels.${cmp ? ' Upper bar: before, lower bar: after.' : ''}</p>`;
  if (rows.length) html += figure('layers', await toSvg(layerChartSpec(rows, !!cmp)), `${rows.length} activation layer${rows.length === 1 ? '' : 's'}; hover a bar for the full layer name.`);
  else html += note('This model has no activation layers.');
  return { id: 'layers', title: 'Nonlinear channels per layer', html };
}

/** 2. Path-length distributions, per-layer contributions and per-output numbers. */
async function pathLengthSection(page: Page): Promise<Section | undefined> {
  const { r, cmp, s, rows, missing } = page;
  let html = `<p class="lead">How many still-nonlinear units a path from input to output meets. <b>Normalized</b> (NAPL): 1/k per branch at a k-way merge, units drawn uniformly inside a layer. <b>Unnormalized</b> (APL): uniform over all input→output paths.</p>`;
  const outs = r.pathLengths as OutputExt[];
  const cOuts = (cmp?.pathLengths ?? []) as OutputExt[];
  const d0 = outs[0]?.distribution;
  const c0 = cmp ? cOuts.find((o) => o.output === outs[0]?.output)?.distribution ?? cOuts[0]?.distribution : undefined;
  const ok = (d: OutputExt['distribution']) => !!d && Array.isArray(d.apl) && Array.isArray(d.napl);
  if (ok(d0)) {
    const dists: { model: string; kind: 'napl' | 'apl'; p: number[] }[] = [];
    dists.push({ model: 'before', kind: 'napl', p: d0!.napl }, { model: 'before', kind: 'apl', p: d0!.apl });
    if (cmp && ok(c0)) dists.push({ model: 'after', kind: 'napl', p: c0!.napl }, { model: 'after', kind: 'apl', p: c0!.apl });
    html += `<h3>Distribution of path lengths${outs.length > 1 ? ` (output ${code(outs[0].output)})` : ''}</h3>`;
    html += figure('distribution', await toSvg(distributionSpec(dists, !!cmp && ok(c0))), `Mean of the normalized distribution = NAPL ${fmtNum(s.napl)}; of the unnormalized one = APL ${fmtNum(s.apl)}.`);
  } else {
    missing.push('pathLengths[].distribution');
  }
  const exact = (r.layers as LayerRowExt[]).every((l) => isObj(l.contribution) && num(l.contribution.napl))
    && (!cmp || (cmp.layers as LayerRowExt[]).every((l) => isObj(l.contribution) && num(l.contribution.napl)));
  if (!exact) missing.push('layers[].contribution');
  if (rows.length) {
    const sum = r.layers.reduce((t, l) => t + (exact ? (l as LayerRowExt).contribution!.napl : l.channels ? l.nonlinearChannels / l.channels : 0), 0);
    html += `<h3>Per-layer contribution to NAPL</h3>`;
    const cap = exact
      ? `Expected number of the layer's nonlinear units on a normalized path; the bars sum to NAPL (${fmtNum(sum)}).`
      : r.merges.length
        ? `Nonlinear fraction n/C of each layer: its contribution to NAPL if every path crossed it. This model has ${r.merges.length} residual merge${r.merges.length === 1 ? '' : 's'}, so a path crosses some layers with probability < 1: the bars sum to ${fmtNum(sum)}, NAPL is ${fmtNum(s.napl)}.`
        : `Nonlinear fraction n/C of each layer — its exact contribution to NAPL in a network without merges like this one (Σ = ${fmtNum(sum)}, NAPL ${fmtNum(s.napl)}).`;
    html += figure('contribution', await toSvg(contributionSpec(rows, !!cmp, exact)), cap);
  }
  html += `<h3>Per output</h3>`;
  const outRows = outs.map((o) => {
    const c = cOuts.find((x) => x.output === o.output);
    const pair = (a: number, b?: number) => (b === undefined ? fmtNum(a) : `${fmtNum(a)} → ${fmtNum(b)}`);
    return [code(o.output), String(o.units), pair(o.napl, c?.napl), pair(o.apl, c?.apl), fmtPaths(o.log10Paths),
      `${fmtNum(o.otherNonlinear.napl, 2)} / ${fmtNum(o.otherNonlinear.apl, 2)}`];
  });
  html += table(['output', 'units', cmp ? 'NAPL before → after' : 'NAPL', cmp ? 'APL before → after' : 'APL', 'paths', 'other nonlinear ops per path (NAPL / APL)'], outRows,
    { num: [false, true, true, true, true, true] });
  if (!r.options.countOtherNonlinear && (s.otherNonlinearPerPath.napl > 0 || s.otherNonlinearPerPath.apl > 0))
    html += `<p class="lead">Other nonlinear ops (${escapeHtml(Object.entries(r.otherNonlinear.counts).map(([k, v]) => `${k} ×${v}`).join(', '))}) are reported apart and not counted in APL/NAPL.</p>`;
  return { id: 'paths', title: 'Path length', html };
}

/** 3. The core-network map. */
async function coreSection(page: Page): Promise<Section | undefined> {
  const { r, cmp, rows, missing } = page;
  let html = `<p class="lead">The core network: one row per activation layer, one cell per channel; dark cells stay nonlinear, light cells are linear and fold away.${cmp ? ' Amber: linear after, nonlinear before.' : ''}</p>`;
  if (rows.length) {
    const sides: ('before' | 'after')[] = cmp ? ['before', 'after'] : ['before'];
    let positions = true;
    for (const side of sides) {
      const m = mapSpec(rows, side, !!cmp);
      if (!m.cells) continue;
      positions &&= m.exact;
      const cap = m.binned ? `Layers wider than ${MAP_MAX_CELLS} channels are drawn as ${MAP_MAX_CELLS} bins (mixed = some channels of the bin nonlinear).` : '';
      html += figure(cmp ? `core-${side}` : 'core', await toSvg(m.spec), cap);
    }
    if (!positions) {
      missing.push('layers[].linearMask');
      html += note(`Channel positions are not in this report (no ${code('layers[].linearMask')}): each row shows the right number of nonlinear channels, drawn first.`);
    }
    const preds = new Map<string, string[]>();
    for (const e of r.core.edges) preds.set(e.to, [...(preds.get(e.to) ?? []), e.from]);
    const coreRows = r.core.nodes.filter((n) => n.type !== 'input').map((n) => [
      n.type === 'output' ? `<b>${code(n.id)}</b>` : code(n.id),
      n.type === 'layer' ? `${escapeHtml(n.kind ?? '')} ${n.nonlinearChannels}/${n.channels}` : '',
      (preds.get(n.id) ?? []).map(code).join(' ') || '—',
    ]);
    html += `<details><summary>Connections of the core network (${r.core.nodes.filter((n) => n.type === 'layer').length} nonlinear layers)</summary>${table(['layer', 'width', 'fed through linear ops by'], coreRows)}</details>`;
  } else html += note('No activation layers: the whole network is linear.');
  return { id: 'core', title: 'Core network map', html };
}

/** Transformers: the FFNs and what folding makes of them (after: the compared report's FFNs, matched by activation). */
function ffnSection(page: Page): Section | undefined {
  const { r, cmp } = page;
  if (!(r.transformer)) return undefined;
  const t = r.transformer;
  const after = new Map((cmp?.transformer?.ffn ?? []).map((f) => [f.activation, f]));
  let html = `<p class="lead">Per-token path length: units are the features of one token (the last axis); attention mixes tokens without adding units, its Softmax and the LayerNorms are counted apart. NAPL ${fmtNum(t.perToken.napl, 2)}, APL ${fmtNum(t.perToken.apl, 2)}; ${t.softmax} Softmax, ${t.layerNorm} LayerNorm. Activations: ${escapeHtml(Object.entries(t.spellings).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none')}.</p>`;
  const foldText = (f: (typeof t.ffn)[number]) => (f.fold === 'merge' ? `one ${f.dIn}×${f.dOut} MatMul` : f.fold === 'split' ? `split: ${f.nonlinearChannels}-wide core + ${f.dIn}×${f.dOut} bypass` : '—');
  if (t.ffn.length)
    html += table(['FFN activation', 'spelling', 'fc1 → fc2', 'd → hidden → d', 'linear channels', 'fold', 'MACs / token', ...(cmp ? ['linear after'] : [])], t.ffn.map((f) => [
      code(f.activation), escapeHtml(f.spelling), `${code(f.fc1)} → ${code(f.fc2)}`, `${f.dIn} → ${f.hidden} → ${f.dOut}`,
      `${f.linearChannels} / ${f.hidden}${bar(f.linearChannels / f.hidden, C.lin)}`, escapeHtml(foldText(f)),
      f.fold === 'none' ? fmtCount(f.macsPerToken) : `${fmtCount(f.macsPerToken)} → ${fmtCount(f.foldedMacsPerToken)}`,
      ...(cmp ? [after.get(f.activation) ? `${after.get(f.activation)!.linearChannels} / ${f.hidden}` : 'folded away'] : []),
    ]), { num: [false, false, false, true, true, false, true, ...(cmp ? [true] : [])] });
  else html += note('No FFN (an activation between two dense layers) found.');
  return { id: 'ffn', title: 'Transformer FFN layers', html };
}

/** 4. Parameters and MACs per node. */
function costSection(page: Page): Section | undefined {
  const { r, cmp } = page;
  let html = `<p class="lead">Parameters and multiply-accumulates (batch 1) of every node that has either; MACs count contractions only (Conv, Gemm, MatMul, …).</p>`;
  const nodes = r.cost.nodes;
  const maxMacs = Math.max(1, ...nodes.map((n) => n.macs), ...(cmp?.cost.nodes ?? []).map((n) => n.macs));
  if (!cmp) {
    html += table(['node', 'op', 'params', 'MACs', 'share of MACs'], nodes.map((n) => [
      code(n.node), escapeHtml(n.opType), fmtCount(n.params), fmtCount(n.macs), `<span class="share">${pct(n.macs / Math.max(1, r.cost.macs))}</span>${bar(n.macs / maxMacs)}`,
    ]), { num: [false, false, true, true, false], foot: ['total', '', fmtCount(r.cost.params), fmtCount(r.cost.macs), ''] });
  } else {
    const after = new Map(cmp.cost.nodes.map((n) => [n.node, n]));
    const seen = new Set<string>();
    const list: string[][] = [];
    const dash = '—';
    for (const n of nodes) {
      const a = after.get(n.node);
      if (a) seen.add(n.node);
      const d = a ? delta(n.macs, a.macs) : { text: 'removed', cls: 'down' };
      list.push([code(n.node), escapeHtml(n.opType), fmtCount(n.params), a ? fmtCount(a.params) : dash, fmtCount(n.macs), a ? fmtCount(a.macs) : dash,
        `<span class="delta ${d.cls}">${escapeHtml(d.text)}</span>`]);
    }
    for (const a of cmp.cost.nodes) if (!seen.has(a.node))
      list.push([code(a.node), escapeHtml(a.opType), dash, fmtCount(a.params), dash, fmtCount(a.macs), `<span class="delta up">new</span>`]);
    const d = delta(r.cost.macs, cmp.cost.macs);
    html += table(['node', 'op', 'params before', 'params after', 'MACs before', 'MACs after', 'Δ MACs'], list,
      { num: [false, false, true, true, true, true, true], foot: ['total', '', fmtCount(r.cost.params), fmtCount(cmp.cost.params), fmtCount(r.cost.macs), fmtCount(cmp.cost.macs), `<span class="delta ${d.cls}">${escapeHtml(d.text)}</span>`] });
  }
  const assumptions = [...r.cost.assumptions, ...(cmp?.cost.assumptions ?? []).map((a) => `after: ${a}`)];
  if (assumptions.length) html += note(`<ul>${assumptions.map((a) => `<li>${escapeHtml(a)}</li>`).join('')}</ul>`);
  return { id: 'cost', title: 'Parameters and MACs', html };
}

/** 5. The fold report: metrics against the input (and the original), verification, folds taken. */
function foldSection(page: Page): Section | undefined {
  const { input, fold } = page;
  if (!(input.fold !== undefined)) return undefined;
  let html = '';
  if (!fold) html = note('The fold report given is not recognised (expected an object with <code>before</code> and <code>after</code> metrics).', 'warn');
  else {
    const b = fold.before, a = fold.after;
    const metric = (label: string, k: Exclude<keyof FoldMetrics, 'opCounts'>, f: (x: number) => string) => {
      const x = b[k], y = a[k];
      if (!num(x) && !num(y)) return undefined;
      const d = num(x) && num(y) ? delta(x, y) : { text: '', cls: '' };
      const ratio = num(x) && num(y) && x > 0 ? `${(y / x).toFixed(2)}×` : '';
      return [escapeHtml(label), num(x) ? escapeHtml(f(x)) : 'n/a', num(y) ? escapeHtml(f(y)) : 'n/a', escapeHtml(ratio), `<span class="delta ${d.cls}">${escapeHtml(d.text)}</span>`];
    };
    const int = (x: number) => Math.round(x).toLocaleString('en-US');
    const lines = [
      metric('nodes', 'nodes', int), metric('conv/matmul layers', 'layers', int), metric('depth (longest conv/matmul path)', 'depth', int),
      metric('NAPL', 'napl', (x) => fmtNum(x)), metric('APL', 'apl', (x) => fmtNum(x)), metric('parameters', 'params', fmtCount),
      metric('MACs', 'macs', fmtCount), metric('latency, onnxruntime-node, batch 1', 'latencyMs', (x) => `${x.toFixed(3)} ms`),
    ].filter((x): x is string[] => !!x);
    const v = fold.verification;
    html += `<p class="lead">${fold.objective ? `Objective <b>${escapeHtml(fold.objective)}</b>. ` : ''}${v ? `Verification <span class="pill${v.passed ? '' : ' bad'}">${v.passed ? 'passed' : 'FAILED'}</span>${num(v.maxRelError) ? ` max relative error ${escapeHtml(v.maxRelError.toExponential(2))}` : ''}${v.inputs ? ` on ${escapeHtml(v.inputs)}` : ''}.` : ''}</p>`;
    if (Array.isArray(fold.verdict)) for (const v of fold.verdict) html += note(escapeHtml(String(v)), /SLOWER|DEEPER/.test(String(v)) ? 'warn' : 'info');
    const acc = fold.accuracy;
    if (acc && num(acc.folded)) html += `<p class="lead">Validation accuracy (onnxruntime${acc.data ? `, ${escapeHtml(acc.data)}` : ''}): ${([['original', acc.original], ['input', acc.input], ['folded', acc.folded]] as [string, number | undefined][]).filter(([, v]) => num(v)).map(([k, v]) => `${k} <b>${((v as number) * 100).toFixed(2)} %</b>`).join(', ')}.</p>`;
    const o = fold.original;
    if (o && isObj(o)) {
      const withOriginal = (label: string, k: Exclude<keyof FoldMetrics, 'opCounts'>, f: (x: number) => string) => {
        const row = metric(label, k, f);
        const x = o[k];
        return row && [row[0], num(x) ? escapeHtml(f(x)) : 'n/a', ...row.slice(1, 3), num(x) && num(a[k]) && x > 0 ? escapeHtml(`${((a[k] as number) / x).toFixed(2)}×`) : ''];
      };
      const rowsO = [
        withOriginal('nodes', 'nodes', int), withOriginal('conv/matmul layers', 'layers', int), withOriginal('depth (longest conv/matmul path)', 'depth', int),
        withOriginal('NAPL', 'napl', (x) => fmtNum(x)), withOriginal('parameters', 'params', fmtCount), withOriginal('MACs', 'macs', fmtCount),
        withOriginal('latency, onnxruntime-node, batch 1', 'latencyMs', (x) => `${x.toFixed(3)} ms`),
      ].filter((x): x is string[] => !!x);
      html += table(['', 'original', 'input', 'folded', 'folded/original'], rowsO, { num: [false, true, true, true, true] });
    } else html += table(['', 'before', 'after', 'after/before', 'change'], lines, { num: [false, true, true, true, true] });
    const taken = Array.isArray(fold.taken) ? fold.taken : [];
    const rejected = Array.isArray(fold.rejected) ? fold.rejected : [];
    if (taken.length) html += `<details><summary>Folds taken (${taken.length})</summary><ul>${taken.map((e) => `<li>${code(String(e.pass ?? ''))} ${escapeHtml(e.what ?? '')}</li>`).join('')}</ul></details>`;
    if (rejected.length) html += `<details><summary>Folds rejected (${rejected.length})</summary><ul>${rejected.map((e) => `<li>${code(String(e.pass ?? ''))} ${escapeHtml(e.what ?? '')}: ${escapeHtml(e.reason ?? '')}</li>`).join('')}</ul></details>`;
    if (Array.isArray(fold.notes) && fold.notes.length) html += note(`<ul>${fold.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`);
  }
  return { id: 'fold', title: 'Folding', html };
}

/** 6. Accuracy against effective depth over a λ sweep. */
async function sweepSection(page: Page): Promise<Section | undefined> {
  const { cmp, s, input } = page;
  if (!(input.sweep)) return undefined;
  const valid = input.sweep.filter((p) => isObj(p) && num(p.lambda) && num(p.valAccuracy) && num(p.napl));
  const dropped = input.sweep.length - valid.length;
  let html = `<p class="lead">Validation accuracy against effective depth, one point per prior strength λ: the prior applied after training (the default) and from scratch.</p>`;
  if (valid.length) {
    const percent = valid.some((p) => p.valAccuracy > 1);
    const current = [{ napl: s.napl, label: cmp ? 'before' : 'this model' }, ...(cmp ? [{ napl: cmp.summary.napl, label: 'after' }] : [])];
    html += figure('sweep', await toSvg(sweepSpec(valid, percent, current)), `${valid.length} model${valid.length === 1 ? '' : 's'}; dashed: NAPL of the audited model${cmp ? 's' : ''}.`);
    const sorted = [...valid].sort((p, q) => Number(!!p.fromScratch) - Number(!!q.fromScratch) || p.lambda - q.lambda);
    html += table(['series', 'λ', 'label', 'val. accuracy', 'NAPL', 'APL', 'MACs', 'latency'], sorted.map((p) => [
      p.fromScratch ? 'from scratch' : 'post-training', escapeHtml(fmtLambda(p.lambda)), escapeHtml(p.label ?? ''),
      pct(percent ? p.valAccuracy / 100 : p.valAccuracy, 2), fmtNum(p.napl), num(p.apl) ? fmtNum(p.apl) : '', num(p.macs) ? fmtCount(p.macs) : '',
      num(p.latencyMs) ? `${p.latencyMs.toFixed(2)} ms` : '',
    ]), { num: [false, true, false, true, true, true, true, true] });
  } else html += note('The sweep has no usable point.');
  if (dropped) html += note(`${dropped} sweep point${dropped === 1 ? '' : 's'} without a finite lambda, valAccuracy and napl ${dropped === 1 ? 'was' : 'were'} left out.`, 'warn');
  return { id: 'sweep', title: 'Accuracy vs. effective depth', html };
}

/** 7. Warnings, opaque ops, options. */
function notesSection(page: Page): Section | undefined {
  const { r, cmp, missing } = page;
  const items: string[] = [];
  for (const w of r.warnings) items.push(`<li>${escapeHtml(w)}</li>`);
  for (const w of cmp?.warnings ?? []) items.push(`<li>after: ${escapeHtml(w)}</li>`);
  for (const o of r.opaque) items.push(`<li>opaque op ${code(o.node)} (${escapeHtml(`${o.domain ? `${o.domain}.` : ''}${o.opType}`)}) treated as elementwise pass-through</li>`);
  let html = items.length ? `<ul>${items.join('')}</ul>` : '<p class="lead">No warnings.</p>';
  const uniq = [...new Set(missing)];
  if (uniq.length)
    html += `<p class="lead">Not in this audit report (schema ${r.schemaVersion}), drawn from what is there instead: ${uniq.map(code).join(', ')}.</p>`;
  html += `<p class="lead">Options: eps ${escapeHtml(r.options.eps)}, other nonlinear ops ${r.options.countOtherNonlinear ? 'counted' : 'not counted'} in APL/NAPL${r.options.inputShapes ? `, input shapes ${escapeHtml(JSON.stringify(r.options.inputShapes))}` : ''}.</p>`;
  return { id: 'notes', title: 'Notes', html };
}

// ---------- the page ----------
export async function renderHtmlReport(input: HtmlReportInput): Promise<string> {
  const r = input.report;
  const cmp = input.compare;
  const fold = input.fold === undefined ? undefined : asFold(input.fold);
  const s = r.summary;
  const cs = cmp?.summary;
  const name = r.model.file ?? (r.model.graphName || 'model');
  const title = input.title ?? `linfold report — ${name}`;
  const rows = layerRows(r, cmp);
  const missing: string[] = [];

  // headline numbers
  const latB = fold?.before.latencyMs, latA = fold?.after.latencyMs;
  const kpis = [
    kpi('APL', s.apl, cs?.apl, (x) => fmtNum(x, 2), 'uniform over all paths'),
    kpi('NAPL', s.napl, cs?.napl, (x) => fmtNum(x, 2), 'normalized path length'),
    kpi('Effective depth', s.effectiveDepth, cs?.effectiveDepth, (x) => fmtNum(x, 2), `${(cs ?? s).nonlinearLayers} of ${(cs ?? s).activationLayers} layers nonlinear`),
    kpi('Params', s.params, cs?.params, fmtCount),
    kpi('MACs', s.macs, cs?.macs, fmtCount, 'batch 1'),
  ].join('');
  const p0 = r.pathLengths[0];
  const stats = [
    stat('nonlinear channels', s.nonlinearChannels, cs?.nonlinearChannels, (x) => `${x.toLocaleString('en-US')}`, ` of ${(cs ?? s).channels.toLocaleString('en-US')}`),
    stat('nonlinear layers', s.nonlinearLayers, cs?.nonlinearLayers, String, ` of ${(cs ?? s).activationLayers}`),
    num(latB) || num(latA) ? stat('latency', latB, latA, (x) => `${x.toFixed(2)} ms`, '') : '',
    p0 ? `<span class="stat"><span class="stat-label">paths</span> ${fmtPaths(p0.log10Paths)}</span>` : '',
    `<span class="stat"><span class="stat-label">residual merges</span> ${r.merges.length}</span>`,
    s.otherNonlinearPerPath.napl > 0 ? `<span class="stat"><span class="stat-label">other nonlinear ops / path</span> ${fmtNum(s.otherNonlinearPerPath.napl, 2)}${r.options.countOtherNonlinear ? ' (counted)' : ' (not counted)'}</span>` : '',
  ].join('');

  const page: Page = { r, cmp, s, rows, missing, input, fold };
  // in order: the notes list what the earlier sections found missing
  const sections: Section[] = [];
  for (const make of [channelsSection, pathLengthSection, coreSection, ffnSection, costSection, foldSection, sweepSection, notesSection]) {
    const section = await make(page);
    if (section) sections.push(section);
  }

  const cmpLine = cmp ? `<div class="cmp">before: ${escapeHtml(name)} → after: ${escapeHtml(cmp.model.file ?? (cmp.model.graphName || 'model'))}</div>` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="linfold">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header class="top"><div class="wrap">
<div class="brand">linfold report</div>
<h1>${escapeHtml(name)}</h1>
${modelLine(r)}
${cmpLine}
</div></header>
<main class="wrap">
<div class="kpis">${kpis}</div>
<div class="stats">${stats}</div>
<nav class="toc">${sections.map((x) => `<a href="#${x.id}">${escapeHtml(x.title)}</a>`).join('')}</nav>
${sections.map((x) => `<section id="${x.id}"><h2>${escapeHtml(x.title)}</h2>${x.html}</section>`).join('\n')}
<footer>Generated by linfold from an audit report (schema ${r.schemaVersion}). Static page: no scripts, no network.</footer>
</main>
</body>
</html>
`;
}
