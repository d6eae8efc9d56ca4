#!/usr/bin/env bash
# trainlab's training step against PyTorch's on this CPU, side by side in one run: the lab's
# Python loop (tools/lab/train.py) under a pinned PyPI PyTorch in each of its modes (eager,
# channels_last, bf16 autocast + channels_last, and the same under torch.compile), and trainlab's
# c2 with each strategy; the same data (Debian's Fashion-MNIST, padded to 32x32x3), batch size,
# threads and allocator settings; interleaved, round after round. Each run trains one epoch of
# --batches batches; its figure is the median per-batch training time (zero_grad, forward, loss,
# backward, optimizer step) of batches 5..--batches (the first four warm up; torch.compile
# compiles in its first). Prints a table with each mode's figures, their median and the ratio
# to PyTorch's best, and the CPU's name.
#
#   tools/lab/side_by_side.sh                        # batch 128, 2 threads, 2 rounds
#   tools/lab/side_by_side.sh --rounds=3 --batch_size=64 --markdown=/tmp/table.md
#
# bf16 modes run only where the CPU has native bf16 (AVX512-BF16 or AMX; elsewhere every bf16
# op is emulated, 20-30x slower: one line says they were skipped; --bf16=always runs them).
# The venv is made once (network needed then) in $TRAINLAB_TORCH_VENV
# (~/.cache/trainlab/py-torch-2.15.0): PyPI's torch 2.15.0 (its CUDA wheel: it runs on the CPU)
# and the torchvision paired with it.
set -uo pipefail
cd "$(dirname "$0")/../.."

rounds=2 batch_size=128 threads=2 batches=14 bf16=auto markdown=""
c2=bazel-bin/experiments/c2
python_modes="eager,channels_last,bf16_channels_last,compile,compile_channels_last,compile_bf16_channels_last"
strategies="eager,channels_last,channels_last+amp_bf16"
venv="${TRAINLAB_TORCH_VENV:-$HOME/.cache/trainlab/py-torch-2.15.0}"
torch_pin="torch==2.15.0" vision_pin="torchvision==0.29.2"
for arg in "$@"; do
  case "$arg" in
    --rounds=*) rounds=${arg#*=} ;;
    --batch_size=*) batch_size=${arg#*=} ;;
    --threads=*) threads=${arg#*=} ;;
    --batches=*) batches=${arg#*=} ;;
    --bf16=*) bf16=${arg#*=} ;;
    --c2=*) c2=${arg#*=} ;;
    --python_modes=*) python_modes=${arg#*=} ;;
    --strategies=*) strategies=${arg#*=} ;;
    --markdown=*) markdown=${arg#*=} ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "side_by_side.sh: unknown argument $arg (--help lists them)" >&2; exit 2 ;;
  esac
done
for v in rounds batch_size threads batches; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "side_by_side.sh: --$v=${!v}: not a positive integer" >&2; exit 2; }
done
((batches >= 5)) || { echo "side_by_side.sh: --batches=$batches: at least 5 (the first four warm up)" >&2; exit 2; }
[[ "$bf16" =~ ^(auto|always|never)$ ]] || { echo "side_by_side.sh: --bf16=$bf16: auto, always or never" >&2; exit 2; }

if [[ ! -x "$c2" ]]; then
  ./bazelw build //experiments:c2 >&2 || { echo "side_by_side.sh: cannot build c2" >&2; exit 1; }
fi
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import torch, torchvision' 2>/dev/null; then
  echo "side_by_side.sh: making $venv ($torch_pin, $vision_pin: ~5 GB, once)" >&2
  /usr/bin/python3 -m venv "$venv" &&
    "$venv/bin/pip" install -q "$torch_pin" "$vision_pin" numpy pillow >&2 ||
    { echo "side_by_side.sh: could not make $venv (network? set TRAINLAB_TORCH_VENV to one with torch)" >&2; exit 1; }
fi
torch_version=$("$venv/bin/python" -c 'import torch; print(torch.__version__)')

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
native_bf16=0
grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo && native_bf16=1
keep_bf16() { [[ "$bf16" == always ]] || { [[ "$bf16" == auto ]] && ((native_bf16)); }; }

# The allocator both sides use: what c2's --malloc_tuning sets in-process (BUILD_NOTES.md).
tunables="glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

declare -a names=() kinds=() args=()
IFS=, read -ra pm <<<"$python_modes"
for m in "${pm[@]}"; do
  a=""
  [[ "$m" == *channels_last* ]] && a+=" --channels_last"
  [[ "$m" == *bf16* ]] && a+=" --amp_bf16"
  [[ "$m" == compile* ]] && a+=" --compile default"
  case "$m" in eager | channels_last | bf16_channels_last | compile | compile_channels_last | compile_bf16_channels_last) ;;
    *) echo "side_by_side.sh: unknown Python mode $m" >&2; exit 2 ;;
  esac
  if [[ "$m" == *bf16* ]] && ! keep_bf16; then
    echo "skipped: PyTorch $m: this CPU has no native bf16 (AVX512-BF16 or AMX); --bf16=always runs it"
    continue
  fi
  names+=("PyTorch $torch_version $m"); kinds+=(python); args+=("$a")
