// Multi-input data: a .npz with one array per graph input name (plus labels), for models such as a BERT-style
// encoder (input_ids, attention_mask, token_type_ids). Every batch carries all inputs by name (Batch.feeds);
// batch.x is the first input, so code written for one input keeps working on the first.
import type { Model, ValueInfo } from '../import/ir.js';
import { Tensor } from '../import/tensor.js';
import { LinfoldError, option } from '../errors.js';
import { readNpz, type NpyDtype, type RowSource } from './npy.js';
import { arrays, batchRows, imageFolder, mnist, splitRows, type Batch, type Dataset, type Split } from './data.js';

/** Names a .npz may use for the labels of multi-input data. */
export const LABEL_NAMES = ['labels', 'label', 'y'];

const INT_ARRAYS: ReadonlySet<NpyDtype> = new Set(['int64', 'int32', 'uint8', 'int8', 'bool']);
const isIntInput = (v: ValueInfo) => v.dtype !== undefined && /^u?int|^bool$/.test(v.dtype);

interface Named { name: string; src: RowSource; dtype: 'float32' | 'int32'; sampleShape: number[] }

/**
 * The arrays of `file` named after the graph inputs of `model` (all of them), with labels from `labels`,
 * `label` or `y` when present. Every problem is one LinfoldError naming the file and the array: an input with
 * no array, an array whose dtype (integer vs float) or sample shape does not fit its input, arrays of
 * different lengths. Validation = every k-th row (k = round(1 / valFraction)), as for single arrays.
 */
export function namedArrays(file: string, model: Model, opts: { valFraction?: number } = {}): Dataset {
  const z = readNpz(file);
  const where = model.path ?? 'the model';
  const have = () => [...z.keys()].join(', ') || 'no arrays';
  const inputs: Named[] = model.graph.feeds.map((feed) => {
    const src = z.get(feed.name);
    if (!src) fail(`${file}: no array named '${feed.name}' for input '${feed.name}' of ${where} (the file has ${have()}; it needs one array per input: ${model.graph.feeds.map((f) => f.name).join(', ')})`);
    const wantInt = isIntInput(feed);
    if (wantInt !== INT_ARRAYS.has(src.dtype))
      fail(`${file}: array '${feed.name}' is ${src.dtype}, but input '${feed.name}' of ${where} is ${feed.dtype} (give ${wantInt ? 'integer' : 'float'} values)`);
    const sample = src.shape.slice(1), want = feed.shape?.slice(1);
    if (!src.shape.length || (want && (want.length !== sample.length || want.some((d, i) => typeof d === 'number' && d !== sample[i]))))
      fail(`${file}: array '${feed.name}' has shape [${src.shape.join(', ')}], but input '${feed.name}' of ${where} is [${(feed.shape ?? []).join(', ')}]`);
    return { name: feed.name, src, dtype: wantInt ? 'int32' : 'float32', sampleShape: sample };
  });
  if (!inputs.length) fail(`${where}: the model has no inputs`);
  const labelName = LABEL_NAMES.find((k) => z.has(k));
  const y = labelName ? z.get(labelName) : undefined;
  const n = inputs[0].src.shape[0];
  for (const [name, a] of [...inputs.map((i) => [i.name, i.src] as const), ...(y ? [[labelName!, y] as const] : [])])
    if (a.shape[0] !== n) fail(`${file}: array '${name}' has ${a.shape[0]} rows, but '${inputs[0].name}' has ${n} (every array needs one row per example)`);
  if (y && y.shape.length !== 1) fail(`${file}: array '${labelName}' has shape [${y.shape.join(', ')}]; labels are one class per example [${n}]`);
  const { train, val } = splitRows(n, opts.valFraction ?? 0.2);
  const numClasses = y ? y.rows(Array.from({ length: n }, (_, i) => i)).reduce((m, v) => Math.max(m, v), 0) + 1 : undefined;
  const first = inputs[0];
  return {
    name: file, sampleShape: first.sampleShape, dtype: first.dtype, hasLabels: Boolean(y), numClasses,
    inputs: inputs.map(({ name, dtype, sampleShape }) => ({ name, dtype, sampleShape })),
    train: namedSplit(train, inputs, y), validation: namedSplit(val, inputs, y),
  };
}

