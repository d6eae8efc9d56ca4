#!/usr/bin/env bash
# isa_check: runs the whole suite under every CPU kernel set this machine can run, so that one
# machine stands in for the other kinds CI meets (an AVX2-only EPYC, an AVX-512 one with BF16,
# an x86-64 CPU without AVX2). LibTorch reads its kernel choice from the environment when it first
# dispatches (core/kernels.h): ATEN_CPU_CAPABILITY for ATen, DNNL_MAX_CPU_ISA (and newer oneDNN's
# ONEDNN_MAX_CPU_ISA) for oneDNN. A set the CPU lacks is skipped, and said so.
#
#   tools/isa_check.sh                      # native, default, avx2, avx512, avx512_bf16
#   tools/isa_check.sh --sets=default,avx2  # some of them
#   tools/isa_check.sh -- //plugins/...     # other targets (after --, passed to bazel test)
#
# Each set is one `./bazelw test` with those variables in every test's environment; Bazel caches
# results per environment, so a second run of the same set with nothing changed is quick. The
# suite must pass under each. Ends with one line per set and `N passed, N failed` (sets).
set -uo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

sets="native,default,avx2,avx512,avx512_bf16"
targets=(//...)
extra=()
while (($#)); do
  case "$1" in
    --sets=*) sets="${1#--sets=}" ;;
    -h | --help) usage; exit 0 ;;
    --) shift; targets=("$@"); break ;;
    --*) extra+=("$1") ;;
    *) echo "isa_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

has() { grep -qw "$1" /proc/cpuinfo; }

# set -> "ATEN capability, oneDNN ISA, what the CPU needs"
declare -A aten=([native]="" [default]=default [avx2]=avx2 [avx512]=avx512 [avx512_bf16]=avx512)
declare -A onednn=([native]="" [default]=SSE41 [avx2]=AVX2 [avx512]=AVX512_CORE [avx512_bf16]=AVX512_CORE_BF16)
declare -A needs=([native]="" [default]="sse4_1" [avx2]="avx2 fma" [avx512]="avx2 fma avx512f avx512bw avx512dq avx512vl"
                  [avx512_bf16]="avx2 fma avx512f avx512bw avx512dq avx512vl avx512_bf16")

summary=()
passed=0 failed=0
IFS=',' read -r -a wanted <<<"$sets"
for s in "${wanted[@]}"; do
  if [[ -z "${onednn[$s]+x}" ]]; then
    echo "isa_check: unknown set '$s' (native, default, avx2, avx512, avx512_bf16)" >&2
    exit 2
  fi
  missing=""
  for f in ${needs[$s]}; do has "$f" || missing+=" $f"; done
  if [[ -n "$missing" ]]; then
    summary+=("$s: skipped (this CPU lacks:$missing)")
    continue
  fi
  env_flags=()
  if [[ -n "${aten[$s]}" ]]; then
    env_flags=(--test_env=ATEN_CPU_CAPABILITY="${aten[$s]}" --test_env=DNNL_MAX_CPU_ISA="${onednn[$s]}"
               --test_env=ONEDNN_MAX_CPU_ISA="${onednn[$s]}")
  fi
  own="the machine's own"
  echo "=== isa_check: $s (ATen ${aten[$s]:-$own}, oneDNN ${onednn[$s]:-$own}) ==="
  log="$(mktemp)"
  ./bazelw test "${env_flags[@]}" "${extra[@]}" "${targets[@]}" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  n_pass=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log" || true)
  n_fail=$(grep -cE '^//[^ ]+ +.*(FAILED|TIMEOUT|NO STATUS|INCOMPLETE|FLAKY)' "$log" || true)
  rm -f "$log"
  if ((rc == 0)); then
    passed=$((passed + 1))
    summary+=("$s: ok ($n_pass test targets passed)")
  else
    failed=$((failed + 1))
    summary+=("$s: FAILED ($n_pass passed, $n_fail failed, bazel exit $rc)")
  fi
done

echo
echo "=== isa_check summary ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')) ==="
printf '%s\n' "${summary[@]}"
echo "${passed} passed, ${failed} failed"
((failed == 0 && passed > 0))
