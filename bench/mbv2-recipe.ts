// The recipe bench/fold.ts --recipe mbv2 linearizes fixtures/mnist_mbv2.onnx with: one slope per inverted
// residual block (src/train/block-slopes.ts), labels + distillation, λ warm-up, snap, then fine-tuning with
// a restarted learning rate; on the native backend (onnxruntime, about twice as fast as wasm here).
import type { LinearizeOptions } from '../src/train/linearize.js';

export const MBV2_SETTINGS: Partial<LinearizeOptions> = {
  granularity: 'block', loss: 'both', lambda: 0.08, lr: 1e-3, slopeLr: 5e-2, epochs: 3, finetuneEpochs: 1, finetuneLr: 1e-3,
  snap: true, batchSize: 64, seed: 0, backend: 'onnxruntime',
};
