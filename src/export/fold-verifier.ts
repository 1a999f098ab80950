// The fold pipeline's verifier: the input model's outputs on seeded random inputs (and any given data), and
// the worst relative error of a rewritten model against them, both run by onnxruntime-node.
import type { Graph, Model } from '../import/ir.js';
import type { Tensor } from '../import/tensor.js';
import { compareOutputs, firstExample, outputsOn, randomFeeds, type Comparison } from './verify.js';

type Feeds = Record<string, Tensor>;

export interface VerifierOptions {
  seed: number;
  batch: number;
  inputShapes?: Record<string, number[]>;
  data?: Feeds | Feeds[];
}

export class FoldVerifier {
  /** the outputs later rewrites are compared against (moved on by approximate merges) */
  private references: Feeds[];

  private constructor(
    readonly feedSets: Feeds[],
    /** the input model's outputs, whatever approximate merges did later */
    readonly inputReferences: Feeds[],
    private readonly describe: string,
  ) {
    this.references = [...inputReferences];
  }

  /** Runs the input model (`inputBytes`, graph `g`) on the verification inputs. */
  static async create(inputBytes: Uint8Array, label: string, g: Graph, opts: VerifierOptions): Promise<FoldVerifier> {
    const given = opts.data ? (Array.isArray(opts.data) ? opts.data : [opts.data]) : [];
    const feedSets = [randomFeeds(g, { seed: opts.seed, batch: opts.batch, inputShapes: opts.inputShapes }), ...given];
    const references = await outputsOn(inputBytes, feedSets, label);
    const describe = `seeded N(0,1) random inputs (seed ${opts.seed}, batch ${opts.batch})${given.length ? ` and ${given.length} given data set(s)` : ''}`;
    return new FoldVerifier(feedSets, references, describe);
  }

  /** One example of the random inputs: what latency is measured on. */
  latencyFeeds(): Feeds {
    return firstExample(this.feedSets[0]);
  }

  /** The worst comparison over the feed sets against the current references, and the outputs compared. */
  async check(m: Model): Promise<Comparison & { outputs: Feeds[] }> {
    const outputs = await outputsOn(m, this.feedSets, 'folded model');
    let worst: Comparison = { maxRelError: 0, perOutput: {} };
    for (let k = 0; k < this.feedSets.length; k++) {
      const c = compareOutputs(this.references[k], outputs[k]);
      if (c.maxRelError >= worst.maxRelError) worst = c;
    }
    return { ...worst, outputs };
  }

  /** After an approximate merge: later rewrites are verified against the model as it is now. */
  rebase(outputs: Feeds[]): void {
    this.references = [...outputs];
  }

  /** What the verification ran on, in words (for the report). */
  inputsText(): string {
    return this.describe;
  }
}
