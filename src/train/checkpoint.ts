// Checkpoints: the model as ONNX with its current weights, the optimizer's state as an ONNX file of
// initializers only (same reader and writer), and a JSON of the loop state. Written to a temp folder and
// renamed into place, so a run killed mid-write leaves the previous checkpoint intact.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LinfoldError } from '../errors.js';
import { Graph, type Model } from '../import/ir.js';
import { Tensor } from '../import/tensor.js';
import { loadModel, saveModel } from '../import/onnx-io.js';

export interface NamedArray { name: string; dims: number[]; values: Float32Array }

export interface Checkpoint<S> {
  model: Model;
  optimizer: NamedArray[];
  state: S;
}

const FILES = { model: 'model.onnx', optimizer: 'optimizer.onnx', state: 'state.json' };

export function saveCheckpoint<S>(dir: string, ck: Checkpoint<S>): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  saveModel(ck.model, join(tmp, FILES.model));
  const g = new Graph();
  g.name = 'optimizer-state';
  for (const a of ck.optimizer) g.initializers.set(a.name, Tensor.fromArray(a.name, 'float32', a.dims, a.values));
  saveModel({ irVersion: 8, opsets: [{ domain: '', version: 13 }], producerName: 'linfold', producerVersion: '', domain: '', modelVersion: 0, docString: 'optimizer state', graph: g, passthrough: {} }, join(tmp, FILES.optimizer));
  writeFileSync(join(tmp, FILES.state), JSON.stringify(ck.state, null, 2));
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

export function hasCheckpoint(dir: string): boolean {
  return Object.values(FILES).every((f) => existsSync(join(dir, f)));
}

export function loadCheckpoint<S>(dir: string): Checkpoint<S> {
  if (!hasCheckpoint(dir)) throw new LinfoldError(`${dir}: no complete checkpoint here (expected ${Object.values(FILES).join(', ')})`);
  const model = loadModel(join(dir, FILES.model));
  const opt = loadModel(join(dir, FILES.optimizer));
  const optimizer = [...opt.graph.initializers.values()].map((t) => ({ name: t.name, dims: t.dims, values: Float32Array.from(t.float32()) }));
  let state: S;
  try {
    state = JSON.parse(readFileSync(join(dir, FILES.state), 'utf8')) as S;
  } catch (e) {
    throw new LinfoldError(`${join(dir, FILES.state)}: unreadable (${(e as Error).message})`);
  }
  return { model, optimizer, state };
}
