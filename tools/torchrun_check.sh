#!/usr/bin/env bash
# Launches trainlab through Debian's torchrun (python3-torch), as a user would: the collectives
# check, then c2 data-parallel on 2 processes for a few batches. Not part of `bazel test` (it
# needs python3-torch, which ./bazelw does not install); run by hand:
#   tools/torchrun_check.sh [NPROC]
# Debian's torchrun (1.13, Python 3.11) needs --redirects 2 --tee 2, and its flag is --no_python.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-2}"
command -v torchrun >/dev/null || { echo "torchrun_check.sh: no torchrun (apt-get install python3-torch)" >&2; exit 1; }
./bazelw build //tools:dist_check //experiments:c2 >&2
run() { torchrun --no_python --nproc_per_node="$n" --redirects 2 --tee 2 "$@"; }
run bazel-bin/tools/dist_check allreduce 60 2>&1 | grep 'dist_check'
run bazel-bin/tools/dist_check train 60 2>&1 | grep 'dist_check'
run bazel-bin/experiments/c2 --dataset=fashion_mnist --epochs=1 --max_batches_per_epoch=4 \
  --batch_size=32 --threads=1 --progress=off 2>&1 | grep -E 'Data-parallel|Loss|Accuracy|Epoch Time'
echo "torchrun_check.sh: $n processes under torchrun: ok"
