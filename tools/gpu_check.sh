#!/usr/bin/env bash
# The GPU check: binaries built here with --config=cuda, run on a GPU machine that has a Python
# torch but no Bazel (DEVELOPERS.md: the lent H200, torch 2.11, CUDA 13, no network).
#
#   here:       tools/gpu_check.sh pack [--torch=2.11.0] [--bundle=gpu_bundle]
#   on the GPU: tools/gpu_check.sh run  [--bundle=gpu_bundle] [--out=DIR] [--quick|--smoke]
#                                       [--deadline_s=540] [--cifar_dir=DIR]
#
# pack builds the GPU test, the graph-runner and loader tests, c2, c5, c8, profile, the synthetic-data
# writer and the strategy step benchmark with `--config=cuda` against PyPI's torch of the
# version the GPU machine has (pinned in third_party/libtorch/torch_wheels.bzl), and puts them
# in one folder with the shared libraries they need that such a machine may lack (Abseil,
# gflags, glog, libstdc++ ...), but not LibTorch or CUDA: on the GPU machine the binaries load
# that machine's own torch libraries and nvidia-* packages, found through its python3. The
# folder is small enough to travel (the device tool carries at most 64 MiB).
#
# run checks that python3's torch is the version the bundle was built against, then writes
# everything to one folder (default: $OUT when set, else ./gpu_check_out):
#   env.txt        nvidia-smi, lscpu, torch's version and CUDA, the library path used
#   tests/         gpu_test, graph_step_test, loader_test, core_test, layer_tracer_test (log + xml)
#   c5/ c8/ c2/    each experiment's stdout/stderr and its results JSON/CSV
#   profile/       the per-layer profile on the GPU (eager, channels_last, amp_bf16,
#                  cudnn_autotune): roofs through cuBLAS/cuDNN and device memory, step times,
#                  every layer's forward and backward timed by CUDA events (checked: every
#                  strategy's layers have times on the "cuda events" timeline)
#   time_to_accuracy/  both recipes (fast first) to 94% test top-1: on the real CIFAR-10 with
#                  --cifar_dir=DIR (the field's bar: 20 epochs at most), else on the synthetic
#                  CIFAR-format set (5 epochs; its accuracy says nothing of CIFAR-10's, the times
#                  per epoch and to target and the plumbing do)
#   nvtx/          c2 --nvtx recorded through tests/nvtx's injection library and checked; c2 under
#                  `nsys profile` with --nvtx=layers (c2.nsys-rep, and nsys stats' NVTX summary),
#                  when nsys is on the machine (SUMMARY.txt says when it is not)
#   dist/          NCCL: dist_check allreduce and train on one rank (cuda:0); c2 on two ranks
#                  under torchrun where the machine has two GPUs
#   bench/         strategy_step_benchmark (console and JSON)
#   SUMMARY.txt    one line per step: ok / FAILED (exit status), with its wall time
# A step that fails or hangs (each has a timeout) is recorded and the rest still run; the exit
# status is non-zero when any step failed.
#
# The device tool's command (from the repository root, with the bundle carried):
#   bash tools/gpu_check.sh run --bundle=gpu_bundle --out="$OUT"
set -uo pipefail
cd "$(dirname "$0")/.."
say() { printf 'gpu_check: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

mode="${1:-}"
shift || true
torch_version=2.11.0
bundle=gpu_bundle
out="${OUT:-gpu_check_out}"
quick=0
deadline_s=540  # the device tool allows 600 s per command: leave room to fetch the output
cifar_dir=""    # the real CIFAR-10 binary folder, when the GPU machine has one
for a in "$@"; do
  case "$a" in
    --torch=*) torch_version="${a#*=}" ;;
    --bundle=*) bundle="${a#*=}" ;;
    --out=*) out="${a#*=}" ;;
    --quick) quick=1 ;;
    --smoke) quick=2 ;;
    --deadline_s=*) deadline_s="${a#*=}" ;;  # plumbing only, a few batches: checks this script on a CPU machine
    --cifar_dir=*) cifar_dir="${a#*=}" ;;
    *) die "unknown argument: $a (tools/gpu_check.sh --help)" ;;
  esac
