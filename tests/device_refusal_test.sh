#!/usr/bin/env bash
# A GPU machine whose LibTorch cannot use its GPU refuses --device=auto in one line, shown on a
# machine with no GPU: TRAINLAB_LIBCUDA points the driver probe at tests/fake_cuda_driver's
# stand-in libcuda.so.1 (a 535-series driver, CUDA 12.2, one GPU) and TRAINLAB_NVIDIA_PROC at a
# fake /proc/driver/nvidia. Without a driver, c2 trains on the CPU as it always has.
set -uo pipefail
C2="$1" FAKE="$2"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
TINY=(--dataset=synthetic --synthetic_train=32 --synthetic_test=8 --batch_size=8
      --max_batches_per_epoch=1 --epochs=1 --threads=1 --progress=off)
mkdir -p "$tmp/proc/gpus/0000:00:1e.0"
echo "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023" >"$tmp/proc/version"
export TRAINLAB_NVIDIA_PROC="$tmp/proc"

# refused WANT ARGS...: c2 with the stand-in driver exits 1 with one stderr line holding WANT.
refused() {
  local want="$1"; shift
  TRAINLAB_LIBCUDA="$FAKE" timeout -k 5 120 "$C2" "${TINY[@]}" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [[ $rc != 1 || $(wc -l <"$tmp/err") != 1 ]]; then
    fail "c2 $*: exit $rc, $(wc -l <"$tmp/err") stderr lines, want 1 and 1: $(head -3 "$tmp/err")"
  elif ! grep -qF -- "$want" "$tmp/err"; then
    fail "c2 $*: '$(cat "$tmp/err")' lacks '$want'"
  elif grep -q "Epoch" "$tmp/out"; then
    fail "c2 $*: trained before refusing"
  else
    echo "ok: $(cat "$tmp/err")"
  fi
}
refused "--device=auto: this machine has 1 NVIDIA GPU (driver 535.104.05, runs CUDA up to 12.2), but this LibTorch" --device=auto
refused "--device=cpu to train on the CPU on purpose" --device=auto
refused "TRAINLAB_TORCH_VERSION=python" --device=auto
refused "--device=cuda: this machine has 1 NVIDIA GPU" --device=cuda

# trains WHY ENV... -- ARGS...: c2 trains on the CPU and says nothing on stderr.
trains() {
  local why="$1"; shift
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" timeout -k 5 120 "$C2" "${TINY[@]}" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [[ $rc != 0 ]]; then fail "$why: exit $rc: $(head -3 "$tmp/err")"
  elif [[ -s "$tmp/err" ]]; then fail "$why: said on stderr: $(head -3 "$tmp/err")"
  elif ! grep -q -- "- Device: cpu" "$tmp/out"; then fail "$why: not on the CPU: $(grep Device "$tmp/out")"
  else echo "ok: $why"; fi
}
trains "--device=cpu with the GPU there" "TRAINLAB_LIBCUDA=$FAKE" -- --device=cpu
trains "--disable_cuda with the GPU there" "TRAINLAB_LIBCUDA=$FAKE" -- --disable_cuda
trains "no NVIDIA driver at all" "TRAINLAB_LIBCUDA=/nonexistent/libcuda.so.1" "TRAINLAB_NVIDIA_PROC=/nonexistent" -- --device=auto
trains "a driver with no GPU" "TRAINLAB_LIBCUDA=$FAKE" "FAKE_CUDA_DEVICE_COUNT=0" "TRAINLAB_NVIDIA_PROC=/nonexistent" -- --device=auto

((failures == 0)) && echo "PASS" || echo "$failures failure(s)"
((failures == 0))
