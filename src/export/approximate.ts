// Border-approximate merges (fold --borders approximate): the pipeline takes them without holding them to
// the tolerance, re-bases its verification references on the model after each one (so the exact rewrites
// that follow are still verified exactly), and reports how far the folded model moved from the input.
import type { Model } from '../import/ir.js';
import { argmaxRows, type Tensor } from '../import/tensor.js';
import { compareOutputs } from './verify.js';

export interface ApproximationReport {
  /** approximate merges taken */
  merges: number;
  /** max relative output error (max-abs / max |reference|) of the folded model against the input model */
  maxRelError: number;
  /** top-1 agreement (argmax over the last axis of the first output) with the input model on the verification inputs */
  agreement: number;
  /** accuracy of the input and the folded model (FoldOptions.accuracy), when given */
  accuracy?: { before: number; after: number };
}

/** The folded model (its outputs `got` on the verification feeds) against the input model's `references`. */
export async function approximationReport(
  input: Model, model: Model, merges: number, got: Record<string, Tensor>[], references: Record<string, Tensor>[],
  accuracy?: (m: Model) => Promise<number>,
): Promise<ApproximationReport> {
  let maxRelError = 0, agree = 0, n = 0;
  for (let k = 0; k < got.length; k++) {
    maxRelError = Math.max(maxRelError, compareOutputs(references[k], got[k]).maxRelError);
    const name = Object.keys(references[k])[0];
    const [a, b] = [references[k][name], got[k][name]];
    const c = a.dims[a.dims.length - 1] ?? 1;
    const rows = a.size / c;
    if (c < 2) continue;
    const [va, vb] = [a.float32(), b.float32()];
    const [pa, pb] = [argmaxRows(va, rows), argmaxRows(vb, rows)];
    agree += pa.filter((p, r) => p === pb[r]).length;
    n += rows;
  }
  const report: ApproximationReport = { merges, maxRelError, agreement: n ? agree / n : NaN };
  if (accuracy) report.accuracy = { before: await accuracy(input), after: await accuracy(model) };
  return report;
}