done
IFS=, read -ra st <<<"$strategies"
for s in "${st[@]}"; do
  if [[ "$s" == *bf16* ]] && ! keep_bf16; then
    echo "skipped: trainlab $s: this CPU has no native bf16 (AVX512-BF16 or AMX); --bf16=always runs it"
    continue
  fi
  names+=("trainlab $s"); kinds+=(c2); args+=("$s")
done

# median of the per-batch times of batches 5.. (stdin: one number per line, in batch order)
median_from_5() {
  python3 -c 'import statistics, sys
v = [float(x) for x in sys.stdin.read().split()][4:]
print("%.4f" % statistics.median(v) if v else "nan")'
}

run_one() {  # index round -> prints the figure (seconds) or "failed"
  local i="$1" r="$2" out="$work/run_${1}_$2"
  mkdir -p "$out"
  if [[ "${kinds[$i]}" == python ]]; then
    # shellcheck disable=SC2086
    GLIBC_TUNABLES=$tunables OMP_NUM_THREADS=$threads timeout 1800 "$venv/bin/python" tools/lab/train.py \
      --epochs 1 --batches "$batches" --batch_size "$batch_size" --threads "$threads" \
      --json "$out/py.json" ${args[$i]} >"$out/log" 2>&1 || { echo failed; return; }
    python3 -c 'import json, sys; print("\n".join(str(t) for t in json.load(open(sys.argv[1]))["epochs"][0]["batch_train_s"]))' \
      "$out/py.json" | median_from_5
  else
    OMP_NUM_THREADS=$threads timeout 1800 "$c2" --epochs=1 --max_batches_per_epoch="$batches" \
      --batch_size="$batch_size" --threads="$threads" --num_workers=0 --dataset=fashion_mnist --strategy="${args[$i]}" \
      --progress=off --results_dir="$out" >"$out/log" 2>&1 || { echo failed; return; }
    python3 -c 'import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("\n".join(r["train_s"] for r in sorted(rows, key=lambda r: int(r["batch"]))))' \
      "$out/c2_batches.csv" | median_from_5
  fi
}

echo "CPU: $cpu ($(nproc) cores here; native bf16: $( ((native_bf16)) && echo yes || echo no)); batch $batch_size, $threads threads, median train time per batch of batches 5-$batches, $rounds rounds, interleaved"
declare -A fig
for ((r = 1; r <= rounds; r++)); do
  for i in "${!names[@]}"; do
    fig[$i,$r]=$(run_one "$i" "$r")
    echo "  round $r: ${names[$i]}: ${fig[$i,$r]} s" >&2
    if [[ "${fig[$i,$r]}" == failed ]]; then
      echo "side_by_side.sh: ${names[$i]} failed: $(tail -c 600 "$work/run_${i}_$r/log")" >&2
    fi
  done
done

python3 - "$rounds" "$markdown" "$cpu" "${#names[@]}" "${names[@]}" -- "$(for i in "${!names[@]}"; do
  for ((r = 1; r <= rounds; r++)); do printf '%s ' "${fig[$i,$r]}"; done; echo; done)" <<'EOF'
import statistics, sys
rounds, markdown, cpu, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
names = sys.argv[5:5 + n]
rows = [line.split() for line in sys.argv[6 + n].strip().split("\n")]
def med(vals):
    v = [float(x) for x in vals if x not in ("failed", "nan")]
    return statistics.median(v) if v else None
meds = [med(r) for r in rows]
py = [m for name, m in zip(names, meds) if name.startswith("PyTorch") and m is not None]
best_py = min(py) if py else None
lines = ["| mode | " + " | ".join("round %d (s)" % (r + 1) for r in range(rounds)) + " | median (s) | vs PyTorch's best |",
         "| --- |" + " --- |" * (rounds + 2)]
for name, row, m in zip(names, rows, meds):
    ratio = "%.2fx" % (m / best_py) if (m is not None and best_py) else "-"
    lines.append("| %s | %s | %s | %s |" % (name, " | ".join(row), "%.4f" % m if m is not None else "-", ratio))
tl = [m for name, m in zip(names, meds) if name.startswith("trainlab") and m is not None]
summary = ("trainlab's best / PyTorch's best: %.2fx" % (min(tl) / best_py)) if tl and best_py else "no ratio (a side failed)"
text = "CPU: %s\n\n%s\n\n%s\n" % (cpu, "\n".join(lines), summary)
print(text)
if markdown:
    open(markdown, "w").write(text)
EOF
