// bench/fixed-batch-models: torchvision models exported with torch.onnx.export's defaults (batch fixed at 1,
// no dynamic_axes) through makeBatchSymbolic: nodes rewritten, time (shape sweep + onnxruntime verification,
// a batch of 3 against the examples one at a time), max relative error, or why the batch stays fixed.
//   node --import tsx bench/fixed-batch-models.ts
// Needs Debian's python3-torch and python3-torchvision; exports go to bench/out/fixed-batch-models/ (gitignored).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../src/import/onnx-io.js';
import { makeBatchSymbolic } from '../src/import/batch.js';

const out = 'bench/out/fixed-batch-models';
mkdirSync(out, { recursive: true });
const models: Record<string, string> = {
  resnet18: 'torchvision.models.resnet18(weights=None), (3, 224, 224)',
  mobilenet_v3_small: 'torchvision.models.mobilenet_v3_small(weights=None), (3, 224, 224)',
  convnext_tiny: 'torchvision.models.convnext_tiny(weights=None), (3, 224, 224)',
  swin_t: 'torchvision.models.swin_t(weights=None), (3, 224, 224)',
  vit_small: 'torchvision.models.VisionTransformer(image_size=64, patch_size=16, num_layers=4, num_heads=4, hidden_dim=64, mlp_dim=128), (3, 64, 64)',
};
for (const [name, spec] of Object.entries(models)) {
  const file = join(out, `${name}.onnx`);
  if (existsSync(file)) continue;
  const py = `import torch, torchvision\ntorch.manual_seed(0)\nm, s = ${spec}\nm.eval()\ntorch.onnx.export(m, torch.randn(1, *s), '${file}', opset_version=17)\n`; // no torch.no_grad(): it would pick MultiheadAttention's fast path, which does not export
  const r = spawnSync('/usr/bin/python3', ['-c', py], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name}: export failed\n${r.stderr}`);
}
console.log('| model | nodes | Reshape | rewritten | time | max rel. error | |');
console.log('|---|---|---|---|---|---|---|');
for (const name of Object.keys(models)) {
  const m = loadModel(join(out, `${name}.onnx`));
  const t0 = performance.now();
  const r = await makeBatchSymbolic(m);
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  const ops = [...new Set(r.rewrites.map((w) => w.op))].join('/');
  console.log(`| ${name} | ${m.graph.nodes.length} | ${m.graph.nodes.filter((n) => n.opType === 'Reshape').length} | ${r.rewrites.length}${ops ? ` (${ops})` : ''} | ${s} s | ${r.verifiedError?.toExponential(1) ?? '–'} | ${r.reason ?? (r.changed ? 'freed' : 'unchanged')} |`);
}
