#!/usr/bin/env bash
# Builds and tests every target with --config=cuda against a CUDA-enabled LibTorch, on a machine
# with no GPU: the CUDA-only code (graph capture, streams, pinned memory) must compile and link,
# and the whole suite must pass against that LibTorch (its CPU paths, and every "no GPU" path).
#
#   tools/cuda_build_check.sh              # fetches PyPI's torch wheel (CUDA LibTorch) once
#   LIBTORCH_HOME=/opt/libtorch tools/cuda_build_check.sh   # or use one you have
#   tools/cuda_build_check.sh --build_only # skip the tests
#
# The wheel's torch/ folder has include/ and lib/ laid out like the official LibTorch zip; only
# those are unpacked (no Python install). libtorch_cuda.so finds its CUDA libraries through an
# RPATH of $ORIGIN/../../nvidia/<lib>/lib (pip's site-packages layout); the ones the local CUDA
# toolkit (/usr/local/cuda, CUDA_HOME) lacks are fetched from their own wheels into the same
# layout, so the binaries can start here. Extra arguments go to `bazel build` / `bazel test`.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${TRAINLAB_CACHE:-$HOME/.cache/trainlab}"
say() { printf 'cuda_build_check: %s\n' "$*" >&2; }

run_tests=1
args=()
for a in "$@"; do
  if [[ "$a" == --build_only ]]; then run_tests=0; else args+=("$a"); fi
done

# Unpacks the files of wheel $1 whose paths start with one of the prefixes $3... into $2.
unpack() {
  python3 - "$@" <<'PY'
import sys, zipfile
wheel, dest, prefixes = sys.argv[1], sys.argv[2], tuple(sys.argv[3:])
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith(prefixes)])
PY
}

# Sonames that libtorch_cuda.so needs and the dynamic loader cannot find.
missing_libs() { ldd "$LIBTORCH_HOME/lib/libtorch_cuda.so" | awk '/not found/ {print $1}' | sort -u; }

fetched_wheel=0
if [[ -z "${LIBTORCH_HOME:-}" ]]; then
  fetched_wheel=1
  wheel_dir="$cache/torch-wheel"
  export LIBTORCH_HOME="$wheel_dir/torch"
  if [[ ! -f "$LIBTORCH_HOME/lib/libtorch_cuda.so" ]]; then
    mkdir -p "$wheel_dir"
    say "downloading PyPI's torch wheel (CUDA LibTorch, ~540 MB) into $wheel_dir"
    python3 -m pip download --quiet --no-deps --dest "$wheel_dir" "${TORCH_WHEEL_SPEC:-torch}"
    unpack "$(ls -t "$wheel_dir"/torch-*.whl | head -n 1)" "$wheel_dir" torch/include/ torch/lib/ torch-  # torch-*.dist-info: the pins
  fi
fi
[[ -f "$LIBTORCH_HOME/lib/libtorch_cuda.so" ]] || {
  say "$LIBTORCH_HOME/lib has no libtorch_cuda.so: not a CUDA LibTorch"
  exit 1
}
say "LIBTORCH_HOME=$LIBTORCH_HOME"

# Runtime libraries the local toolkit lacks (typically cuSPARSELt, NVSHMEM, cuFile), from the
# exact versions torch's metadata pins (directly, or through the cuda-toolkit meta-package).
if (( fetched_wheel && run_tests )) && [[ -n "$(missing_libs)" ]]; then
  specs_file=$(mktemp)
  python3 - "$wheel_dir" $(missing_libs) >"$specs_file" <<'PY'
import glob, re, subprocess, sys, zipfile
wheel_dir, sonames = sys.argv[1], sys.argv[2:]
# soname stem -> pip distribution (CUDA 13 names; the -cu13 suffix is matched loosely below)
dists = {"libcusparseLt": "nvidia-cusparselt", "libnvshmem_host": "nvidia-nvshmem",
         "libnccl": "nvidia-nccl", "libcudnn": "nvidia-cudnn", "libcufile": "nvidia-cufile",
         "libcublas": "nvidia-cublas", "libcublasLt": "nvidia-cublas", "libcudart": "nvidia-cuda-runtime",
         "libnvrtc": "nvidia-cuda-nvrtc", "libcusparse": "nvidia-cusparse", "libcufft": "nvidia-cufft",
         "libcurand": "nvidia-curand", "libcusolver": "nvidia-cusolver", "libnvJitLink": "nvidia-nvjitlink",
         "libcupti": "nvidia-cuda-cupti", "libnvToolsExt": "nvidia-nvtx"}
