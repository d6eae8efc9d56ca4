#!/usr/bin/env bash
# Runs a Google Benchmark program once with a tiny minimum time and checks that it reported at
# least one benchmark in its JSON output. Usage: run_once.sh BINARY [extra benchmark flags...]
set -euo pipefail
bin="$1"; shift
out="${TEST_TMPDIR:-/tmp}/benchmark.json"
"$bin" --benchmark_min_time=0.01 --benchmark_format=console \
  --benchmark_out="$out" --benchmark_out_format=json "$@"
# A run that registered nothing prints no error but leaves an empty list.
if ! grep -q '"real_time"' "$out"; then
  echo "run_once.sh: $bin reported no benchmark results in $out" >&2
  exit 1
fi
