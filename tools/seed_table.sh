#!/usr/bin/env bash
# Runs C2's setting (ResNet-18, SGD lr 0.1, batch 128, Fashion-MNIST from Debian's package) for
# several seeds, with trainlab's c2 and with the lab's Python script (tools/lab/train.py, when
# Debian's python3-torch is installed), and prints each epoch's loss and top-1 as mean ± sd
# (min-max) across seeds. Single runs this short are noisy: this shows how noisy.
#
#   tools/seed_table.sh [--seeds=5] [--epochs=2] [--batches=20] [--out=DIR] [--python=1]
#
# Results stay in DIR (default /tmp/trainlab_seeds): DIR/cpp/seed_N/c2.json,
# DIR/python/seed_N.json, DIR/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=5 epochs=2 batches=20 out=/tmp/trainlab_seeds python=1
for arg in "$@"; do
  case "$arg" in
    --seeds=*) seeds="${arg#*=}" ;;
    --epochs=*) epochs="${arg#*=}" ;;
    --batches=*) batches="${arg#*=}" ;;
    --out=*) out="${arg#*=}" ;;
    --python=*) python="${arg#*=}" ;;
    *) echo "seed_table.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

./bazelw build //experiments:c2 >&2
mkdir -p "$out/cpp" "$out/python"
# A copy, so that a rebuild while the seeds run does not change the program under them.
cp -f bazel-bin/experiments/c2 "$out/c2"
have_python=0
if [[ "$python" == 1 ]] && /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  have_python=1
elif [[ "$python" == 1 ]]; then
  echo "seed_table.sh: no python3-torch/python3-torchvision for /usr/bin/python3; C++ only" >&2
fi

for ((s = 0; s < seeds; ++s)); do
  if [[ ! -f "$out/cpp/seed_$s/c2.json" ]]; then
    echo "seed_table.sh: c2 seed $s" >&2
    "$out/c2" --dataset=fashion_mnist --seed="$s" --epochs="$epochs" \
      --max_batches_per_epoch="$batches" --progress=off --results_dir="$out/cpp/seed_$s" >/dev/null
  fi
  if ((have_python)) && [[ ! -f "$out/python/seed_$s.json" ]]; then
    echo "seed_table.sh: python seed $s" >&2
    /usr/bin/python3 tools/lab/train.py --seed="$s" --epochs="$epochs" --batches="$batches" \
      --json="$out/python/seed_$s.json.tmp" >/dev/null
    mv "$out/python/seed_$s.json.tmp" "$out/python/seed_$s.json"
  fi
done
/usr/bin/python3 tools/lab/seed_table.py "$out" | tee "$out/table.md"
