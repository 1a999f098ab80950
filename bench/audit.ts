// bench/audit: time and peak memory of `audit` on a large model (≥ 300 MB of weights) next to only
// decoding the same file with protobufjs. Each measurement runs in its own child process so peak RSS is
// its own. Targets: audit ≤ 2× decode time, peak memory ≤ 2× file size.
//   node --import tsx bench/audit.ts [--mb 320]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Graph, type Model } from '../src/import/ir.js';
import { Tensor } from '../src/import/tensor.js';
import { saveModel, loadModel } from '../src/import/onnx-io.js';
import { ModelProto } from '../src/import/onnx-schema.js';
import { audit } from '../src/analyze/audit.js';

const self = fileURLToPath(import.meta.url);

/** A ResNet-like MLP: blocks of Gemm→Relu→Gemm + residual, 2048 wide, until the weights reach `mb`. */
function bigModel(mb: number): Model {
  const d = 2048;
  const g = new Graph();
  g.name = 'big';
  g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', d] }];
  let x = 'x';
  const layerBytes = d * d * 4;
  const blocks = Math.ceil((mb * 2 ** 20) / (2 * layerBytes));
  let seed = 7;
  const weight = (name: string) => {
    const w = new Float32Array(d * d);
    for (let i = 0; i < w.length; i += 97) w[i] = ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 0.05;
    return Tensor.fromArray(name, 'float32', [d, d], w);
  };
  for (let b = 0; b < blocks; b++) {
    const [w1, w2, h, r, y, z] = [`w${b}a`, `w${b}b`, `h${b}`, `r${b}`, `y${b}`, `z${b}`];
    g.initializers.set(w1, weight(w1));
    g.initializers.set(w2, weight(w2));
    g.nodes.push(
      { name: `fc${b}a`, opType: 'MatMul', domain: '', inputs: [x, w1], outputs: [h], attrs: {} },
      { name: `relu${b}`, opType: 'Relu', domain: '', inputs: [h], outputs: [r], attrs: {} },
      { name: `fc${b}b`, opType: 'MatMul', domain: '', inputs: [r, w2], outputs: [y], attrs: {} },
      { name: `add${b}`, opType: 'Add', domain: '', inputs: [x, y], outputs: [z], attrs: {} },
    );
    x = z;
  }
  g.outputs = [{ name: x, dtype: 'float32', shape: ['batch', d] }];
  return { irVersion: 8, opsets: [{ domain: '', version: 17 }], producerName: 'linfold-bench', producerVersion: '', domain: '', modelVersion: 0, docString: '', graph: g, passthrough: {} };
}

function measure(mode: 'decode' | 'audit', file: string): { ms: number; maxRssMb: number } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', self, '--child', mode, file], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

async function child(mode: string, file: string): Promise<void> {
  const t0 = performance.now();
  if (mode === 'decode') {
    ModelProto.decode(readFileSync(file));
  } else {
    audit(loadModel(file));
  }
  const ms = performance.now() - t0;
  // peak resident memory of the whole process (node + tsx baseline included)
  const maxRssMb = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ ms, maxRssMb }));
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1], args[2]);
  const mb = Number(args[args.indexOf('--mb') + 1] || 320) || 320;
  const dir = join('bench', 'out');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `big-${mb}mb.onnx`);
  if (!existsSync(file)) saveModel(bigModel(mb), file);
  const fileMb = statSync(file).size / 2 ** 20;
  // warm the page cache so both sides read from memory
  readFileSync(file);
  const runs = 3;
  const best = (mode: 'decode' | 'audit') => {
    const r = Array.from({ length: runs }, () => measure(mode, file));
    return { ms: Math.min(...r.map((x) => x.ms)), maxRssMb: Math.min(...r.map((x) => x.maxRssMb)) };
  };
  const dec = best('decode');
  const aud = best('audit');
  const nodes = loadModel(file).graph.nodes.length;
  console.log(`model: ${file} (${fileMb.toFixed(0)} MB, ${nodes} nodes)`);
  console.log(`protobufjs decode : ${dec.ms.toFixed(0)} ms, ${dec.maxRssMb.toFixed(0)} MB peak RSS`);
  console.log(`linfold audit     : ${aud.ms.toFixed(0)} ms, ${aud.maxRssMb.toFixed(0)} MB peak RSS (load + shape inference + census + path lengths + cost)`);
  console.log(`time ratio audit/decode: ${(aud.ms / dec.ms).toFixed(2)}× (target ≤ 2×)`);
  console.log(`memory ratio audit peak/file: ${(aud.maxRssMb / fileMb).toFixed(2)}× (target ≤ 2×)`);
}

await main();
