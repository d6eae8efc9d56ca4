#!/usr/bin/env bash
# Builds and tests every target with --config=cuda on a machine with no GPU: the CUDA-only code
# (graph capture, streams, pinned-memory fences) must compile and link against the CUDA
# LibTorch, and the whole suite must pass against it (its CPU paths, and every "no GPU" path).
#
#   tools/cuda_build_check.sh                                # the pinned default torch wheel
#   TRAINLAB_TORCH_VERSION=2.15.0 tools/cuda_build_check.sh  # another pinned version
#   tools/cuda_build_check.sh --build_only                   # skip the tests
#
# The CUDA LibTorch comes from @libtorch_cuda (third_party/libtorch/torch_wheel.bzl): PyPI's
# wheel pinned by sha256, fetched once by Bazel, with the CUDA runtime libraries this machine
# lacks. Extra arguments go to `bazel build` / `bazel test`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'cuda_build_check: %s\n' "$*" >&2; }

run_tests=1
args=()
for a in "$@"; do
  if [[ "$a" == --build_only ]]; then run_tests=0; else args+=("$a"); fi
done

./bazelw build --config=cuda "${args[@]}" //...
bin_dir=$(./bazelw info --config=cuda bazel-bin 2>/dev/null)
info="$(./bazelw info output_base 2>/dev/null)/external/libtorch_cuda/TORCH_INFO"
lib_dir=$(sed -n 's/^lib_dir=//p' "$info")
# The cuda_graph runner must really be in the binary (not the CPU build's refusal only).
# (grep reads all of nm's output: `grep -q` would exit early and pipefail would see nm's SIGPIPE.)
nm -C "$bin_dir/experiments/c8" | grep 'CudaGraphBackend' >/dev/null || {
  say "c8 was linked without the CUDA graph runner"
  exit 1
}
# So must c10d's NCCL process group (--dist_backend=nccl), in the data-parallel checker.
nm -C "$bin_dir/tools/dist_check" | grep 'c10d::ProcessGroupNCCL::ProcessGroupNCCL' >/dev/null || {
  say "dist_check was linked without c10d's ProcessGroupNCCL"
  exit 1
}
ldd "$bin_dir/experiments/c8" | grep -F "$lib_dir/libtorch_cuda.so" >/dev/null || {
  say "c8 does not load libtorch_cuda.so from $lib_dir"
  exit 1
}
missing=$(ldd "$lib_dir/libtorch_cuda.so" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
say "every target built with --config=cuda against $(tr '\n' ' ' <"$info")"
if ((run_tests)); then
  [[ -z "$missing" ]] || {
    say "tests not run: libtorch_cuda.so cannot find ${missing}(set LD_LIBRARY_PATH)"
    exit 1
  }
  ./bazelw test --config=cuda "${args[@]}" //...
  say "OK: built and tested with --config=cuda"
fi