done

# (strategies_test trains on the CPU only: CI covers it; the device's minutes go to the GPU.)
tests=(tests/gpu_test plugins/compile/graph_step_test plugins/data/loader_test core/core_test
       core/profiling/layer_tracer_test)
programs=(experiments/c2 experiments/c5 experiments/c8 experiments/profile experiments/time_to_accuracy
          plugins/data/make_synthetic_cifar10 benchmarks/strategy_step_benchmark tools/dist_check
          tests/nvtx/libnvtx_recorder.so tests/nvtx/check_nvtx)

pack() {
  local bazel=(./bazelw)
  local targets=() t
  for t in "${tests[@]}" "${programs[@]}"; do targets+=("//${t%/*}:${t##*/}"); done
  say "building ${#targets[@]} targets with --config=cuda against torch $torch_version"
  TRAINLAB_TORCH_VERSION="$torch_version" "${bazel[@]}" build --config=cuda "${targets[@]}" ||
    die "the --config=cuda build failed"
  local bin info
  bin=$(TRAINLAB_TORCH_VERSION="$torch_version" "${bazel[@]}" info --config=cuda bazel-bin 2>/dev/null)
  info="$("${bazel[@]}" info output_base 2>/dev/null)/external/libtorch_cuda/TORCH_INFO"
  [[ -f "$info" ]] || die "no $info: the CUDA LibTorch repository was not fetched"
  grep -x "version=$torch_version" "$info" >/dev/null ||
    die "built against $(grep '^version=' "$info"), not torch $torch_version"
  local torch_lib
  torch_lib=$(sed -n 's/^lib_dir=//p' "$info")

  rm -rf "$bundle"
  mkdir -p "$bundle/bin" "$bundle/lib"
  for t in "${tests[@]}" "${programs[@]}"; do
    cp "$bin/$t" "$bundle/bin/" && chmod u+w "$bundle/bin/${t##*/}" &&
      strip --strip-unneeded "$bundle/bin/${t##*/}" || die "cannot copy $bin/$t"
  done
  # Libraries resolved outside LibTorch, CUDA and glibc's core: the GPU machine may lack them.
  # (Test binaries also load our own libraries from Bazel's _solib folder: those come too.)
  local lib path
  while read -r lib path; do
    case "$path" in
      "$torch_lib"/* | */nvidia/* | /usr/local/cuda* | "") continue ;;
    esac
    case "$lib" in
      libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*) continue ;;
      libcuda.so.* | libcudart.so.* | libnvidia*) continue ;;
    esac
    [[ "$path" == not ]] && die "$lib is not found for a binary here: build it first"
    case "$lib" in
      # Debian 12's C++ runtime needs glibc 2.36: kept apart, used only where the GPU machine's
      # own libstdc++ is too old for our binaries (see run).
      libstdc++.so.* | libgcc_s.so.*) mkdir -p "$bundle/lib-cxx" && cp -L "$path" "$bundle/lib-cxx/$lib" ;;
      *) cp -L "$path" "$bundle/lib/$lib" ;;
    esac || die "cannot copy $path"
  done < <(for t in "${tests[@]}" "${programs[@]}"; do
             ldd "$bin/$t" | awk '$2 == "=>" {print $1, $3}'
           done | sort -u)
  local unresolved
  unresolved=$(for t in "$bundle"/bin/*; do
                 LD_LIBRARY_PATH="$bundle/lib:$bundle/lib-cxx:$torch_lib" ldd "$t" |
                   awk '/not found/ {print $1}'
               done | sort -u | tr '\n' ' ')
  [[ -z "$unresolved" ]] || die "the bundle's binaries cannot find: $unresolved"
  printf '%s\n' "$torch_version" >"$bundle/TORCH_VERSION"
  sed -n "s/^cuda[^=]*= '\(.*\)'/\1/p" "$(dirname "$torch_lib")/version.py" >"$bundle/TORCH_CUDA"
  [[ -s "$bundle/TORCH_CUDA" ]] || die "cannot tell the CUDA version of $(dirname "$torch_lib")"
  # The newest libstdc++ symbol version the binaries and bundled libraries need.
  for t in "$bundle"/bin/* "$bundle"/lib/*; do objdump -T "$t" | grep -o 'GLIBCXX_[0-9.]*'; done |
    sort -uV | tail -n 1 >"$bundle/NEEDS_GLIBCXX"
  {
    echo "built: $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
    echo "against: $(grep '^source=' "$info")"
  } >"$bundle/BUILT"
  local size
  size=$(du -sm "$bundle" | cut -f1)
  say "bundle $bundle: $(ls "$bundle/bin" | wc -l) binaries, $(ls "$bundle/lib" | wc -l) libraries, ${size} MiB"
  ((size <= 60)) || die "$bundle is ${size} MiB: over the 64 MiB the device tool carries"
  say "on the GPU machine: bash tools/gpu_check.sh run --bundle=$bundle --out=\"\$OUT\""
}

# One step: name, timeout in seconds, log file, then the command. Never stops the script; the
# timeout is cut to what is left of the whole run's deadline, and a step with under 10 s left
# is skipped.
failures=0
run_start=$(date +%s)
step() {
  local name="$1" limit="$2" log="$3"
  shift 3
  local t0 rc left
  t0=$(date +%s)
  left=$((run_start + deadline_s - t0))
  if ((left < 10)); then
    failures=$((failures + 1))
    printf '%-34s SKIPPED (out of time: --deadline_s=%d)\n' "$name" "$deadline_s" | tee -a "$out/SUMMARY.txt"
    return
  fi
  ((limit > left)) && limit=$left
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  local took=$(($(date +%s) - t0))
  if ((rc == 0)); then
    printf '%-34s ok      %4ds\n' "$name" "$took" | tee -a "$out/SUMMARY.txt"
  else
    failures=$((failures + 1))
    printf '%-34s FAILED  %4ds  (exit %d%s; %s)\n' "$name" "$took" "$rc" \
      "$( ((rc == 124 || rc == 137)) && echo ', timed out')" "$log" | tee -a "$out/SUMMARY.txt"
  fi
}

run() {
  [[ -d "$bundle/bin" ]] || die "no bundle at $bundle: run 'tools/gpu_check.sh pack' where Bazel is"
  local torch_info
  torch_info=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__)); print(torch.__version__.split("+")[0]); print(torch.version.cuda or "")') ||
    die "python3 cannot import torch: the binaries need that torch's libraries"
  local torch_dir have cuda
  { read -r torch_dir; read -r have; read -r cuda; } <<<"$torch_info"
  local want
  want=$(cat "$bundle/TORCH_VERSION")
  [[ "$have" == "$want" ]] ||
    die "python3's torch is $have, the bundle was built against $want: tools/gpu_check.sh pack --torch=$have"
  [[ -n "$cuda" ]] || die "python3's torch $have is a CPU build"
  local want_cuda
  want_cuda=$(cat "$bundle/TORCH_CUDA")
  [[ "${cuda%%.*}" == "${want_cuda%%.*}" ]] ||
    die "python3's torch is built for CUDA $cuda, the bundle for CUDA $want_cuda"
  run_start=$(date +%s)
  local site nvidia_dirs
  site=$(dirname "$torch_dir")
  nvidia_dirs=$(find "$site/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | sort | tr '\n' ':')
  local path="$PWD/$bundle/lib:$torch_dir/lib:${nvidia_dirs}${LD_LIBRARY_PATH:-}"
  export LD_LIBRARY_PATH="${path%:}"  # no empty entry (it would mean the current folder)
  # This machine's libstdc++ if it is new enough for our binaries, else the bundle's (which
  # needs glibc 2.36).
  local cxx need system_cxx
  need=$(cat "$bundle/NEEDS_GLIBCXX")
  system_cxx=$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
  if [[ -n "$system_cxx" ]] && grep -qa "$need" "$system_cxx"; then
    cxx="system ($system_cxx has $need)"
  else
    export LD_LIBRARY_PATH="$PWD/$bundle/lib-cxx:$LD_LIBRARY_PATH"
    cxx="the bundle's (this machine's libstdc++ lacks $need)"
  fi

  mkdir -p "$out"/{tests,c2,c5,c8,profile,time_to_accuracy,dist,bench,data,nvtx}
  : >"$out/SUMMARY.txt"
  {
    echo "== bundle"; cat "$bundle/BUILT"
    echo "== torch"; echo "$have (CUDA $cuda) at $torch_dir"
    echo "== C++ runtime"; echo "$cxx"
    echo "== LD_LIBRARY_PATH"; echo "$LD_LIBRARY_PATH"
    echo "== nvidia-smi"; nvidia-smi 2>&1
    echo "== lscpu"; lscpu 2>&1
  } >"$out/env.txt"
  local b missing=0
  for b in "$bundle"/bin/*; do
    if ldd "$b" | grep 'not found' >"$out/ldd_missing.txt"; then
      say "$b cannot start: $(tr '\n' ' ' <"$out/ldd_missing.txt")"
      missing=1
    fi
  done
  ((missing == 0)) || die "libraries missing (see above): nothing run"
  local bin="$bundle/bin"

  for t in "${tests[@]}"; do
    local n=${t##*/}
    step "test $n" 300 "$out/tests/$n.log" "$bin/$n" --gtest_output="xml:$out/tests/$n.xml"
  done

  # Synthetic CIFAR-format data, read by the real CIFAR-10 reader: 200 batches of 128 per epoch
  # (--quick: 50), the lab's settings otherwise.
  local train=25600 epochs=10 c2_epochs=3 bench=(--batch_sizes=128 --benchmark_min_time=2)
  local profile_steps=5
  local common=(--dataset=cifar10 --data_dir="$out/data/cifar" --num_workers=8 --progress=off)
  if ((quick == 1)); then
    train=6400 epochs=3 profile_steps=3
  elif ((quick == 2)); then
    train=320 epochs=1 c2_epochs=1 bench=(--batch_sizes=16 --benchmark_min_time=0.01)
    profile_steps=1
    common+=(--batch_size=16 --max_batches_per_epoch=2 --num_workers=2)
  fi
  step "make_synthetic_cifar10" 120 "$out/data/make.log" \
    "$bin/make_synthetic_cifar10" --out="$out/data/cifar" --train="$train" --test=2560
  # NCCL (issue 23): a one-rank process group with c10d's ProcessGroupNCCL on cuda:0 (CUDA
  # tensors; Gloo keeps the CPU ones): broadcast, average and sum, then 3 SGD steps through DDP's
  # Reducer against one process; with two GPUs or more, c2 on two ranks under torchrun.
  local one_rank=(env WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1)
  step "dist_check allreduce (NCCL, 1 rank)" 120 "$out/dist/allreduce.txt" \
    "${one_rank[@]}" MASTER_PORT=29531 "$bin/dist_check" allreduce 60 --device=cuda --backend=nccl
  step "dist_check train (NCCL, 1 rank)" 120 "$out/dist/train.txt" \
    "${one_rank[@]}" MASTER_PORT=29532 "$bin/dist_check" train 60 --device=cuda --backend=nccl
  local gpus
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  if ((gpus >= 2)) && command -v torchrun >/dev/null; then
    step "c2 on 2 ranks (NCCL, torchrun)" 300 "$out/dist/c2_2ranks.txt" \
      torchrun --no-python --nproc-per-node=2 --master-port=29533 "$bin/c2" "${common[@]}" \
      --epochs=1 --max_batches_per_epoch=20 --dist_backend=nccl --results_dir="$out/dist"
  fi
  step "c2 (GPU, eager)" 300 "$out/c2/console.txt" \
    "$bin/c2" "${common[@]}" --epochs="$c2_epochs" --results_dir="$out/c2"
  # NVTX (issue 42): the phases recorded through NVTX's injection interface and checked (on the
  # GPU every range is still the training thread's), then c2 under Nsight Systems with every
  # layer, its report kept (nvtx/c2.nsys-rep) and its NVTX summary printed.
  step "c2 --nvtx (recorded, checked)" 120 "$out/nvtx/recorded.txt" bash -c '
    NVTX_INJECTION64_PATH="$1/libnvtx_recorder.so" NVTX_RECORD_FILE="$2/phases.tsv" \
      "$1/c2" "${@:3}" --epochs=1 --max_batches_per_epoch=3 --nvtx &&
    "$1/check_nvtx" --mode=phases --batches=3 --epochs=1 "$2/phases.tsv"' _ "$bin" "$out/nvtx" \
    "${common[@]}"
  if command -v nsys >/dev/null; then
    step "c2 under nsys (--nvtx=layers)" 240 "$out/nvtx/nsys.txt" \
      nsys profile --trace=cuda,nvtx,osrt --sample=none --force-overwrite=true \
      --output="$out/nvtx/c2" "$bin/c2" "${common[@]}" --epochs=1 --max_batches_per_epoch=20 \
      --nvtx=layers
    step "nsys stats: NVTX ranges" 120 "$out/nvtx/nvtx_sum.txt" \
      nsys stats --report nvtx_sum --format table "$out/nvtx/c2.nsys-rep"
  else
    printf '%-34s not run: no nsys on this machine (Nsight Systems)\n' "c2 under nsys" |
      tee -a "$out/SUMMARY.txt"
  fi
  step "c5 (GPU against CPU)" 420 "$out/c5/console.txt" \
    "$bin/c5" --max_batches_per_epoch=20 "${common[@]}" --epochs=2 --results_dir="$out/c5"
  step "c8 (every strategy, $epochs epochs)" 480 "$out/c8/console.txt" \
    "$bin/c8" "${common[@]}" --epochs="$epochs" --results_dir="$out/c8"
  step "profile (eager, channels_last, amp_bf16, cudnn_autotune)" 240 "$out/profile/console.txt" \
    "$bin/profile" "${common[@]}" --profile_steps="$profile_steps" \
    --strategies=eager,channels_last,amp_bf16,cudnn_autotune --results_dir="$out/profile"
  step "profile: layers timed by CUDA events" 30 "$out/profile/check.txt" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
