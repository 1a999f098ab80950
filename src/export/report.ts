// Markdown rendering of a fold report.
import type { FoldMetrics, FoldReport } from './pipeline.js';

const fmt = (v: number | null | undefined, digits = 0): string => {
  if (v === null || v === undefined) return 'n/a';
  if (!Number.isFinite(v)) return String(v);
  return digits ? v.toFixed(digits) : Math.round(v).toLocaleString('en-US');
};
const ratio = (a: number | null, b: number | null): string => (a && b !== null && a > 0 ? `${(b / a).toFixed(2)}×` : '');

export function renderFoldMarkdown(r: FoldReport): string {
  const rows: [string, (m: FoldMetrics) => number | null, number][] = [
    ['nodes', (m) => m.nodes, 0],
    ['conv/matmul layers', (m) => m.layers, 0],
    ['conv/matmul depth (longest path)', (m) => m.depth, 0],
    ['APL', (m) => m.apl, 3],
    ['NAPL', (m) => m.napl, 3],
    ['parameters', (m) => m.params, 0],
    ['MACs', (m) => m.macs, 0],
    ['onnxruntime-node latency, batch 1 (ms, median)', (m) => m.latencyMs, 3],
  ];
  const out: string[] = [];
  out.push(`# linfold fold${r.model ? `: ${r.model}` : ''}`, '');
  out.push(`Objective **${r.objective}**, tolerance ${r.tolerance} (max-abs error / max |reference|), slope eps ${r.eps}; ${r.rounds} round(s) of ${r.passes.join(', ')}.`, '');
  for (const v of r.verdict ?? []) out.push(`**${v}**  `);
  if (r.verdict?.length) out.push('');
  const o = r.original;
  if (o) {
    out.push('| | original | before (input) | after | after/original |', '|---|---:|---:|---:|---:|');
    for (const [label, f, d] of rows) out.push(`| ${label} | ${fmt(f(o), d)} | ${fmt(f(r.before), d)} | ${fmt(f(r.after), d)} | ${ratio(f(o), f(r.after))} |`);
  } else {
    out.push('| | before | after | after/before |', '|---|---:|---:|---:|');
    for (const [label, f, d] of rows) out.push(`| ${label} | ${fmt(f(r.before), d)} | ${fmt(f(r.after), d)} | ${ratio(f(r.before), f(r.after))} |`);
  }
  if (r.accuracy) out.push('', `Validation accuracy (onnxruntime, ${r.accuracy.data}): ${[['original', r.accuracy.original], ['input', r.accuracy.input], ['folded', r.accuracy.folded]].filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${((v as number) * 100).toFixed(2)} %`).join(', ')}.`);
  out.push('');
  const ops = [...new Set([...Object.keys(r.before.opCounts), ...Object.keys(r.after.opCounts)])].sort();
  out.push(`Ops: ${ops.map((o) => `${o} ${r.before.opCounts[o] ?? 0}→${r.after.opCounts[o] ?? 0}`).join(', ')}`, '');
  out.push(`## Verification`, '', `${r.verification.passed ? 'Passed' : 'FAILED'}: max relative error ${r.verification.maxRelError.toExponential(2)} on ${r.verification.inputs}.`, '');
  if (r.approximation) {
    const a = r.approximation;
    out.push(`Approximate at the borders: ${a.merges} conv merge(s) taken outside the tolerance (\`--borders approximate\`); against the input model: max relative error ${a.maxRelError.toExponential(2)}, top-1 agreement ${(100 * a.agreement).toFixed(2)}% on the verification inputs${a.accuracy ? `, accuracy ${(100 * a.accuracy.before).toFixed(2)}% → ${(100 * a.accuracy.after).toFixed(2)}%` : ''}. The check above compares against the model after the last approximate merge.`, '');
  }
  out.push(`## Folds taken (${r.taken.length})`, '');
  for (const e of r.taken) out.push(`- \`${e.pass}\` ${e.what}${e.relError !== undefined ? ` (${e.approximate ? 'approximate, ' : ''}rel. error ${e.relError.toExponential(1)})` : ''}`);
  if (!r.taken.length) out.push('- none');
  out.push('', `## Folds rejected (${r.rejected.length})`, '');
  for (const e of r.rejected) out.push(`- \`${e.pass}\` ${e.what}: ${e.reason}`);
  if (!r.rejected.length) out.push('- none');
  if (r.notes.length) out.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  return out.join('\n') + '\n';
}
