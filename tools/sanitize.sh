#!/usr/bin/env bash
# Runs the test suite under each sanitizer, each in its own output base (a sanitizer build is a
# full rebuild; separate bases keep the default build's cache warm), and prints one line each.
#
#   tools/sanitize.sh                 # asan, ubsan and tsan
#   tools/sanitize.sh asan            # just one
# asan and ubsan run every test; tsan runs the threaded parts (the loader and its benchmark, the
# op tracer's backward on another thread, the distributed tests: c10d's threads, the checkpoint's
# ranks as threads, two torchrun nodes losing a worker and a node; the other checkpoint and signal
# tests are single-threaded apart from the loader).
set -uo pipefail
cd "$(dirname "$0")/.."
configs=("$@")
# Every package, named: with a second output base, `//...` would also wander into the
# workspace's bazel-* links (Bazel skips only links into its own output base).
mapfile -t all < <(git ls-files '*/BUILD.bazel' | cut -d/ -f1 | sort -u | sed 's|.*|//&/...|')
((${#configs[@]})) || configs=(asan ubsan tsan)
status=0
for c in "${configs[@]}"; do
  case "$c" in
    asan | ubsan) targets=("${all[@]}") ;;
    tsan) targets=(//plugins/data:all //benchmarks:loader_benchmark_smoke_test //core/profiling:layer_tracer_test
                   //plugins/distributed:all //experiments/checkpoint:checkpointer_test
                   //tests:dist_nodes_test //tests:dist_node_loss_test) ;;
    *) echo "sanitize.sh: unknown config $c (asan, ubsan or tsan)" >&2; exit 2 ;;
  esac
  extra=()
  # LibTorch is not instrumented: tools/tsan.supp says what that hides, and why.
  [[ "$c" == tsan ]] && extra=(--test_env=TSAN_OPTIONS="suppressions=$PWD/tools/tsan.supp")
  log="$(mktemp)"
  start=$(date +%s)
  # A sanitized debug build runs c2 several times slower: longer test timeouts (the multi-node
  # tests train ResNet-18 under torchrun).
  ./bazelw --output_base="${HOME}/.cache/trainlab/bazel-$c" test --config="$c" --symlink_prefix=/ \
    --test_timeout=300,900,3600,3600 "${extra[@]}" "${targets[@]}" >"$log" 2>&1
  rc=$?
  passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
  failed=$(grep -cE '^//[^ ]+ +.*(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)' "$log")
  reports=$(grep -rlE 'ERROR: (AddressSanitizer|ThreadSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer' \
    "${HOME}/.cache/trainlab/bazel-$c"/execroot/trainlab/bazel-out/*/testlogs 2>/dev/null | wc -l)
  echo "sanitize.sh: $c: $passed passed, $failed failed, $reports test logs with a sanitizer report, $(( $(date +%s) - start )) s"
  if ((rc != 0)); then
    grep -E '^//.*(FAILED|TIMEOUT)|ERROR:' "$log" | head -20
    status=1
  fi
  rm -f "$log"
done
exit $status
