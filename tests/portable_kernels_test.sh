#!/usr/bin/env bash
# --portable_kernels: the same command gives the same bits whatever kernels the machine (or the
# environment) would pick, because ATen and oneDNN are pinned to their AVX2 kernels before the
# first tensor operation (core/kernels.h).
#
# One machine stands in for the others: ATEN_CPU_CAPABILITY / DNNL_MAX_CPU_ISA in the environment
# make LibTorch choose the kernels another CPU would. With the flag, every such environment must
# give the digest of the run pinned by hand; without it, the SSE4.1 kernels (an x86-64 CPU
# without AVX2) must give other bits, which shows that the comparison can fail at all.
set -uo pipefail

C2="$1"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

TINY=(--dataset=synthetic --synthetic_train=48 --batch_size=8 --max_batches_per_epoch=3
      --epochs=2 --threads=1 --num_workers=0)

# c2run NAME [ENV=VALUE ...] -- [flags ...]: a run with a checkpoint (for its final state digest).
c2run() {
  local name="$1"; shift
  local envs=()
  while [[ "$1" != "--" ]]; do envs+=("$1"); shift; done
  shift
  env ${envs[@]+"${envs[@]}"} "$C2" "${TINY[@]}" --checkpoint_dir="$tmp/$name" --results_dir="$tmp/$name" "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err"
}
digest() { grep '^Final state digest' "$tmp/$1.out"; }
losses() { grep -E '^- (Loss|Accuracy)' "$tmp/$1.out"; }

if ! grep -qw avx2 /proc/cpuinfo || ! grep -qw fma /proc/cpuinfo; then
  # The flag's promise needs AVX2; without it the flag is one clear error.
  if c2run noavx2 -- --portable_kernels; then
    fail "--portable_kernels ran on a CPU without AVX2"
  else
    grep -q '^c2: error: --portable_kernels: this CPU cannot run the avx2 kernels' "$tmp/noavx2.err" \
      && pass "no AVX2: one error line" || fail "no AVX2: $(cat "$tmp/noavx2.err")"
  fi
  exit $((failures > 0))
fi

c2run flag -- --portable_kernels || fail "c2 --portable_kernels: $(cat "$tmp/flag.err")"
# By hand: ATen, oneDNN, and MKL (linked into PyPI's LibTorch 2.x, --config=torch2/cuda; it
# dispatches per CPU too, and the flag pins it; no MKL in Debian's 1.13, where it changes nothing).
c2run byhand ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2 -- ||
  fail "c2 pinned by hand: $(cat "$tmp/byhand.err")"
want="$(digest byhand)"
[[ -n "$want" ]] || fail "no final state digest printed"

[[ "$(digest flag)" == "$want" && "$(losses flag)" == "$(losses byhand)" ]] \
  && pass "--portable_kernels: the losses and digest of a run pinned by hand" \
  || fail "--portable_kernels: '$(digest flag)' vs pinned by hand '$want'"
# oneDNN's choice is read back through its C API where the LibTorch exports it (Debian's 1.13
# links libdnnl.so.2); PyPI's 2.x links oneDNN in with its symbols hidden, so there it is pinned
# through DNNL_MAX_CPU_ISA / ONEDNN_MAX_CPU_ISA alone and reported "unknown" (the digests above
# and below are what show it pinned).
version=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["environment"]["libtorch_version"])' \
  "$tmp/flag/c2.json" 2>/dev/null) || fail "c2.json names no libtorch_version"
onednn=avx2
[[ -z "$version" || "$version" == 1.* ]] || onednn='(avx2|unknown)'
grep -qE "^- CPU kernels: ATen avx2, oneDNN $onednn \(--portable_kernels" "$tmp/flag.out" \
  && pass "Settings name the kernels in use" || fail "Settings: $(grep 'CPU kernels' "$tmp/flag.out")"

# Environments that would choose other kernels (another CPU, emulated): the flag wins. (oneDNN
# reads ONEDNN_MAX_CPU_ISA before DNNL_MAX_CPU_ISA: a limit set by hand must set both.)
sets=("ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41 ONEDNN_MAX_CPU_ISA=SSE41"
      "ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 ONEDNN_MAX_CPU_ISA=AVX2")
if grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then
  sets+=("ATEN_CPU_CAPABILITY=avx512 DNNL_MAX_CPU_ISA=AVX512_CORE ONEDNN_MAX_CPU_ISA=AVX512_CORE"
         "ATEN_CPU_CAPABILITY=avx512 DNNL_MAX_CPU_ISA=AVX512_CORE_BF16 ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16")
else
  echo "skipped: the AVX-512 kernel sets (this CPU has no AVX-512)"
fi
i=0
for set in "${sets[@]}"; do
  i=$((i + 1))
  # shellcheck disable=SC2086  # the set is two words on purpose
  c2run "env$i" $set -- --portable_kernels || fail "$set --portable_kernels: $(cat "$tmp/env$i.err")"
  [[ "$(digest "env$i")" == "$want" ]] && pass "$set, with the flag: the same bits" \
    || fail "$set, with the flag: '$(digest "env$i")' vs '$want'"
done

# Without the flag, SSE4.1 kernels give other bits: the digest does see kernel differences.
c2run sse41 ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41 ONEDNN_MAX_CPU_ISA=SSE41 -- || fail "c2 on SSE4.1 kernels: $(cat "$tmp/sse41.err")"
[[ -n "$(digest sse41)" && "$(digest sse41)" != "$want" ]] \
  && pass "without the flag, other kernels give other bits" \
  || fail "SSE4.1 kernels gave the AVX2 digest: the comparison proves nothing"

# The results record the kernels read back from the libraries, and the flag.
tr -d ' \n' <"$tmp/flag/c2.json" | grep -qE '"kernels":\{"aten":"avx2","blas":"[^"]*","onednn":"'"$onednn"'","portable":true\}' \
  && pass "c2.json records the kernels in use" || fail "c2.json kernels: $(grep -A5 '"kernels"' "$tmp/flag/c2.json")"
tr -d ' \n' <"$tmp/byhand/c2.json" | grep -q '"portable":false' \
  && pass "c2.json says when the flag was not given" || fail "c2.json of the run without the flag"

# A checkpoint made with the flag resumes only with it.
mkdir -p "$tmp/resume"
"$C2" "${TINY[@]}" --epochs=1 --portable_kernels --checkpoint_dir="$tmp/resume" >/dev/null 2>&1 \
  || fail "c2 --portable_kernels with a checkpoint"
if "$C2" "${TINY[@]}" --epochs=1 --checkpoint_dir="$tmp/resume" --resume >"$tmp/res.out" 2>"$tmp/res.err"; then
  fail "a --portable_kernels checkpoint resumed without the flag"
else
  grep -q 'portable_kernels was true, now false' "$tmp/res.err" && pass "resume without the flag is refused, naming it" \
    || fail "resume without the flag: $(cat "$tmp/res.err")"
fi

if ((failures > 0)); then
  echo "$failures failed"
  exit 1
fi
echo "all passed"
