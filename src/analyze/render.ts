// Human renderings of an AuditReport: aligned text for a terminal, and Markdown (with the core network as a
// Mermaid flowchart). JSON is JSON.stringify(report, null, 2).
import type { AuditReport } from './audit.js';

type Align = 'l' | 'r';

/** Aligned text table; `align` per column (default: left). */
export function textTable(headers: string[], rows: string[][], align: Align[] = []): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (align[i] === 'r' ? c.padStart(w[i]) : i === cells.length - 1 ? c : c.padEnd(w[i]))).join('  ').trimEnd();
  return [line(headers), line(w.map((n) => '─'.repeat(n))), ...rows.map(line)].join('\n');
}

export function fmtNum(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  return x.toFixed(digits);
}

/** 1234567 → "1.23 M"; small numbers with thousands separators. */
export function fmtCount(x: number): string {
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)} G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  return x.toLocaleString('en-US');
}

function fmtPaths(log10: number | null): string {
  if (log10 === null) return 'none';
  if (log10 < 6) return Math.round(10 ** log10).toLocaleString('en-US');
  const e = Math.floor(log10);
  return `${(10 ** (log10 - e)).toFixed(2)}e${e}`;
}

const shapeStr = (s: (number | string)[] | null) => (s ? `[${s.join(',')}]` : '[?]');

