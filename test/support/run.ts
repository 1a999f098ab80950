// Running models for comparisons: onnxruntime-node (the reference) on seeded random inputs, and the tfjs
// executor with every tensor it made disposed.
import type { Model } from '../../src/import/ir.js';
import type { Tensor } from '../../src/import/tensor.js';
import { compareOutputs, randomFeeds, runModel } from '../../src/export/verify.js';
import { compile, feedsToTf, outputsToIR, type CompileOptions } from '../../src/import/tfjs/executor.js';
import { tf } from '../../src/import/tfjs/backends.js';

/** Max relative error (compareOutputs) of `b`'s outputs against `a`'s in onnxruntime on seeded random inputs of `a`. */
export async function outputsRel(a: Model, b: Model, { seed = 11, batch = 3 } = {}): Promise<number> {
  const feeds = randomFeeds(a.graph, { batch, seed });
  return compareOutputs(await runModel(a, feeds), await runModel(b, feeds)).maxRelError;
}

/** The model's outputs from the tfjs executor (backend in use), as IR tensors; no tfjs tensor is left behind. */
export function tfjsOutputs(model: Model, feeds: Record<string, Tensor>, opts?: CompileOptions): Record<string, Tensor> {
  const exe = compile(model, opts);
  const tfFeeds = feedsToTf(feeds);
  try {
    const out = exe.run(tfFeeds);
    try {
      return outputsToIR(exe, out);
    } finally {
      tf.dispose(Object.values(out));
    }
  } finally {
    tf.dispose(Object.values(tfFeeds));
    exe.dispose();
  }
}
