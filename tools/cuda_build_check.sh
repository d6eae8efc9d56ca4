#!/usr/bin/env bash
# Builds every target with --config=cuda against a CUDA-enabled LibTorch, on a machine with no
# GPU: the CUDA-only code (graph capture, streams, pinned memory) must compile and link.
#
#   tools/cuda_build_check.sh            # fetches PyPI's torch wheel (CUDA LibTorch) once
#   LIBTORCH_HOME=/opt/libtorch tools/cuda_build_check.sh   # or use one you have
#
# The wheel's torch/ folder has include/ and lib/ laid out like the official LibTorch zip; only
# those are unpacked (no Python install). The CUDA toolkit comes from /usr/local/cuda (CUDA_HOME).
# A separate Bazel output base keeps the CPU build's cache intact.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${TRAINLAB_CACHE:-$HOME/.cache/trainlab}"

if [[ -z "${LIBTORCH_HOME:-}" ]]; then
  wheel_dir="$cache/torch-wheel"
  export LIBTORCH_HOME="$wheel_dir/torch"
  if [[ ! -f "$LIBTORCH_HOME/lib/libtorch_cuda.so" ]]; then
    mkdir -p "$wheel_dir"
    echo "cuda_build_check: downloading PyPI's torch wheel (CUDA LibTorch, ~540 MB) into $wheel_dir"
    python3 -m pip download --quiet --no-deps --dest "$wheel_dir" "${TORCH_WHEEL_SPEC:-torch}"
    wheel=$(ls -t "$wheel_dir"/torch-*.whl | head -n 1)
    python3 - "$wheel" "$wheel_dir" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(("torch/include/", "torch/lib/")):
            z.extract(name, dest)
PY
  fi
fi
[[ -f "$LIBTORCH_HOME/lib/libtorch_cuda.so" ]] || {
  echo "cuda_build_check: $LIBTORCH_HOME/lib has no libtorch_cuda.so: not a CUDA LibTorch" >&2
  exit 1
}
echo "cuda_build_check: LIBTORCH_HOME=$LIBTORCH_HOME"
./bazelw --output_base="$cache/bazel-cuda" build --config=cuda "$@" //...
# The cuda_graph runner must really be in the binary (not the CPU build's refusal only).
nm -C bazel-bin/experiments/c8 | grep -q 'CudaGraphRunner' || {
  echo "cuda_build_check: c8 was linked without the CUDA graph runner" >&2
  exit 1
}
echo "cuda_build_check: OK: every target built with --config=cuda against $LIBTORCH_HOME"
