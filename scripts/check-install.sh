#!/usr/bin/env bash
# linfold installed as users install it: `npm pack`, the tarball installed into an empty folder (its
# dependencies come from the npm registry; onnxruntime-node is told not to download its CUDA 12 provider from
# NuGet), then the installed CLI run from there: --version, `linfold audit` of the bundled model and
# `linfold demo --epochs 0` (the whole pipeline, without the minutes of training). Run by .ci/run; by hand:
# `bash scripts/check-install.sh`. Needs the build's inputs (`npm ci` done): `npm pack` runs `prepare`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ONNXRUNTIME_NODE_INSTALL=skip

npm pack --pack-destination "$work" >/dev/null
tgz=$(ls "$work"/linfold-*.tgz)
echo "packed $(basename "$tgz") ($(du -k "$tgz" | cut -f1) KiB)"

mkdir "$work/app"
cd "$work/app"
npm install --no-audit --no-fund "$tgz"
# --no-install: never fetch a package of that name from the registry instead of the installed one
npx --no-install linfold --version
npx --no-install linfold audit node_modules/linfold/fixtures/mnist_cnn.onnx
npx --no-install linfold demo --epochs 0 --out demo --quiet
test -s demo/summary.json && test -s demo/report.html && test -s demo/mnist_mbv2.folded.onnx
# what the installed package brings: no sources, no tests, no dev dependencies
test ! -e node_modules/linfold/src && test ! -e node_modules/linfold/test && test ! -e node_modules/typescript
echo "install check: ok"