function otherCounts(r: AuditReport): string {
  const e = Object.entries(r.otherNonlinear.counts);
  return e.length ? e.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

/** Predecessors of each core layer/output, from the edge list. */
function corePreds(r: AuditReport): Map<string, string[]> {
  const preds = new Map<string, string[]>();
  for (const e of r.core.edges) {
    const l = preds.get(e.to) ?? [];
    l.push(e.from);
    preds.set(e.to, l);
  }
  return preds;
}

export function renderTable(r: AuditReport): string {
  const out: string[] = [];
  const m = r.model;
  const opset = m.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version;
  out.push(`linfold audit — ${m.file ?? (m.graphName || 'model')}${m.producer ? ` (${m.producer}` : ' ('}${opset !== undefined ? `, opset ${opset}` : ''}, ${m.nodeCount} nodes)`);
  for (const i of m.inputs) out.push(`  input   ${i.name}  ${i.dtype ?? '?'} ${shapeStr(i.shape)}`);
  for (const o of m.outputs) out.push(`  output  ${o.name}  ${o.dtype ?? '?'} ${shapeStr(o.shape)}`);
  out.push('');
  const s = r.summary;
  const p0 = r.pathLengths[0];
  const withOther = r.options.countOtherNonlinear ? ' (incl. other nonlinear ops)' : '';
  out.push(textTable(['', ''], [
    ['effective depth (NAPL)', `${fmtNum(s.napl)}${withOther}`],
    ['APL', `${fmtNum(s.apl)}${withOther}`],
    ['paths input → output', p0 ? fmtPaths(p0.log10Paths) : 'none'],
    ['other nonlinear ops / path', `NAPL ${fmtNum(s.otherNonlinearPerPath.napl)}, APL ${fmtNum(s.otherNonlinearPerPath.apl)}${r.options.countOtherNonlinear ? '' : ' (not counted above)'}`],
    ['activation layers', `${s.activationLayers} (${s.nonlinearLayers} nonlinear, ${s.linearLayers} fully linear)`],
    ['channels', `${s.nonlinearChannels} nonlinear of ${s.channels}`],
    ['params', fmtCount(s.params)],
    ['MACs', fmtCount(s.macs)],
  ]).split('\n').filter((_, i) => i > 1).join('\n'));
  if (r.pathLengths.length > 1) {
    out.push('', 'Per output');
    out.push(textTable(['output', 'units', 'NAPL', 'APL', 'other NAPL', 'other APL', 'paths'], r.pathLengths.map((o) => [
      o.output, String(o.units), fmtNum(o.napl), fmtNum(o.apl), fmtNum(o.otherNonlinear.napl), fmtNum(o.otherNonlinear.apl), fmtPaths(o.log10Paths),
    ]), ['l', 'r', 'r', 'r', 'r', 'r', 'r']));
  }
  out.push('', 'Activation layers');
  if (r.layers.length)
    out.push(textTable(['#', 'layer', 'kind', 'form', 'axis', 'channels', 'linear', 'nonlinear'], r.layers.map((l, i) => [
      String(i + 1), l.name, l.kind + (l.isGate ? ' (gate)' : ''), l.spelling ?? l.form, l.channelAxis === null ? '?' : String(l.channelAxis),
      String(l.channels), String(l.linearChannels), String(l.nonlinearChannels),
    ]), ['r', 'l', 'l', 'l', 'r', 'r', 'r', 'r']));
  else out.push('  none');
  out.push('', `Other nonlinear ops: ${otherCounts(r)}`);
  out.push(`Residual merges: ${r.merges.length}`);
  if (r.transformer) out.push('', ...transformerText(r.transformer));
  out.push('', 'Core network (layers with a nonlinear channel; ← what feeds them through linear ops)');
  const preds = corePreds(r);
  for (const n of r.core.nodes) {
    if (n.type === 'input') continue;
    const from = (preds.get(n.id) ?? []).join(', ') || '—';
    const width = n.type === 'layer' ? ` [${n.nonlinearChannels}/${n.channels}]` : '';
    out.push(`  ${n.id}${width}  ← ${from}`);
  }
  const top = [...r.cost.nodes].sort((a, b) => b.macs - a.macs).slice(0, 10).filter((n) => n.macs > 0);
  if (top.length) {
    out.push('', `Cost (top ${top.length} nodes by MACs; total params ${fmtCount(r.cost.params)}, MACs ${fmtCount(r.cost.macs)})`);
    out.push(textTable(['node', 'op', 'params', 'MACs'], top.map((n) => [n.node, n.opType, fmtCount(n.params), fmtCount(n.macs)]), ['l', 'l', 'r', 'r']));
  }
  for (const a of r.cost.assumptions) out.push(`  note: ${a}`);
  if (r.opaque.length) {
    out.push('', 'Opaque ops (treated as elementwise pass-through):');
    for (const o of r.opaque) out.push(`  ${o.node} (${o.domain ? `${o.domain}.` : ''}${o.opType})`);
  }
  if (r.warnings.length) {
    out.push('', 'Warnings:');
    for (const w of r.warnings) out.push(`  ${w}`);
  }
  return out.join('\n') + '\n';
}

/** The transformer section: per-token path length, Softmax/LayerNorm, the FFNs and what folds them. */
export function transformerText(t: NonNullable<AuditReport['transformer']>): string[] {
  const out = [
    `Transformer: per-token path length NAPL ${fmtNum(t.perToken.napl)}, APL ${fmtNum(t.perToken.apl)} (units = features of a token; attention mixes tokens, adds no units); Softmax ${t.softmax}, LayerNorm ${t.layerNorm} (counted apart)`,
    `  activations: ${Object.entries(t.spellings).map(([k, v]) => `${k} ×${v}`).join(', ') || 'none'}`,
  ];
  if (t.ffn.length) {
    out.push(textTable(['FFN activation', 'spelling', 'd→hidden→d', 'linear', 'fold', 'MACs/token'], t.ffn.map((f) => [
      f.activation, f.spelling, `${f.dIn}→${f.hidden}→${f.dOut}`, `${f.linearChannels}/${f.hidden}`,
      f.fold === 'merge' ? `one ${f.dIn}×${f.dOut} MatMul` : f.fold === 'split' ? `split: ${f.nonlinearChannels}-wide core + bypass` : '—',
      f.fold === 'none' ? fmtCount(f.macsPerToken) : `${fmtCount(f.macsPerToken)} → ${fmtCount(f.foldedMacsPerToken)}`,
    ]), ['l', 'l', 'r', 'r', 'l', 'r']).split('\n').map((x) => `  ${x}`).join('\n'));
  }
  return out;
}

const mdEscape = (s: string) => s.replace(/\|/g, '\\|');

function mdTable(headers: string[], rows: string[][], align: Align[] = []): string {
  const sep = headers.map((_, i) => (align[i] === 'r' ? '---:' : '---'));
  return [headers, sep, ...rows].map((r, k) => `| ${(k === 1 ? r : r.map(mdEscape)).join(' | ')} |`).join('\n');
}

export function renderMarkdown(r: AuditReport): string {
  const m = r.model;
  const s = r.summary;
  const out: string[] = [];
  out.push(`# linfold audit: ${m.file ?? (m.graphName || 'model')}`, '');
  const opset = m.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ');
  out.push(`Producer: ${m.producer || 'unknown'} · opsets: ${opset} · ${m.nodeCount} nodes`, '');
  out.push(mdTable(['', 'name', 'dtype', 'shape'], [
    ...m.inputs.map((i) => ['input', i.name, i.dtype ?? '?', shapeStr(i.shape)]),
    ...m.outputs.map((o) => ['output', o.name, o.dtype ?? '?', shapeStr(o.shape)]),
  ]), '');
  out.push('## Summary', '');
  const p0 = r.pathLengths[0];
  out.push(mdTable(['measure', 'value'], [
    ['effective depth (NAPL)', fmtNum(s.napl)],
    ['APL', fmtNum(s.apl)],
    ['paths input → output', p0 ? fmtPaths(p0.log10Paths) : 'none'],
    [`other nonlinear ops per path${r.options.countOtherNonlinear ? ' (included above)' : ' (not included above)'}`, `NAPL ${fmtNum(s.otherNonlinearPerPath.napl)}, APL ${fmtNum(s.otherNonlinearPerPath.apl)}`],
    ['activation layers', `${s.activationLayers} (${s.nonlinearLayers} nonlinear, ${s.linearLayers} fully linear)`],
    ['nonlinear channels', `${s.nonlinearChannels} of ${s.channels}`],
    ['params', fmtCount(s.params)],
    ['MACs (batch 1)', fmtCount(s.macs)],
  ], ['l', 'r']), '');
  if (r.pathLengths.length > 1) {
    out.push('### Per output', '');
    out.push(mdTable(['output', 'units', 'NAPL', 'APL', 'other NAPL', 'other APL', 'paths'], r.pathLengths.map((o) => [
      o.output, String(o.units), fmtNum(o.napl), fmtNum(o.apl), fmtNum(o.otherNonlinear.napl), fmtNum(o.otherNonlinear.apl), fmtPaths(o.log10Paths),
    ]), ['l', 'r', 'r', 'r', 'r', 'r', 'r']), '');
  }
  out.push('## Activation layers', '');
  if (r.layers.length)
    out.push(mdTable(['#', 'layer', 'kind', 'form', 'axis', 'channels', 'linear', 'nonlinear (width)'], r.layers.map((l, i) => [
      String(i + 1), `\`${l.name}\``, l.kind + (l.isGate ? ' (gate)' : ''), l.spelling ?? l.form, l.channelAxis === null ? '?' : String(l.channelAxis),
      String(l.channels), String(l.linearChannels), String(l.nonlinearChannels),
    ]), ['r', 'l', 'l', 'l', 'r', 'r', 'r', 'r']), '');
  else out.push('None.', '');
  out.push(`Other nonlinear ops: ${otherCounts(r)}. Residual merges: ${r.merges.length}.`, '');
  if (r.transformer) out.push('## Transformer', '', '```text', ...transformerText(r.transformer), '```', '');
  out.push('## Core network', '');
  out.push('Layers with at least one nonlinear channel and how they connect through linear ops (width = nonlinear channels).', '');
  const ids = new Map(r.core.nodes.map((n, i) => [n.id, `n${i}`]));
  const q = (t: string) => t.replace(/"/g, '#quot;');
  out.push('```mermaid', 'flowchart TD');
  for (const n of r.core.nodes) {
    const label = n.type === 'layer' ? `${n.id}<br/>${n.kind} ${n.nonlinearChannels}/${n.channels}` : n.id;
    out.push(n.type === 'layer' ? `  ${ids.get(n.id)}["${q(label)}"]` : `  ${ids.get(n.id)}(["${q(label)}"])`);
  }
  for (const e of r.core.edges) out.push(`  ${ids.get(e.from)} --> ${ids.get(e.to)}`);
  out.push('```', '');
  out.push('## Cost', '');
  out.push(`Params ${fmtCount(r.cost.params)}, MACs ${fmtCount(r.cost.macs)} (batch 1).`, '');
  if (r.cost.nodes.length)
    out.push(mdTable(['node', 'op', 'params', 'MACs'], r.cost.nodes.map((n) => [`\`${n.node}\``, n.opType, fmtCount(n.params), fmtCount(n.macs)]), ['l', 'l', 'r', 'r']), '');
  for (const a of r.cost.assumptions) out.push(`- ${a}`);
  if (r.cost.assumptions.length) out.push('');
  if (r.opaque.length) {
    out.push('## Opaque ops', '', 'Treated as elementwise pass-through merging their input-dependent inputs.', '');
    for (const o of r.opaque) out.push(`- \`${o.node}\` (${o.domain ? `${o.domain}.` : ''}${o.opType})`);
    out.push('');
  }
  if (r.warnings.length) {
    out.push('## Warnings', '');
    for (const w of r.warnings) out.push(`- ${w}`);
    out.push('');
  }
  return out.join('\n');
}
