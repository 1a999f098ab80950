// ONNX's own backend test data (Debian package libonnx-testdata): model + input/output TensorProtos per case.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeTensor } from '../../src/import/onnx-io.js';
import type { Tensor } from '../../src/import/tensor.js';

export const TESTDATA_ROOT = process.env.ONNX_TESTDATA ?? '/usr/share/libonnx-testdata/data';

export interface TestCase { suite: string; name: string; dir: string; model: string }

export function testCases(suites = ['node', 'simple', 'pytorch-converted', 'pytorch-operator']): TestCase[] {
  const out: TestCase[] = [];
  for (const suite of suites) {
    const root = join(TESTDATA_ROOT, suite);
    if (!existsSync(root)) continue;
    for (const name of readdirSync(root).sort()) {
      const dir = join(root, name);
      const model = join(dir, 'model.onnx');
      if (existsSync(model)) out.push({ suite, name, dir, model });
    }
  }
  return out;
}

/**
 * Inputs and expected outputs of test_data_set_<index>, in file order; undefined when a file holds a
 * sequence or optional value rather than a tensor (those cases are outside linfold's scope).
 */
export function dataSet(tc: TestCase, index = 0): { inputs: Tensor[]; outputs: Tensor[] } | undefined {
  try {
    return readDataSet(tc, index);
  } catch {
    return undefined;
  }
}

function readDataSet(tc: TestCase, index: number): { inputs: Tensor[]; outputs: Tensor[] } {
  const dir = join(tc.dir, `test_data_set_${index}`);
  const read = (prefix: string) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
          .sort((a, b) => parseInt(a.slice(prefix.length)) - parseInt(b.slice(prefix.length)))
          .map((f) => decodeTensor(readFileSync(join(dir, f)), join(dir, f)))
      : [];
  return { inputs: read('input_'), outputs: read('output_') };
}

/** Why the tests on ONNX's test data skip (Debian's libonnx-testdata is optional), or false when it is installed. */
export const TESTDATA_MISSING: string | false = existsSync(join(TESTDATA_ROOT, 'node')) ? false : `ONNX backend test data not found at ${TESTDATA_ROOT} (install Debian's libonnx-testdata or set ONNX_TESTDATA)`;
