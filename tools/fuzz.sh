#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan in their own output base,
# and runs each for a number of executions (or seconds), starting from its kept corpus. Inputs
# that crash are written to tests/fuzz/corpus/<name>/crash-* : fix the bug, keep the file (the
# corpus tests replay it in every `bazel test //...`).
#
#   tools/fuzz.sh                      # every target (cifar10 idx gz results checkpoint), 10^6 runs each
#   tools/fuzz.sh --runs=100000 cifar10 idx
#   tools/fuzz.sh --seconds=600 checkpoint
set -euo pipefail
cd "$(dirname "$0")/.."
runs=1000000 seconds=0 targets=()
for a in "$@"; do
  case "$a" in
    --runs=*) runs="${a#--runs=}" ;;
    --seconds=*) seconds="${a#--seconds=}" ;;
    -*) echo "fuzz.sh: unknown flag $a" >&2; exit 2 ;;
    *) targets+=("$a") ;;
  esac
done
((${#targets[@]})) || targets=(cifar10 idx gz results checkpoint)
for pkg in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || {
    echo "fuzz.sh: installing $pkg" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
  }
done
base="${HOME}/.cache/trainlab/bazel-fuzz"
labels=()
for t in "${targets[@]}"; do [[ $t == checkpoint ]] || labels+=("//tests/fuzz:${t}_fuzzer"); done
if ((${#labels[@]})); then
  TRAINLAB_NO_INSTALL=1 ./bazelw --output_base="$base" build --config=fuzz --symlink_prefix=/ "${labels[@]}"
  bin="$(TRAINLAB_NO_INSTALL=1 ./bazelw --output_base="$base" info --config=fuzz bazel-bin 2>/dev/null)"
fi
for t in "${targets[@]}"; do
  if [[ $t == checkpoint ]]; then
    # No libFuzzer build of LibTorch code with clang here (tests/fuzz/BUILD.bazel): mutations of
    # the corpus, in a GCC ASan build, --runs of them per corpus file.
    asan="${HOME}/.cache/trainlab/bazel-asan"
    ./bazelw --output_base="$asan" build --config=asan --symlink_prefix=/ //tests/fuzz:checkpoint_corpus_test
    abin="$(./bazelw --output_base="$asan" info --config=asan bazel-bin 2>/dev/null)"
    echo "=== checkpoint: $runs mutants of each corpus file (ASan, not coverage-guided)"
    ASAN_OPTIONS=detect_leaks=0 "$abin/tests/fuzz/checkpoint_corpus_test" tests/fuzz/corpus/checkpoint --mutations="$runs" \
      || { echo "fuzz.sh: checkpoint crashed" >&2; exit 1; }
    continue
  fi
  corpus="tests/fuzz/corpus/$t"
  work="$(mktemp -d)"  # new inputs found this run; the kept corpus stays small
  limit=(-runs="$runs")
  ((seconds > 0)) && limit=(-max_total_time="$seconds")
  echo "=== $t: ${limit[*]}"
  if ! "$bin/tests/fuzz/${t}_fuzzer" "${limit[@]}" -artifact_prefix="$corpus/" -print_final_stats=1 \
       "$work" "$corpus" 2>"$work.log"; then
    tail -40 "$work.log"
    echo "fuzz.sh: $t crashed; the input is in $corpus/ (crash-*)" >&2
    exit 1
  fi
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE' "$work.log" || tail -3 "$work.log"
  rm -rf "$work" "$work.log"
done
