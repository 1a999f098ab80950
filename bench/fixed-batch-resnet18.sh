#!/bin/sh
# bench/fixed-batch-resnet18.sh: a torchvision ResNet-18 exported with torch.onnx.export's defaults (batch fixed
# at 1, no dynamic_axes) goes through `linfold linearize --steps 4 --batch-size 8 --loss distill`: the batch is
# freed (src/import/batch.ts), the teacher (onnxruntime) and the student (tfjs) run batches of 8, a model with a
# symbolic batch is written. Data: 40 random N(0,1) images 3x224x224 as float32 .npy (distillation needs no
# labels; 32 train rows = 4 steps of 8, 8 validation rows). Prints the wall time of the linearize command.
#   sh bench/fixed-batch-resnet18.sh            (THREADS=2 for two wasm threads; default 1)
# Needs Debian's python3-torch and python3-torchvision. Writes under bench/out/ (gitignored).
set -eu
cd "$(dirname "$0")/.."
OUT=bench/out/fixed-batch-resnet18
THREADS=${THREADS:-1}
mkdir -p "$OUT"
/usr/bin/python3 - "$OUT" <<'EOF'
import os, sys
import numpy as np
import torch, torchvision
out = sys.argv[1]
torch.manual_seed(0)
model = torchvision.models.resnet18(weights=None).eval()
path = os.path.join(out, "resnet18_fixed.onnx")
with torch.no_grad():
    torch.onnx.export(model, torch.randn(1, 3, 224, 224), path)  # defaults: batch 1, no dynamic axes
np.save(os.path.join(out, "images.npy"), np.random.default_rng(0).standard_normal((40, 3, 224, 224), dtype=np.float32))
print(f"exported {path} ({os.path.getsize(path) / 1e6:.1f} MB) and {out}/images.npy (40x3x224x224)")
EOF
start=$(date +%s.%N)
node --import tsx src/main.ts --threads "$THREADS" linearize "$OUT/resnet18_fixed.onnx" --data "$OUT/images.npy" --loss distill \
  --steps 4 --batch-size 8 -o "$OUT/resnet18.linear.onnx"
end=$(date +%s.%N)
echo "linearize wall time: $(echo "$end - $start" | bc) s (threads: $THREADS, $(nproc) cores)"
/usr/bin/python3 - "$OUT/resnet18.linear.onnx" <<'EOF'
import sys, onnx
m = onnx.load(sys.argv[1])
dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
print(f"written: input {dims(m.graph.input[0])}, output {dims(m.graph.output[0])}, {sum(n.op_type == 'PRelu' for n in m.graph.node)} PRelu")
EOF
