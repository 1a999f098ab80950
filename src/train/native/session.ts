// Runs training graphs with onnxruntime-node: the trainables and the optimizer state live as onnxruntime
// tensors, each step's outputs becoming the next step's inputs (no copies); one session per graph variant
// (which tensors train), built when first needed.
import * as ort from 'onnxruntime-node';
import { LinfoldError } from '../../errors.js';
import type { Model } from '../../import/ir.js';
import { fromOrt, ortSession } from '../../import/ort.js';
import type { NamedArray } from '../checkpoint.js';
import { ADAM, buildTrainingGraph, gradName, next, type TrainingGraph, type TrainingGraphOptions } from './training-graph.js';

export type NativeDevice = 'cpu' | 'cuda';

export interface NativeTrainerOptions extends Omit<TrainingGraphOptions, 'trainWeights' | 'trainSlopes'> {
  device?: NativeDevice;
  threads?: number;
  slopesOnly?: boolean;
  /** Extra onnxruntime session options (profiling, spinning). */
  sessionOptions?: ort.InferenceSession.SessionOptions;
}

export interface StepInput {
  x: Float32Array | BigInt64Array;
  xDims: number[];
  /** One-hot (or soft) targets [batch, classes]. */
  target?: Float32Array;
  teacher?: Float32Array;
  lambda: number;
  lrW: number;
  lrS: number;
  trainSlopes: boolean;
}

export interface StepResult { loss: number; taskLoss: number; priorLoss: number; gradients?: Map<string, Float32Array> }

interface Variant { graph: TrainingGraph; session: ort.InferenceSession }

export class NativeTrainer {
  private readonly values = new Map<string, ort.Tensor>();
  private readonly variants = new Map<string, Promise<Variant>>();
  /** Adam steps taken by the weights' and the slopes' optimizers (bias corrections). */
  steps = { w: 0, s: 0 };

  private constructor(private readonly model: Model, private readonly o: NativeTrainerOptions, readonly params: string[]) {}

  static async create(model: Model, o: NativeTrainerOptions): Promise<NativeTrainer> {
    const t = new NativeTrainer(model, o, []);
    const v = await t.variant(true);
    t.params.push(...v.graph.params);
    for (const p of v.graph.params) {
      const init = model.graph.initializers.get(p)!;
      t.values.set(p, new ort.Tensor('float32', Float32Array.from(init.float32()), init.dims));
    }
    return t;
  }

  /** The training graph of a variant (for tests and inspection). */
  async graph(trainSlopes = true): Promise<TrainingGraph> {
    return (await this.variant(trainSlopes)).graph;
  }

  private variant(trainSlopes: boolean): Promise<Variant> {
    const key = String(trainSlopes);
    let v = this.variants.get(key);
    if (!v) {
      v = (async () => {
        const graph = buildTrainingGraph(this.model, { ...this.o, trainWeights: !this.o.slopesOnly, trainSlopes });
        if (!graph.trained.length) throw new LinfoldError('native backend: nothing to train');
        const options: ort.InferenceSession.SessionOptions = { executionProviders: [this.o.device === 'cuda' ? 'cuda' : 'cpu'], ...this.o.sessionOptions };
        if (this.o.threads) {
          options.intraOpNumThreads = this.o.threads;
          options.interOpNumThreads = 1;
        }
        const session = await ortSession(graph.model, 'training graph', options);
        return { graph, session };
      })();
      this.variants.set(key, v);
    }
    return v;
  }

