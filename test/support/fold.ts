// Helpers for the fold tests (whose graphs come from GraphBuilder, src/import/graph-builder.ts): pass contexts
// with static shapes, and a check that runs a model before and after a rewrite in onnxruntime-node.
import assert from 'node:assert/strict';
import type { Model } from '../../src/import/ir.js';
import { cloneModel } from '../../src/import/ir-edit.js';
import { passContext, type PassContext } from '../../src/export/pass.js';
import { staticShapes } from '../../src/export/shapes.js';
import { randomFeeds } from '../../src/export/verify.js';
import { outputsRel } from './run.js';

/** A pass context with static shapes from seeded inputs (batch 1). */
export async function shapesCtx(m: Model, extra: Partial<PassContext> = {}): Promise<PassContext> {
  const feeds = randomFeeds(m.graph, { batch: 1, seed: 3 });
  return passContext({ shapes: await staticShapes(m, feeds), opset: m.opsets.find((o) => !o.domain || o.domain === 'ai.onnx')?.version, ...extra });
}

/**
 * Applies `rewrite` to a copy of the model and compares both in onnxruntime-node on seeded random inputs
 * (batch 3); returns the rewritten model and the relative error, asserting it is below `tol`.
 */
export async function foldAndCompare(m: Model, rewrite: (m: Model) => unknown | Promise<unknown>, tol = 1e-5): Promise<{ model: Model; rel: number }> {
  const after = cloneModel(m);
  await rewrite(after);
  after.graph.sortTopologically();
  const rel = await outputsRel(m, after, { batch: 3, seed: 11 });
  assert.ok(rel < tol, `relative error ${rel} ≥ ${tol}`);
  return { model: after, rel };
}
