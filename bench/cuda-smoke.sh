#!/usr/bin/env bash
# CUDA smoke test of the native training backend, for a machine with an NVIDIA GPU (runs offline once
# onnxruntime-node was installed with its CUDA 12 provider: ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci).
#   1. backend detection: `linfold backends --json` must report onnxruntime-cuda available
#   2. one training step of fixtures/mnist_cnn.onnx (linearizable, CE + L1 prior, Adam) on CUDA and on CPU
#      from the same weights and batch: loss and updated weights must agree (parity with CPU)
#   3. a short `linfold linearize --backend onnxruntime-cuda` run writes a model that onnxruntime loads
# Exit code 0 = all passed; 1 = a check failed; 2 = no CUDA provider (nothing to test).
#
#   bash bench/cuda-smoke.sh
# CUDA_SMOKE_DEVICE=cpu runs the same checks with the CPU provider in place of CUDA (to test the script itself).
set -euo pipefail
cd "$(dirname "$0")/.."
export LINFOLD_THREADS="${LINFOLD_THREADS:-2}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== 1. backend detection"
node --import tsx src/main.ts backends --json > "$tmp/backends.json"
node -e '
const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const cuda = j.native.find((b) => b.name === "onnxruntime-cuda");
console.log(JSON.stringify(j.native));
if (!cuda.available && process.env.CUDA_SMOKE_DEVICE !== "cpu") { console.error("onnxruntime-cuda unavailable: " + cuda.reason); process.exit(2); }
' "$tmp/backends.json"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

echo "== 2. one training step on CUDA and on CPU (parity)"
cat > "$tmp/parity.ts" <<'TS'
import { loadModel } from './src/import/onnx-io.js';
import { makeLinearizable } from './src/train/linearizable.js';
import { NativeTrainer } from './src/train/native/session.js';
import { seededDraws } from './src/import/graph-builder.js';
const { model, slopes } = makeLinearizable(loadModel('fixtures/mnist_cnn.onnx'));
const B = 64;
const x = seededDraws(1).normals(B * 784);
const target = new Float32Array(B * 10);
for (let k = 0; k < B; k++) target[k * 10 + ((k * 7) % 10)] = 1;
const run = async (device: 'cpu' | 'cuda') => {
  const t = await NativeTrainer.create(model, { slopes: slopes.map((s) => ({ name: s.name, weight: 1 })), device });
  const step = () => t.step({ x, xDims: [B, 1, 28, 28], target, lambda: 1e-3, lrW: 1e-3, lrS: 1e-2, trainSlopes: true });
  const r = await step();
  const times: number[] = [];
  for (let k = 0; k < 5; k++) { const t0 = performance.now(); await step(); times.push(performance.now() - t0); }
  return { loss: r.loss, weights: t.params.map((p) => Float32Array.from(t.read(p))), ms: times.sort((a, b) => a - b)[2] };
};
const cpu = await run('cpu'), gpu = await run((process.env.CUDA_SMOKE_DEVICE ?? 'cuda') as 'cpu' | 'cuda');
let worst = 0;
cpu.weights.forEach((w, i) => {
  const scale = Math.max(...w.map(Math.abs), 1e-6);
  for (let k = 0; k < w.length; k++) worst = Math.max(worst, Math.abs(w[k] - gpu.weights[i][k]) / scale);
});
console.log(`loss cpu ${cpu.loss} cuda ${gpu.loss}; max relative weight difference after 6 steps ${worst.toExponential(2)}; step ${cpu.ms.toFixed(1)} ms cpu, ${gpu.ms.toFixed(1)} ms cuda`);
if (Math.abs(cpu.loss - gpu.loss) > 1e-4 * Math.abs(cpu.loss) || worst > 1e-2) { console.error('CUDA and CPU disagree'); process.exit(1); }
TS
cp "$tmp/parity.ts" ./.cuda-smoke-parity.ts
trap 'rm -rf "$tmp" ./.cuda-smoke-parity.ts' EXIT
node --import tsx ./.cuda-smoke-parity.ts

echo "== 3. linearize --backend onnxruntime-cuda"
node --import tsx src/main.ts linearize fixtures/mnist_cnn.onnx --data mnist --steps 20 --epochs 1 --lambda 0.02 \
  --backend "$([ "${CUDA_SMOKE_DEVICE:-cuda}" = cpu ] && echo onnxruntime || echo onnxruntime-cuda)" -o "$tmp/cuda.linear.onnx" --quiet --json
node -e 'const ort = require("onnxruntime-node"); ort.InferenceSession.create(process.argv[1]).then(() => console.log("written model loads in onnxruntime"))' "$tmp/cuda.linear.onnx"
echo "cuda smoke: all checks passed"
