// The trained MNIST fixtures under onnxruntime-node: PyTorch's reference output (<name>.ref.json), validation
// accuracy on the 1 996 validation digits (fed one image at a time, so fixed-batch exports run too) and batch-1
// latency (one intra-op thread, medians of 7 × 200 runs).
//
//   node --import tsx bench/mnist-fixtures.ts [mnist_mbv2 mnist_mbv2_fixed mnist_cnn ...]
import { readFileSync, existsSync } from 'node:fs';
import { loadModel } from '../src/import/onnx-io.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Tensor, compareValues } from '../src/import/tensor.js';
import { mnist } from '../src/train/data.js';
import { median } from '../src/export/verify.js';

interface Ref { name: string; dtype: 'float32'; shape: number[]; data: string }
const tensorOf = (r: Ref): Tensor => {
  const b = Buffer.from(r.data, 'base64');
  return Tensor.fromBytes(r.name, r.dtype, r.shape, new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice());
};

const names = process.argv.slice(2).length ? process.argv.slice(2) : ['mnist_mbv2', 'mnist_mbv2_fixed', 'mnist_cnn'];
const val = [...mnist().validation.batches(1)];
for (const name of names) {
  const file = `fixtures/${name}.onnx`;
  const session = await ortSession(loadModel(file), file, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const inputName = session.inputNames[0], outputName = session.outputNames[0];
  let refLine = 'no ref.json';
  if (existsSync(`fixtures/${name}.ref.json`)) {
    const ref = JSON.parse(readFileSync(`fixtures/${name}.ref.json`, 'utf8')) as { input: Ref; output: Ref };
    const out = (await runOrt(session, { [inputName]: tensorOf(ref.input) }))[outputName];
    refLine = `vs PyTorch ref.json: max rel error ${compareValues(out.data as Float32Array, tensorOf(ref.output).data as Float32Array).maxRelError.toExponential(2)}`;
  }
  let correct = 0;
  for (const b of val) {
    const logits = (await runOrt(session, { [inputName]: Tensor.f32(inputName, b.shape, b.x) }))[outputName].data as Float32Array;
    let k = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[k]) k = j;
    if (k === b.y![0]) correct++;
  }
  const feeds = { [inputName]: Tensor.f32(inputName, val[0].shape, val[0].x) };
  for (let i = 0; i < 200; i++) await runOrt(session, feeds);
  const times: number[] = [];
  for (let rep = 0; rep < 7; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) await runOrt(session, feeds);
    times.push((performance.now() - t0) / 200);
  }
  console.log(`${name}: ${refLine}; validation accuracy ${(100 * correct / val.length).toFixed(2)} % (${correct}/${val.length}); ` +
    `batch-1 latency ${median(times).toFixed(3)} ms (min ${Math.min(...times).toFixed(3)} ms)`);
}