def requirements(metadata_text):
    out = {}
    for line in metadata_text.splitlines():
        m = re.match(r"Requires-Dist: ([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(==\s*[^;\s]+)?", line)
        if m and m.group(3):
            out.setdefault(m.group(1).lower(), m.group(1) + m.group(3).replace(" ", ""))
    return out
reqs = requirements("".join(open(p).read() for p in glob.glob(f"{wheel_dir}/torch-*.dist-info/METADATA")))
toolkit = next((v for k, v in reqs.items() if k == "cuda-toolkit"), None)
if toolkit:  # CUDA 13 wheels pin most libraries through this meta-package
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", wheel_dir, toolkit], check=True)
    for w in glob.glob(f"{wheel_dir}/cuda_toolkit-*.whl"):
        with zipfile.ZipFile(w) as z:
            for n in z.namelist():
                if n.endswith("METADATA"):
                    for k, v in requirements(z.read(n).decode()).items():
                        reqs.setdefault(k, v)
for so in sonames:
    stem = so.split(".so")[0]
    dist = dists.get(stem)
    spec = next((v for k, v in reqs.items() if dist and (k == dist or k.startswith(dist + "-cu"))), None)
    if spec is None:
        sys.exit(f"cuda_build_check: no known wheel provides {so}; install it or set LD_LIBRARY_PATH")
    print(spec)
PY
  mapfile -t specs < <(sort -u "$specs_file")
  rm -f "$specs_file"
  say "fetching runtime libraries the local CUDA toolkit lacks: ${specs[*]}"
  python3 -m pip download --quiet --no-deps --dest "$wheel_dir/runtime" "${specs[@]}"
  for w in "$wheel_dir"/runtime/*.whl; do unpack "$w" "$wheel_dir" nvidia/; done
fi

# A second output base: the workspace's bazel-* links point into the CPU build's output base, and
# Bazel only skips links into its *own* output base, so `//...` would wander into them. Hence the
# explicit package list and --symlink_prefix=/ (no links created by this build).
bazel_cuda=(./bazelw --output_base="$cache/bazel-cuda")
targets=(//:all //core/... //plugins/... //experiments/... //benchmarks/... //tests/...)
"${bazel_cuda[@]}" build --config=cuda --symlink_prefix=/ "${args[@]}" -- "${targets[@]}"
bin_dir=$("${bazel_cuda[@]}" info --config=cuda bazel-bin 2>/dev/null)
# The cuda_graph runner must really be in the binary (not the CPU build's refusal only).
# (grep reads all of nm's output: `grep -q` would exit early and pipefail would see nm's SIGPIPE.)
nm -C "$bin_dir/experiments/c8" | grep 'CudaGraphRunner' >/dev/null || {
  say "c8 was linked without the CUDA graph runner"
  exit 1
}
ldd "$bin_dir/experiments/c8" | grep -F "$LIBTORCH_HOME/lib/libtorch_cuda.so" >/dev/null || {
  say "c8 does not load libtorch_cuda.so from $LIBTORCH_HOME/lib"
  exit 1
}
say "every target built with --config=cuda against $LIBTORCH_HOME"

if (( run_tests )); then
  if [[ -n "$(missing_libs)" ]]; then
    say "tests not run: libtorch_cuda.so cannot find $(missing_libs | tr '\n' ' ')(set LD_LIBRARY_PATH)"
    exit 1
  fi
  "${bazel_cuda[@]}" test --config=cuda --symlink_prefix=/ "${args[@]}" -- "${targets[@]}"
  say "OK: built and tested with --config=cuda against $LIBTORCH_HOME"
fi
