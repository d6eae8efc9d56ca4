#!/usr/bin/env bash
# Two nodes (two torchrun agents on this machine, c10d rendezvous on 127.0.0.1, each node its own
# --checkpoint_dir), no --resume anywhere:
#  - the worker of the node that does not hold rank 0 SIGKILLed in epoch 2: both agents restart
#    their workers (the other one with its restart count still 0), the job resumes from the newest
#    copy and ends with the uninterrupted run's final state; both folders hold the same checkpoint;
#  - a checkpoint of another job (another --rdzv_id) in a node's folder: refused, naming both jobs;
#  - both nodes on one folder (shared storage): one writer, the same final state.
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

# --- The worker of the node without rank 0 killed in epoch 2 -----------------------------------
start_node a "$tmp/ck_a" job-kill --max_restarts=1
start_node b "$tmp/ck_b" job-kill --max_restarts=1
if wait_for_epoch_2 a b && wait_into_epoch_2; then
  victim=$(worker_rank "$other_node")
  kill_ms=$(now_ms)
  [[ -n "$victim" ]] && kill -KILL "${victim%% *}"
  resume_ms=""
  [[ -n "$victim" ]] && wait_for 600 'resuming run' "$tmp"/[ab].out "$tmp"/[ab].err && resume_ms=$(now_ms)
  wait "${node_pid[a]}"; rc_a=$?
  wait "${node_pid[b]}"; rc_b=$?
  end_ms=$(now_ms)
  got=$(digest "$tmp"/[ab].out)
  if [[ -n "$victim" && $rc_a == 0 && $rc_b == 0 && -n "$whole" && "$got" == "$whole" ]] &&
     [[ $(cat "$tmp"/[ab].err | grep -c "resuming run 'sgd #1'") == 2 ]]; then
    pass "rank ${victim#* }'s worker (node $other_node) killed in epoch 2, no --resume: both nodes resumed, the job ends with the uninterrupted state"
    echo "   $(grep -h -m1 -oE "resuming run .*" "$tmp/$rank0_node.err")"
    echo "   kill -> resuming: ${resume_ms:+$((resume_ms - kill_ms)) ms}; kill -> job end: $((end_ms - kill_ms)) ms"
  else
    fail "worker killed (victim '$victim'): rc $rc_a/$rc_b, '$got' vs '$whole': $(tail -c 800 "$tmp/a.err") | $(tail -c 800 "$tmp/b.err")"
  fi
  if [[ -s "$tmp/ck_a/c2.ckpt" ]] && cmp -s "$tmp/ck_a/c2.ckpt" "$tmp/ck_b/c2.ckpt" &&
     [[ $(ls "$tmp/ck_a" | grep -c 'final.ckpt$') == 1 ]] && [[ $(ls "$tmp/ck_b" | grep -c 'final.ckpt$') == 1 ]]; then
    pass "each node's folder holds the same checkpoint and the run's final state"
  else
    fail "the nodes' folders differ: $(ls -l "$tmp/ck_a" "$tmp/ck_b" | tr '\n' ' ')"
  fi
else
  fail "the two nodes did not reach epoch 2 (or its second checkpoint): $(tail -c 800 "$tmp/a.err") | $(tail -c 800 "$tmp/b.err")"
fi

# --- Another job's checkpoint in a node's folder: refused without --resume -------------------------
mkdir -p "$tmp/ck_c" "$tmp/ck_d"
cp "$tmp/ck_b/c2.ckpt" "$tmp/ck_d/"  # written by job-kill
start_node c "$tmp/ck_c" job-other --max_restarts=0
start_node d "$tmp/ck_d" job-other --max_restarts=0
wait "${node_pid[c]}"; rc_c=$?
wait "${node_pid[d]}"; rc_d=$?
want="c2.ckpt: a checkpoint is already there (of job job-kill; this is job job-other); pass --resume"
if [[ $rc_c != 0 && $rc_d != 0 ]] && grep -qF -- "$want" "$tmp/c.err" && grep -qF -- "$want" "$tmp/d.err" &&
   ! grep -q '^Epoch 1' "$tmp/c.out" "$tmp/d.out"; then
  pass "another job's checkpoint: both nodes refuse: $(grep -h -m1 -F -- "$want" "$tmp/c.err")"
else
  fail "another job's checkpoint: rc $rc_c/$rc_d: $(tail -c 600 "$tmp/c.err") | $(tail -c 600 "$tmp/d.err")"
fi

# --- Both nodes on one folder (shared storage): one writer -----------------------------------------
start_node e "$tmp/ck_shared" job-shared --max_restarts=0
start_node f "$tmp/ck_shared" job-shared --max_restarts=0
wait "${node_pid[e]}"; rc_e=$?
wait "${node_pid[f]}"; rc_f=$?
got=$(digest "$tmp"/[ef].out)
if [[ $rc_e == 0 && $rc_f == 0 && "$got" == "$whole" && -s "$tmp/ck_shared/c2.ckpt" ]] &&
   grep -q "^- Checkpoints: .*rank 0 writes" "$tmp"/[ef].out; then
  pass "two nodes on one folder: one writer ($(grep -ho '^- Checkpoints: .*' "$tmp"/[ef].out)), the uninterrupted state"
else
  fail "shared folder: rc $rc_e/$rc_f, '$got' vs '$whole': $(tail -c 600 "$tmp/e.err") | $(tail -c 600 "$tmp/f.err")"
fi

echo "dist_nodes_test: $nodes_failures failure(s)"
exit $((nodes_failures > 0))