  async step(b: StepInput): Promise<StepResult> {
    const { graph, session } = await this.variant(b.trainSlopes);
    const feeds: Record<string, ort.Tensor> = {};
    feeds[graph.input] = b.x instanceof BigInt64Array ? new ort.Tensor('int64', b.x, b.xDims) : new ort.Tensor('float32', b.x, b.xDims);
    const rows = b.xDims[0];
    if (graph.targets.includes('target')) feeds.target = new ort.Tensor('float32', b.target!, [rows, b.target!.length / rows]);
    if (graph.targets.includes('teacher')) feeds.teacher = new ort.Tensor('float32', b.teacher!, [rows, b.teacher!.length / rows]);
    const trainsW = graph.trained.some((p) => !this.isSlope(p));
    if (trainsW) this.steps.w++;
    if (b.trainSlopes) this.steps.s++;
    const scalar = (v: number) => new ort.Tensor('float32', Float32Array.of(v), []);
    const values: Record<string, number> = {
      lambda: b.lambda,
      lr_w: b.lrW / (this.adam ? 1 - ADAM.beta1 ** this.steps.w : 1),
      lr_s: b.lrS / (this.adam ? 1 - ADAM.beta1 ** this.steps.s : 1),
      bc2_w: 1 / (1 - ADAM.beta2 ** this.steps.w),
      bc2_s: 1 / (1 - ADAM.beta2 ** this.steps.s),
    };
    for (const s of graph.scalars) feeds[s] = scalar(values[s]);
    for (const p of graph.params) feeds[p] = this.values.get(p)!;
    for (const [p, st] of graph.state)
      for (const name of st) feeds[name] = this.values.get(name) ?? new ort.Tensor('float32', new Float32Array(this.values.get(p)!.size), this.values.get(p)!.dims);
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await session.run(feeds);
    } catch (e) {
      throw new LinfoldError(`native backend: onnxruntime failed to run the training step (${(e as Error).message.split('\n')[0]})`);
    }
    for (const p of graph.trained) {
      this.values.set(p, out[next(p)]);
      for (const name of graph.state.get(p)!) this.values.set(name, out[next(name)]);
    }
    const num = (k: string) => (out[k].data as Float32Array)[0];
    const res: StepResult = { loss: num('loss'), taskLoss: num('task_loss'), priorLoss: num('prior_loss') };
    if (this.o.gradients) res.gradients = new Map(graph.trained.map((p) => [p, out[gradName(p)].data as Float32Array]));
    return res;
  }

  private get adam(): boolean {
    return (this.o.optimizer ?? 'adam') === 'adam';
  }

  private isSlope(name: string): boolean {
    return this.o.slopes.some((s) => s.name === name);
  }

  /** Current value of a trainable tensor (a view: copy before keeping it past the next step). */
  read(name: string): Float32Array {
    const v = this.values.get(name);
    if (!v) throw new LinfoldError(`native backend: '${name}' is not a trainable tensor`);
    return v.data as Float32Array;
  }

  write(name: string, values: Float32Array): void {
    const v = this.values.get(name);
    if (!v) throw new LinfoldError(`native backend: '${name}' is not a trainable tensor`);
    this.values.set(name, new ort.Tensor('float32', Float32Array.from(values), v.dims));
  }

  /** Writes the current trainables into a model's initializers. */
  syncToModel(model: Model): void {
    for (const p of this.params) {
      const v = this.values.get(p)!;
      model.graph.initializers.set(p, fromOrt(p, v));
    }
  }

  /** Optimizer state tensors and step counts, for checkpoints. */
  optimizerState(): NamedArray[] {
    const out: NamedArray[] = [];
    for (const [name, v] of this.values) if (!this.params.includes(name)) out.push({ name, dims: [...v.dims], values: Float32Array.from(v.data as Float32Array) });
    out.push({ name: '__steps', dims: [2], values: Float32Array.of(this.steps.w, this.steps.s) });
    return out;
  }

  setOptimizerState(all: NamedArray[]): void {
    for (const a of all) {
      if (a.name === '__steps') this.steps = { w: a.values[0], s: a.values[1] };
      else this.values.set(a.name, new ort.Tensor('float32', Float32Array.from(a.values), a.dims));
    }
  }

  /** Ends onnxruntime profiling of every session (sessionOptions.enableProfiling); returns the files written. */
  async endProfiling(): Promise<void> {
    for (const v of this.variants.values()) (await v).session.endProfiling();
  }

  async release(): Promise<void> {
    for (const v of this.variants.values()) await (await v).session.release();
  }
}
