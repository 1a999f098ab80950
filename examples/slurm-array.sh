#!/usr/bin/env bash
# The README's λ sweep as a Slurm job array: one array task per point, every task writing into one folder
# on the cluster's shared file system. Submit from a clone of linfold on that file system (`npm ci` done):
#
#   jid=$(sbatch --parsable examples/slurm-array.sh)
#   sbatch --dependency=afterany:$jid --wrap 'npx --no-install linfold collect sweep-out --require-all'
#
# Task i runs grid point i ($SLURM_ARRAY_TASK_ID, read by `linfold sweep`) and writes sweep-out/points/<i>.json.
# A task that fails or is requeued can simply run again: points already written are skipped. `linfold collect`
# merges whatever exists into sweep-out/sweep.json and sweep-out/sweep-report.html and names what is missing.
# Arguments after the script name go to `linfold sweep` and win over the ones below, e.g. fewer tasks, each
# running several points (task i runs points i, i+4, i+8):
#
#   sbatch --array=0-3 examples/slurm-array.sh --count 4
#
#SBATCH --job-name=linfold-sweep
#SBATCH --array=0-11
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=00:30:00
#SBATCH --output=linfold-sweep-%A_%a.log
set -euo pipefail

OUT=${LINFOLD_OUT:-sweep-out}
LINFOLD=${LINFOLD:-npx --no-install linfold}
# the wasm backend's threads: the task's CPUs, not the node's cores
export LINFOLD_THREADS=${LINFOLD_THREADS:-${SLURM_CPUS_PER_TASK:-1}}

# 6 λ × (post-training, from scratch) = 12 points = --count 12 = --array=0-11
$LINFOLD sweep fixtures/mnist_cnn.onnx --lambdas 0.001,0.003,0.01,0.02,0.05,0.1 --from-scratch --epochs 2 \
  --count 12 --out "$OUT" "$@"
