#!/usr/bin/env bash
# The report side of experiments/ links no training code: checks the transitive dependencies of
# the report binary and of the results and checkpoint fuzzers (a genquery, tests/BUILD.bazel)
# against the targets that train. Fails naming each target found.
set -uo pipefail
deps="$1"
[[ -s "$deps" ]] || { echo "FAIL: no dependency list in $deps"; exit 1; }

# What trains, sets up a run or picks a plugin. (The harness's error_boundary and user_path are
# leaves every binary shares: the report's main() uses them too.)
forbidden='^//plugins/|^//experiments/training[:/]|^//experiments/checkpoint:checkpointer$'
forbidden+='|^//experiments/harness:(session|options|experiment|experiment_main|run_config|progress|stop)$'
forbidden+='|^//experiments/(lab|profiling|recipes):[a-z0-9_]+_experiment$'
forbidden+='|^//core:(trainer|step|strategy|optimizer|model)$|^//core/profiling:'

found=$(grep -E "$forbidden" "$deps")
if [[ -n "$found" ]]; then
  echo "FAIL: the report side depends on training code:"
  sed 's/^/  /' <<<"$found"
  echo "(bazel query 'somepath(//experiments:report, TARGET)' shows the path)"
  exit 1
fi
n=$(grep -c '^//' "$deps")
# A list that does not even hold the report's own libraries is a broken query, not a pass.
for want in //experiments/reporting:report_lib //experiments/results:results_file \
  //experiments/checkpoint:checkpoint_format //experiments/lab:c2_report; do
  grep -qx "$want" "$deps" || { echo "FAIL: $want missing from the dependency list"; exit 1; }
done
echo "PASS: $n targets on the report side, none of them training code"
