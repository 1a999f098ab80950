// The fixtures against the framework that made them: PyTorch's own eval-mode outputs (stored by
// fixtures/make_fixtures.py in *.ref.json) match both onnxruntime and linfold's TensorFlow.js import.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadModel } from '../src/import/onnx-io.js';
import { ortSession, runOrt } from '../src/import/ort.js';
import { Tensor } from '../src/import/tensor.js';
import { compareTensors } from '../src/import/tfjs/check.js';
import { useBackend } from '../src/import/tfjs/backends.js';
import { fixture, trackedFixtures } from './support/fixtures.js';
import { tfjsOutputs } from './support/run.js';

interface Ref { name: string; dtype: 'float32' | 'int64'; shape: number[]; data: string }

function tensorOf(r: Ref): Tensor {
  const bytes = Buffer.from(r.data, 'base64');
  return Tensor.fromBytes(r.name, r.dtype, r.shape, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice());
}

test('PyTorch outputs = onnxruntime = tfjs import (wasm), for every eval-mode fixture', async () => {
  const refs = trackedFixtures().filter((f) => f.endsWith('.ref.json'));
  assert.ok(refs.length >= 5);
  await useBackend('wasm');
  for (const f of refs) {
    // one input, or several (a BERT-style model's input_ids, attention_mask, token_type_ids)
    const ref = JSON.parse(readFileSync(fixture(f), 'utf8')) as { input?: Ref; inputs?: Ref[]; output: Ref };
    const model = loadModel(fixture(f.replace('.ref.json', '.onnx')));
    const feeds = Object.fromEntries((ref.inputs ?? [ref.input!]).map((r) => [r.name, tensorOf(r)]));
    const expected = tensorOf(ref.output);
    const ort = (await runOrt(await ortSession(model), feeds))[expected.name];
    assert.ok(compareTensors(ort, expected).maxRelError < 1e-4, `${f}: onnxruntime vs PyTorch`);
    const mine = tfjsOutputs(model, feeds)[expected.name];
    const err = compareTensors(mine, expected).maxRelError;
    assert.ok(err < 1e-4, `${f}: tfjs vs PyTorch ${err}`);
  }
});
