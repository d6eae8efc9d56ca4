#!/usr/bin/env bash
# The time-to-accuracy measurement of docs/time_to_accuracy.md, in one sitting on one machine:
# Fashion-MNIST (Debian's dataset-fashion-mnist, the full 60,000 training and 10,000 test images),
# trainlab's fast and lab recipes to a target test top-1, then the lab's Python loop
# (tools/lab/train.py) with the fast recipe's settings, to the same target.
#
#   tools/time_to_accuracy_fmnist.sh [--out=DIR] [--target=90] [--epochs=3] [--lab_epochs=2]
#                                    [--threads=N]
#
# The lab recipe runs only --lab_epochs (its accuracy when the fast recipe is done is the figure
# asked for; at about 12 minutes an epoch on 2 vCPUs, its full --epochs would add half an hour).
#
# Needs the CPU build (./bazelw build //experiments:time_to_accuracy) and, for the Python side,
# Debian's python3-torch and python3-torchvision (/usr/bin/python3). Nothing else may run on the
# machine meanwhile: every figure is a wall time. On 2 vCPUs the trainlab part took 48 minutes
# (--epochs=4, --lab_epochs=2); the Python part is not yet timed.
# Writes DIR/lscpu.txt, DIR/trainlab/ and DIR/trainlab_lab/ (results JSON, CSV, console),
# DIR/python.json and DIR/python.txt, and prints the times to target and the lab recipe's test
# top-1 at the fast recipe's time.
set -euo pipefail
cd "$(dirname "$0")/.."

out=/tmp/time_to_accuracy_fmnist
target=90
epochs=3
lab_epochs=2
threads=$(nproc)
for a in "$@"; do
  case "$a" in
    --out=*) out="${a#*=}" ;;
    --target=*) target="${a#*=}" ;;
    --epochs=*) epochs="${a#*=}" ;;
    --lab_epochs=*) lab_epochs="${a#*=}" ;;
    --threads=*) threads="${a#*=}" ;;
    *) echo "time_to_accuracy_fmnist.sh: unknown argument: $a" >&2; exit 2 ;;
  esac
done
bin=bazel-bin/experiments/time_to_accuracy
[[ -x "$bin" ]] || { echo "time_to_accuracy_fmnist.sh: no $bin: ./bazelw build //experiments:time_to_accuracy" >&2; exit 1; }
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null ||
  { echo "time_to_accuracy_fmnist.sh: /usr/bin/python3 lacks torch or torchvision (apt-get install python3-torchvision)" >&2; exit 1; }
mkdir -p "$out/trainlab" "$out/trainlab_lab"
lscpu >"$out/lscpu.txt"

# trainlab: the fast recipe, --epochs at most, stopping at the target; its strategy is the one
# the fast recipe picks for this CPU (printed as "Recipe fast sets: ..."). Then the lab's.
"$bin" --dataset=fashion_mnist --recipe=fast --epochs="$epochs" --target_accuracy="$target" \
  --threads="$threads" --progress=off --results_dir="$out/trainlab" | tee "$out/trainlab/console.txt"
"$bin" --dataset=fashion_mnist --recipe=lab --epochs="$lab_epochs" --target_accuracy="$target" \
  --threads="$threads" --progress=off --results_dir="$out/trainlab_lab" |
  tee "$out/trainlab_lab/console.txt"

# What the fast recipe set here, as Python flags: the same optimizer, batch, lr, schedule,
# warm-up, smoothing, TTA, memory format and autocast.
strategy=$(grep -oE -- '--strategy=[^ ]+' "$out/trainlab/console.txt" | head -1 | cut -d= -f2)
py_levers=()
[[ "$strategy" == *channels_last* ]] && py_levers+=(--channels_last)
[[ "$strategy" == *amp_bf16* ]] && py_levers+=(--amp_bf16)
warmup=$(/usr/bin/python3 -c "print($epochs / 5)")
/usr/bin/python3 tools/lab/train.py --epochs "$epochs" --batches 0 --batch_size 512 --lr 0.4 \
  --lr_schedule onecycle --warmup_epochs "$warmup" --label_smoothing 0.2 --tta flip --nesterov \
  "${py_levers[@]}" --target_accuracy "$target" --threads "$threads" --json "$out/python.json" |
  tee "$out/python.txt"

echo
echo "== time to ${target}% test top-1 (Fashion-MNIST), $(grep -m1 'Model name' "$out/lscpu.txt" | sed 's/.*: *//')"
grep -hE '^(fast|lab) +[0-9]+ of ' "$out/trainlab/console.txt" "$out/trainlab_lab/console.txt" |
  sed 's/^/trainlab /'
/usr/bin/python3 - "$out/python.json" "$out/trainlab/time_to_accuracy.json" \
  "$out/trainlab_lab/time_to_accuracy.json" <<'EOF'
import json, sys
def curve(path):
    # (wall seconds after each epoch and its evaluation, test top-1) of the first run
    run, wall, points = json.load(open(path))["variants"][0]["runs"][0], 0.0, []
    for e in run["epochs"]:
        wall += e["epoch_s"] + e.get("test", {}).get("seconds", 0.0)
        points.append((wall, e.get("test", {}).get("top1")))
    return points
fast, lab = curve(sys.argv[2]), curve(sys.argv[3])
at = fast[-1][0]
before = [top1 for wall, top1 in lab if wall <= at]
print("trainlab lab at the fast recipe's %.0f s: %s" % (
    at, "%.2f%% test top-1 (its last evaluation by then)" % before[-1] if before
    else "no epoch finished yet (first at %.0f s: %.2f%%)" % lab[0]))
r = json.load(open(sys.argv[1]))
t = r["target"]
last = r["epochs"][-1].get("test", {}).get("top1", float("nan"))
if t:
    print("python fast: reached after epoch %d: training %.1f s, wall %.1f s (final test top-1 %.2f%%)"
          % (t["epoch"], t["train_s"], t["wall_s"], last))
else:
    print("python fast: not reached in %d epochs (final test top-1 %.2f%%)" % (len(r["epochs"]), last))
EOF
