// The native backend as linearize() drives it (src/train/linearize.ts, `StepBackend`): one step given a batch →
// loss parts, slopes read and written for freezing, weights read back into the model, optimizer state for
// checkpoints, and predictions for evaluation (a forward session taking the current trainables as inputs).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { LinfoldError, option } from '../../errors.js';
import { opsetOf, type Model } from '../../import/ir.js';
import { ortSession } from '../../import/ort.js';
import { cloneModel } from '../../import/ir-edit.js';
import type { Batch } from '../data.js';
import type { NamedArray } from '../checkpoint.js';
import { NativeTrainer, type NativeTrainerOptions } from './session.js';
import { Emitter } from './emit.js';
import { lowerForward } from './training-graph.js';

export type NativeBackendName = 'onnxruntime' | 'onnxruntime-cuda';
export const NATIVE_BACKENDS: readonly NativeBackendName[] = ['onnxruntime', 'onnxruntime-cuda'];
export const isNativeBackend = (name: string | undefined): name is NativeBackendName => NATIVE_BACKENDS.includes(name as NativeBackendName);

export interface NativeBackendInfo { name: NativeBackendName; available: boolean; reason?: string }

/** onnxruntime's CPU provider ships inside onnxruntime-node; CUDA only when its provider library was installed
 *  (ONNXRUNTIME_NODE_INSTALL=cuda12 at npm install). */
