// bench/fold-linear: the ceiling of folding on a real architecture. Every activation of a model (torchvision
// MobileNetV2 or ResNet-18 by default, exported with torch.onnx.export defaults by bench/export-torchvision.py)
// is made the identity (linfold's PReLU/blend at slope 1: what `linearize` would leave if every channel went
// linear), then `fold` runs under each objective, and onnxruntime-node times the original architecture and the
// folded model in alternation (batch 1, medians), in one run.
//   node --import tsx bench/fold-linear.ts [--model file.onnx ...] [--objectives latency,macs,depth] [--runs 50]
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/import/onnx-io.js';
import { Tensor } from '../src/import/tensor.js';
import { makeLinearizable } from '../src/train/linearizable.js';
import { fold, type Objective } from '../src/export/pipeline.js';
import { alternatingLatency, randomFeeds } from '../src/export/verify.js';
import { layerDepth } from '../src/export/metrics.js';

const { values } = parseArgs({ options: {
  model: { type: 'string', multiple: true },
  objectives: { type: 'string', default: 'latency,macs,depth' },
  runs: { type: 'string', default: '50' },
} });
const runs = Number(values.runs);
let models = values.model ?? [];
if (!models.length) {
  const dir = 'bench/out/models';
  models = ['mobilenet_v2', 'resnet18'].map((n) => `${dir}/${n}.onnx`);
  if (models.some((m) => !existsSync(m))) execFileSync('/usr/bin/python3', ['bench/export-torchvision.py', dir], { stdio: 'inherit' });
}

for (const file of models) {
  const original = loadModel(file);
  const lin = makeLinearizable(original);
  for (const s of lin.slopes) {
    const t = lin.model.graph.initializers.get(s.name)!;
    lin.model.graph.initializers.set(s.name, Tensor.f32(s.name, [...t.dims], new Float32Array(t.size).fill(1)));
  }
  console.log(`\n${file}: ${lin.slopes.length} activation layers made the identity; depth ${layerDepth(original.graph).depth}`);
  console.log('| objective | depth | MACs (M) | params (M) | latency original → folded (ms) | speed-up | max rel. error | fold time (s) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const objective of values.objectives!.split(',') as Objective[]) {
    const t0 = performance.now();
    const { model, report } = await fold(lin.model, { objective, latencyRuns: 0 });
    const secs = (performance.now() - t0) / 1000;
    const feeds = randomFeeds(original.graph, { batch: 1 });
    const [tOrig, tFold] = await alternatingLatency([original, model], feeds, runs, 5);
    const b = report.before, a = report.after;
    console.log(`| ${objective} | ${layerDepth(original.graph).depth} → ${a.depth} | ${((b.macs ?? 0) / 1e6).toFixed(1)} → ${((a.macs ?? 0) / 1e6).toFixed(1)} | ${((b.params ?? 0) / 1e6).toFixed(2)} → ${((a.params ?? 0) / 1e6).toFixed(2)} | ${tOrig.toFixed(2)} → ${tFold.toFixed(2)} | **${(tOrig / tFold).toFixed(2)}×** | ${report.verification.maxRelError.toExponential(1)} | ${secs.toFixed(0)} |`);
  }
}
