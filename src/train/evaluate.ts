// Validation accuracy of an ONNX model under onnxruntime-node: the independent check of what was written.
import type { Model } from '../import/ir.js';
import { argmaxRows } from '../import/tensor.js';
import { batchTensors } from './feeds.js';
import { ortSession, runOrt } from '../import/ort.js';
import { freeBatch } from '../import/batch.js';
import { loadModel, decodeModel } from '../import/onnx-io.js';
import type { Batch, Dataset } from './data.js';

/** A session for scoring: a batch fixed at 1 by the exporter is freed when possible, else examples run one at a time. */
async function scoringSession(model: Model | string | Uint8Array, batchSize: number): Promise<{ session: Awaited<ReturnType<typeof ortSession>>; batchSize: number }> {
  const m = await freeBatch(typeof model === 'string' ? loadModel(model) : model instanceof Uint8Array ? decodeModel(model) : model);
  return { session: await ortSession(m), batchSize: m.graph.feeds[0]?.shape?.[0] === 1 ? 1 : batchSize };
}

/** The first output of a session for a validation batch, as class predictions. */
async function predictions(session: Awaited<ReturnType<typeof ortSession>>, data: Dataset, b: Batch): Promise<number[]> {
  return argmaxRows(Object.values(await runOrt(session, batchTensors(b, data, session.inputNames[0])))[0].float32(), b.size);
}

export async function ortAccuracy(model: Model | string | Uint8Array, data: Dataset, batchSize = 256): Promise<number> {
  const s = await scoringSession(model, batchSize);
  let correct = 0, n = 0;
  for (const b of data.validation.batches(s.batchSize)) {
    if (!b.y) throw new Error('ortAccuracy needs labels');
    const p = await predictions(s.session, data, b);
    correct += p.filter((c, i) => c === b.y![i]).length;
    n += b.size;
  }
  await s.session.release();
  return correct / n;
}

/** Top-1 agreement of two ONNX models (argmax of their first outputs) on the validation split, under onnxruntime-node. */
export async function ortAgreement(model: Model | string | Uint8Array, reference: Model | string | Uint8Array, data: Dataset, batchSize = 256): Promise<number> {
  const [a, r] = [await scoringSession(model, batchSize), await scoringSession(reference, batchSize)];
  let agree = 0, n = 0;
  for (const b of data.validation.batches(Math.min(a.batchSize, r.batchSize))) {
    const [pa, pr] = [await predictions(a.session, data, b), await predictions(r.session, data, b)];
    agree += pa.filter((c, i) => c === pr[i]).length;
    n += b.size;
  }
  await a.session.release();
  await r.session.release();
  return agree / n;
}
