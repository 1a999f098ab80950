// Validation accuracy of an ONNX model under onnxruntime-node: the independent check of what was written.
import type { Model } from '../import/ir.js';
import { Tensor } from '../import/tensor.js';
import { ortSession, runOrt } from '../import/ort.js';
import { freeBatch } from '../import/batch.js';
import { loadModel, decodeModel } from '../import/onnx-io.js';
import type { Dataset } from './data.js';

export async function ortAccuracy(model: Model | string | Uint8Array, data: Dataset, batchSize = 256): Promise<number> {
  // a batch fixed at 1 by the exporter: freed when possible, else the examples run one at a time
  const m = await freeBatch(typeof model === 'string' ? loadModel(model) : model instanceof Uint8Array ? decodeModel(model) : model);
  if (m.graph.feeds[0]?.shape?.[0] === 1) batchSize = 1;
  const session = await ortSession(m);
  const input = session.inputNames[0];
  let correct = 0, n = 0;
  for (const b of data.validation.batches(batchSize)) {
    if (!b.y) throw new Error('ortAccuracy needs labels');
    const x = data.dtype === 'int32' ? Tensor.i64(input, b.shape, b.x) : Tensor.fromArray(input, 'float32', b.shape, b.x as Float32Array);
    const logits = Object.values(await runOrt(session, { [input]: x }))[0].float32();
    const c = logits.length / b.size;
    for (let i = 0; i < b.size; i++) {
      let best = 0;
      for (let j = 1; j < c; j++) if (logits[i * c + j] > logits[i * c + best]) best = j;
      correct += Number(best === b.y[i]);
    }
    n += b.size;
  }
  await session.release();
  return correct / n;
}

/** Top-1 agreement of two ONNX models (argmax of their first outputs) on the validation split, under onnxruntime-node. */
export async function ortAgreement(model: Model | string | Uint8Array, reference: Model | string | Uint8Array, data: Dataset, batchSize = 256): Promise<number> {
  const [a, b] = [await ortSession(model), await ortSession(reference)];
  const input = a.inputNames[0];
  let agree = 0, n = 0;
  for (const batch of data.validation.batches(batchSize)) {
    const x = data.dtype === 'int32' ? Tensor.i64(input, batch.shape, batch.x) : Tensor.fromArray(input, 'float32', batch.shape, batch.x as Float32Array);
    const [la, lb] = [Object.values(await runOrt(a, { [input]: x }))[0].float32(), Object.values(await runOrt(b, { [b.inputNames[0]]: x.withName(b.inputNames[0]) }))[0].float32()];
    const c = la.length / batch.size;
    for (let i = 0; i < batch.size; i++) agree += Number(argmaxAt(la, i * c, c) === argmaxAt(lb, i * c, c));
    n += batch.size;
  }
  await a.release();
  await b.release();
  return agree / n;
}

function argmaxAt(v: Float32Array, at: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (v[at + j] > v[at + best]) best = j;
  return best;
}