assert s["step"], "no strategy ran"
for st in s["step"]:
    assert st["timeline"] == "cuda events", (st["strategy"], st["timeline"])
    rows = [r for r in s["layers"] if r["strategy"] == st["strategy"] and r["pass"] != "optimizer"]
    timed = [r for r in rows if r["seconds"]]
    assert len(timed) >= len(rows) * 0.9, (st["strategy"], len(timed), len(rows))
    print(st["strategy"], "coverage %.3f overhead %+.3f host issue %.3f of the step"
          % (st["coverage"], st["overhead"], st["host_rows_seconds"] / st["seconds"]))
' "$out/profile/profile.json"
  # Time to accuracy (issue 25): the fast recipe (channels_last+amp_bf16+cudnn_autotune, batch
  # 512, one-cycle, label smoothing, flip TTA) first, then the lab's, each to 94% test top-1.
  local tta_data=(--data_dir="$out/data/cifar") tta_epochs=5
  if [[ -n "$cifar_dir" ]]; then
    tta_data=(--data_dir="$cifar_dir") tta_epochs=20
  fi
  ((quick == 1)) && tta_epochs=3
  ((quick == 2)) && tta_epochs=1
  step "time_to_accuracy (fast, lab: 94%)" 300 "$out/time_to_accuracy/console.txt" \
    "$bin/time_to_accuracy" "${common[@]}" "${tta_data[@]}" --recipe=fast,lab \
    --target_accuracy=94 --epochs="$tta_epochs" --results_dir="$out/time_to_accuracy"
  step "strategy_step_benchmark" 420 "$out/bench/console.txt" \
    "$bin/strategy_step_benchmark" "${bench[@]}" \
    --benchmark_out="$out/bench/strategy_step.json" --benchmark_out_format=json

  say "$failures step(s) failed; everything is in $out (SUMMARY.txt first)"
  ((failures == 0))
}

case "$mode" in
  pack) pack ;;
  run) run ;;
  -h | --help | help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "usage: tools/gpu_check.sh pack|run [options] (tools/gpu_check.sh --help)" ;;
esac