export function nativeBackendInfo(): NativeBackendInfo[] {
  const listed = ort.listSupportedBackends?.() ?? [{ name: 'cpu', bundled: true }];
  const cuda = listed.find((b) => b.name === 'cuda');
  let binDir = '';
  try {
    const req = createRequire(import.meta.url);
    binDir = join(dirname(req.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    // not resolvable: no CUDA
  }
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  const cudaReady = Boolean(cuda) && (cuda!.bundled || (binDir !== '' && existsSync(join(binDir, lib))));
  return [
    { name: 'onnxruntime', available: true },
    cudaReady ? { name: 'onnxruntime-cuda', available: true }
      : { name: 'onnxruntime-cuda', available: false, reason: cuda ? `onnxruntime-node has no CUDA provider library (${lib}); reinstall it with ONNXRUNTIME_NODE_INSTALL=cuda12` : 'this onnxruntime-node build has no CUDA execution provider' },
  ];
}

/**
 * What `--backend auto` trains on: onnxruntime-cuda where installed, else TensorFlow.js on a GPU (tfjs-node-gpu)
 * where installed, else onnxruntime on the CPU (2× tfjs wasm or more, bench/train-step.ts). Undefined: TensorFlow.js
 * (its own auto order) — `unsupported` names a feature only the TensorFlow.js step has, and `say` gets that reason.
 */
export function autoNativeBackend(tfjsGpu: boolean, unsupported: string | undefined, say?: (m: string) => void): NativeBackendName | undefined {
  const cuda = nativeBackendInfo().find((b) => b.name === 'onnxruntime-cuda')!.available;
  if (!cuda && tfjsGpu) return undefined;
  if (unsupported) {
    say?.(`backend auto: TensorFlow.js, not onnxruntime (${unsupported} runs on the TensorFlow.js backends only)`);
    return undefined;
  }
  return cuda ? 'onnxruntime-cuda' : 'onnxruntime';
}

export interface StepParams { teacher?: Float32Array; lambda: number; lrW: number; lrS: number; trainSlopes: boolean }

/** What the training loop needs from a backend. */
export interface StepBackend {
  /** One optimizer step; returns [loss, task loss, prior]. */
  step(b: Batch, p: StepParams): Promise<[number, number, number]>;
  /** The model's first output for a batch, flattened per row. */
  predict(b: Batch): Promise<Float32Array>;
  /** A copy of slope tensor k's values. */
  slope(k: number): Float32Array;
  setSlope(k: number, values: Float32Array): void;
  /** Takes every trainable's value from a model (a checkpoint). */
  load(model: Model, where: string): void;
  syncToModel(model: Model): void;
  /** Compiles the model again after a graph rewrite (merge-ready padding), keeping weights and optimizer state. */
  recompile?(): void;
  optimizerState(): Promise<NamedArray[]>;
  setOptimizerState(all: NamedArray[], where: string): Promise<void>;
  dispose(): Promise<void>;
}

export interface NativeBackendOptions extends Omit<NativeTrainerOptions, 'slopes' | 'gradients'> {
  slopes: { name: string; weight: number }[];
  classes?: number;
}

const PREFIX = 'native/';

export async function nativeBackend(model: Model, name: NativeBackendName, o: NativeBackendOptions): Promise<StepBackend> {
  const info = nativeBackendInfo().find((b) => b.name === name)!;
  if (!info.available) throw new LinfoldError(`backend '${name}': ${info.reason}`);
  const device = name === 'onnxruntime-cuda' ? 'cuda' : 'cpu';
  const threads = o.threads ?? (process.env.LINFOLD_THREADS ? Number(process.env.LINFOLD_THREADS) : undefined);
  const trainer = await NativeTrainer.create(model, { ...o, device, threads });
  // forward session for evaluation: the trainables as inputs, so it follows the training without rebuilding; PRelu
  // as the training graph computes it (the same values, faster)
  const fwd = cloneModel(model);
  const g = fwd.graph;
  for (const p of trainer.params) {
    const t = g.initializers.get(p)!;
    g.initializers.delete(p);
    g.inputs.push({ name: p, dtype: 'float32', shape: t.dims });
  }
  lowerForward(new Emitter(g, opsetOf(fwd) ?? 17), g, [...g.nodes]);
  const input = g.feeds[0];
  const output = g.outputs[0].name;
  const session = await ortSession(fwd, 'forward', { executionProviders: [device], ...(threads ? { intraOpNumThreads: threads } : {}) });
  const xTensor = (b: Batch) => (b.x instanceof Int32Array ? new ort.Tensor('int64', BigInt64Array.from(b.x, (v) => BigInt(v)), b.shape) : new ort.Tensor('float32', b.x, b.shape));
  const slopeNames = o.slopes.map((s) => s.name);
  return {
    async step(b, p) {
      const classes = o.classes ?? 0;
      let target: Float32Array | undefined;
      if (b.y) {
        if (!classes) throw new LinfoldError('native backend: the number of classes is unknown');
        target = new Float32Array(b.size * classes);
        for (let i = 0; i < b.size; i++) target[i * classes + b.y[i]] = 1;
      }
      const x = b.x instanceof Int32Array ? BigInt64Array.from(b.x, (v) => BigInt(v)) : b.x;
      const r = await trainer.step({ x, xDims: b.shape, target, teacher: p.teacher, lambda: p.lambda, lrW: p.lrW, lrS: p.lrS, trainSlopes: p.trainSlopes });
      return [r.loss, r.taskLoss, r.priorLoss];
    },
    async predict(b) {
      const feeds: Record<string, ort.Tensor> = { [input.name]: xTensor(b) };
      for (const p of trainer.params) feeds[p] = new ort.Tensor('float32', trainer.read(p), g.inputs.find((i) => i.name === p)!.shape as number[]);
      const out = await session.run(feeds, [output]);
      return Float32Array.from(out[output].data as Float32Array);
    },
    slope: (k) => Float32Array.from(trainer.read(slopeNames[k])),
    setSlope: (k, values) => trainer.write(slopeNames[k], values),
    load(m, where) {
      for (const p of trainer.params) {
        const t = m.graph.initializers.get(p);
        if (!t) throw new LinfoldError(`${where}: checkpoint has no value for '${p}' (was it made from another model?)`);
        trainer.write(p, t.float32());
      }
    },
    syncToModel: (m) => trainer.syncToModel(m),
    optimizerState: async () => trainer.optimizerState().map((a) => ({ ...a, name: PREFIX + a.name })),
    async setOptimizerState(all, where) {
      const mine = all.filter((a) => a.name.startsWith(PREFIX));
      if (!mine.length && all.length) throw new LinfoldError(`${where}: the checkpoint's optimizer state comes from a TensorFlow.js backend; resume with that ${option('backend')}`);
      trainer.setOptimizerState(mine.map((a) => ({ ...a, name: a.name.slice(PREFIX.length) })));
    },
    async dispose() {
      await trainer.release();
      await session.release();
    },
  };
}