function namedSplit(rows: Uint32Array, inputs: Named[], y: RowSource | undefined): Split {
  return {
    size: rows.length,
    *batches(batchSize, opts = {}) {
      for (const idx of batchRows(rows, batchSize, opts)) {
        const feeds = Object.fromEntries(inputs.map((a) => {
          const v = a.src.rows(idx);
          return [a.name, { x: a.dtype === 'int32' ? Int32Array.from(v) : Float32Array.from(v), shape: [idx.length, ...a.sampleShape] }];
        }));
        const first = feeds[inputs[0].name];
        yield { x: first.x, shape: first.shape, y: y ? Int32Array.from(y.rows(idx)) : undefined, size: idx.length, feeds };
      }
    },
  };
}

/** The batch as graph inputs: every named input (multi-input data), or `inputName` ← batch.x. */
export function batchTensors(b: Batch, data: Dataset, inputName: string): Record<string, Tensor> {
  const one = (name: string, x: Float32Array | Int32Array, shape: number[], dtype: 'float32' | 'int32') =>
    dtype === 'int32' ? Tensor.i64(name, shape, x) : Tensor.fromArray(name, 'float32', shape, x as Float32Array);
  if (!b.feeds || !data.inputs) return { [inputName]: one(inputName, b.x, b.shape, data.dtype) };
  return Object.fromEntries(data.inputs.map((i) => [i.name, one(i.name, b.feeds![i.name].x, b.feeds![i.name].shape, i.dtype)]));
}

/** The data for a model: multi-input models need a .npz with one array per input name. */
export function needsNamedArrays(source: string, model: Model): boolean {
  if (model.graph.feeds.length < 2) return false;
  if (!source.endsWith('.npz'))
    fail(`${option('data')} ${source}: ${model.path ?? 'the model'} has ${model.graph.feeds.length} inputs (${model.graph.feeds.map((f) => f.name).join(', ')}); give a .npz with one array per input name (and labels)`);
  return true;
}

function fail(msg: string): never {
  throw new LinfoldError(msg);
}

/** A data source by name: 'mnist' (the bundled digits), a .npy/.npz file, or an image folder sized like the model input (or `imageSize` CxHxW). */
export async function openDataset(source: string, model: Model, opts: { labels?: string; imageSize?: string } = {}): Promise<Dataset> {
  if (source === 'mnist') return mnist();
  if (/\.(npy|npz)$/.test(source)) return needsNamedArrays(source, model) ? namedArrays(source, model) : arrays(source, { labels: opts.labels });
  const input = model.graph.feeds[0];
  const dims = opts.imageSize ? opts.imageSize.split('x').map(Number) : input.shape?.slice(1);
  if (!dims || dims.length !== 3 || dims.some((d) => typeof d !== 'number' || !(d > 0)))
    throw new LinfoldError(`${source}: an image folder needs the image size CxHxW (the model input is [${input.shape?.join(', ')}])`);
  return imageFolder(source, { size: dims as [number, number, number] });
}

/** Up to 8 rows of a .npy/.npz file as feeds of `model`: extra inputs for fold's verification. */
export function verificationFeeds(file: string, model: Model): Record<string, Tensor> {
  const ds = needsNamedArrays(file, model) ? namedArrays(file, model) : arrays(file);
  const b = ds.validation.batches(8).next().value ?? ds.train.batches(8).next().value;
  if (!b) throw new LinfoldError(`${file}: no rows`);
  return batchTensors(b, ds, model.graph.feeds[0].name);
}
