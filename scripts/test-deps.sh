#!/usr/bin/env bash
# Installs the Debian packages the test suite reads: ONNX's own backend test data (op semantics reference),
# Chromium (the headless browser test of the HTML report, driven by playwright-core) and PyYAML (the test of
# examples/k8s-indexed-job.yaml reads it with a real YAML parser).
set -euo pipefail
need=()
[ -d /usr/share/libonnx-testdata/data/node ] || need+=(libonnx-testdata)
[ -x /usr/bin/chromium ] || need+=(chromium)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing test dependencies: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
