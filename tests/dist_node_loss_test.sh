#!/usr/bin/env bash
# Two nodes (two torchrun agents on this machine, each its own --checkpoint_dir, the rendezvous
# store a process of the test's own): the whole node holding rank 0 (its agent and its worker)
# killed in epoch 2, and a replacement node started with an empty --checkpoint_dir. No --resume:
# the job resumes from the surviving node's copy, which is sent to the replacement, and ends with
# the uninterrupted run's final state.
set -uo pipefail
C2="$1" Q1Q4="$2"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
lib="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}/tests/nodes_lib.sh"
[[ -f "$lib" ]] || lib="$(dirname "$0")/nodes_lib.sh"
# shellcheck source=tests/nodes_lib.sh
source "$lib"

nodes_begin
whole=$(reference_digest)
[[ -n "$whole" ]] && pass "two ranks side by side, uninterrupted: $whole" ||
  fail "the uninterrupted run: $(tail -c 600 "$tmp/ref.r0.err")"

start_node a "$tmp/ck_a" job-node --max_restarts=1
start_node b "$tmp/ck_b" job-node --max_restarts=1
if wait_for_epoch_2 a b && wait_into_epoch_2; then
  survivor=$other_node
  kill_ms=$(now_ms)
  kill_session "${node_sid[$rank0_node]}"  # the machine is gone: agent, worker, disk
  { wait "${node_pid[$rank0_node]}"; } 2>/dev/null
  rm -rf "$tmp/ck_$rank0_node"
  # The scheduler's replacement: a new agent with an empty disk.
  mkdir -p "$tmp/ck_new"
  start_node new "$tmp/ck_new" job-node --max_restarts=1
  resume_ms=""
  wait_for 600 'resuming run' "$tmp/new.err" "$tmp/$survivor.err" && resume_ms=$(now_ms)
  wait "${node_pid[new]}"; rc_new=$?
  wait "${node_pid[$survivor]}"; rc_s=$?
  end_ms=$(now_ms)
  got=$(digest "$tmp/new.out" "$tmp/$survivor.out")
  if [[ $rc_new == 0 && $rc_s == 0 && -n "$whole" && "$got" == "$whole" ]] &&
     grep -q "resuming run 'sgd #1'" "$tmp/new.err" && grep -q "resuming run 'sgd #1'" "$tmp/$survivor.err"; then
    pass "node $rank0_node (rank 0's: agent, worker and folder) lost in epoch 2, a replacement with an empty folder: the job ends with the uninterrupted state"
    echo "   $(grep -ho '^- Checkpoints: .*resuming from.*' "$tmp/new.out" "$tmp/$survivor.out" | head -1)"
    echo "   kill -> resuming: ${resume_ms:+$((resume_ms - kill_ms)) ms}; kill -> job end: $((end_ms - kill_ms)) ms"
  else
    fail "node lost: rc $rc_new/$rc_s, '$got' vs '$whole': $(tail -c 800 "$tmp/new.err") | $(tail -c 800 "$tmp/$survivor.err")"
  fi
  if [[ -s "$tmp/ck_new/c2.ckpt" ]] && cmp -s "$tmp/ck_new/c2.ckpt" "$tmp/ck_$survivor/c2.ckpt" &&
     [[ $(ls "$tmp/ck_new" | grep -c 'final.ckpt$') == 1 ]]; then
    pass "the replacement's folder holds the survivor's checkpoint and the run's final state"
  else
    fail "the replacement's folder: $(ls -l "$tmp/ck_new" "$tmp/ck_$survivor" | tr '\n' ' ')"
  fi
else
  fail "the two nodes did not reach epoch 2: $(tail -c 800 "$tmp/a.err") | $(tail -c 800 "$tmp/b.err")"
fi

echo "dist_node_loss_test: $nodes_failures failure(s)"
exit $((nodes_failures > 0))
