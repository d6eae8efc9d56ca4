#!/usr/bin/env bash
# An elastic job (--nnodes=1:2) that loses a node and goes on with the other alone: the run is
# not resumed on the smaller world size; the restarted worker refuses with one line naming both
# sizes and the job fails, with its checkpoint intact for a restart on two nodes.
set -uo pipefail
C2="$1" Q1Q4="$2"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
lib="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}/tests/nodes_lib.sh"
[[ -f "$lib" ]] || lib="$(dirname "$0")/nodes_lib.sh"
# shellcheck source=tests/nodes_lib.sh
source "$lib"

nodes_begin
# 1 to 2 nodes; the rendezvous closes 5 s after the first node joins (both start together).
start_node a "$tmp/ck_a" job-elastic --nnodes=1:2 --rdzv_conf=is_host=0,last_call_timeout=5 --max_restarts=1
start_node b "$tmp/ck_b" job-elastic --nnodes=1:2 --rdzv_conf=is_host=0,last_call_timeout=5 --max_restarts=1
if wait_for_epoch_2 a b && wait_into_epoch_2; then
  survivor=$rank0_node lost=$other_node
  kill_session "${node_sid[$lost]}"
  { wait "${node_pid[$lost]}"; } 2>/dev/null
  wait "${node_pid[$survivor]}"; rc=$?
  want="c2.ckpt: written by 2 ranks, and this job has 1 process: a run resumes only on the world size that wrote it"
  if [[ $rc != 0 ]] && grep -qF -- "$want" "$tmp/$survivor.err" && [[ -s "$tmp/ck_$survivor/c2.ckpt" ]]; then
    pass "a node lost, the job went on with 1: refused in one line: $(grep -h -m1 -oF -- "$want" "$tmp/$survivor.err")"
  else
    fail "world size 2 -> 1: rc $rc: $(tail -c 1200 "$tmp/$survivor.err")"
  fi
else
  fail "the two nodes did not reach epoch 2: $(tail -c 800 "$tmp/a.err") | $(tail -c 800 "$tmp/b.err")"
fi

echo "dist_world_size_test: $nodes_failures failure(s)"
exit $((nodes_failures > 0))
