#!/usr/bin/env bash
# A run stopped by a signal mid-epoch and resumed ends bit-identical to an uninterrupted one (one
# thread, CPU), prints the same blocks, and multi-run experiments resume at the run where they
# stopped. Also: exit codes 130 / 143, the resume command, and a second signal exiting at once.
set -uo pipefail
C2="$1" C6="$2"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
T=(--dataset=synthetic --synthetic_train=64 --synthetic_test=16 --batch_size=8 --threads=1
   --max_batches_per_epoch=4 --epochs=4)

# The lines that must not change: losses, accuracies, and recap rows without their time column
# (the second: "sgd  0.4681s (0.4182-0.5181)  2.9780  12.50").
numbers() { grep -E '^- (Loss|Accuracy)|^(sgd|adam) ' "$1" | sed -E 's/ {2,}[0-9.]+s( \([0-9.-]+\))? +/ T /'; }

# start_and_signal NAME SIGNAL WAIT_FOR CMD...: runs CMD in the background, sends SIGNAL once
# stdout shows WAIT_FOR (and a little more time), returns the exit code.
start_and_signal() {
  local name="$1" sig="$2" want="$3"; shift 3
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  local pid=$! i
  for i in $(seq 600); do
    grep -q "$want" "$tmp/$name.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  sleep 0.3
  kill "-$sig" "$pid" 2>/dev/null
  wait "$pid"
}

# --- c2: SIGINT mid-run, --resume: the same numbers and the same final state -------------------
"$C2" "${T[@]}" --checkpoint_dir="$tmp/whole" >"$tmp/whole.out" 2>"$tmp/whole.err" || fail "uninterrupted c2: $(cat "$tmp/whole.err")"
start_and_signal stop INT "Epoch 1 Summary" "$C2" "${T[@]}" --checkpoint_dir="$tmp/ck" --num_workers=3
rc=$?
[[ $rc == 130 ]] && pass "SIGINT: exit 130" || fail "SIGINT: exit $rc, want 130: $(cat "$tmp/stop.err")"
grep -qE "^c2: stopped by SIGINT: checkpoint written to $tmp/ck/c2.ckpt \(run 'sgd', .*\); resume with: .* --resume$" "$tmp/stop.err" \
  && pass "says how to resume" || fail "resume message: $(cat "$tmp/stop.err")"
if "$C2" "${T[@]}" --checkpoint_dir="$tmp/ck" --resume --num_workers=0 >"$tmp/resumed.out" 2>"$tmp/resumed.err"; then
  grep -q "^c2: resuming run 'sgd #1' at epoch " "$tmp/resumed.err" || fail "no resuming line: $(cat "$tmp/resumed.err")"
  whole=$(grep '^Final state digest' "$tmp/whole.out")
  [[ -n "$whole" && "$whole" == "$(grep '^Final state digest' "$tmp/resumed.out")" ]] \
    && pass "resumed run bit-identical to the uninterrupted one ($whole)" \
    || fail "state differs: '$whole' vs '$(grep '^Final state digest' "$tmp/resumed.out")'"
  diff <(numbers "$tmp/whole.out") <(numbers "$tmp/resumed.out") >/dev/null \
    && pass "resumed run prints the same blocks (all 4 epochs)" || fail "blocks differ: $(diff <(numbers "$tmp/whole.out") <(numbers "$tmp/resumed.out"))"
else
  fail "resume exited non-zero: $(cat "$tmp/resumed.err")"
fi

# --- SIGTERM with a checkpoint every batch: exit 143, and still identical --------------------------
start_and_signal term TERM "Epoch 2 Summary" "$C2" "${T[@]}" --checkpoint_dir="$tmp/ck2" --checkpoint_every=1
rc=$?
[[ $rc == 143 ]] && pass "SIGTERM: exit 143" || fail "SIGTERM: exit $rc, want 143: $(cat "$tmp/term.err")"
"$C2" "${T[@]}" --checkpoint_dir="$tmp/ck2" --checkpoint_every=1 --resume >"$tmp/resumed2.out" 2>"$tmp/resumed2.err" \
  || fail "resume after SIGTERM: $(cat "$tmp/resumed2.err")"
[[ "$(grep '^Final state digest' "$tmp/whole.out")" == "$(grep '^Final state digest' "$tmp/resumed2.out")" ]] \
  && pass "SIGTERM + --checkpoint_every=1: identical" || fail "SIGTERM resume differs"

# --- In the middle of a schedule: the rate is a function of the global step, so it continues ----
S=(--lr_schedule=cosine --warmup_epochs=0.5 --label_smoothing=0.1)
"$C2" "${T[@]}" "${S[@]}" --checkpoint_dir="$tmp/schedwhole" >"$tmp/sched.out" 2>"$tmp/sched.err" || fail "scheduled c2: $(cat "$tmp/sched.err")"
start_and_signal schedstop TERM "Epoch 2 Summary" "$C2" "${T[@]}" "${S[@]}" --checkpoint_dir="$tmp/ck3" --checkpoint_every=1
"$C2" "${T[@]}" "${S[@]}" --checkpoint_dir="$tmp/ck3" --checkpoint_every=1 --resume >"$tmp/schedres.out" 2>"$tmp/schedres.err" \
  || fail "resume mid-schedule: $(cat "$tmp/schedres.err")"
sched=$(grep '^Final state digest' "$tmp/sched.out")
[[ -n "$sched" && "$sched" == "$(grep '^Final state digest' "$tmp/schedres.out")" ]] \
  && pass "resumed mid-schedule: identical to the uninterrupted scheduled run" || fail "mid-schedule resume differs"
[[ "$sched" != "$(grep '^Final state digest' "$tmp/whole.out")" ]] || fail "the schedule changed nothing"
# A checkpoint made under one schedule is not resumed under another.
"$C2" "${T[@]}" --lr_schedule=onecycle --warmup_epochs=0.5 --label_smoothing=0.1 --checkpoint_dir="$tmp/ck3" --resume \
  >"$tmp/schedbad.out" 2>"$tmp/schedbad.err" && fail "resumed under another schedule"
grep -qF 'made with other settings: lr_schedule was "cosine", now "onecycle"' "$tmp/schedbad.err" && pass "another schedule: refused, named" \
  || fail "another schedule: $(cat "$tmp/schedbad.err")"

# --- c6: stopped during the second optimizer, resumed: the first is restored, the recap is equal -
"$C6" "${T[@]}" --epochs=2 --optimizers=sgd,adam --checkpoint_dir="$tmp/c6whole" >"$tmp/c6whole.out" 2>&1 || fail "c6 uninterrupted"
start_and_signal c6stop INT "##### Optimizer: adam #####" "$C6" "${T[@]}" --epochs=2 --optimizers=sgd,adam --checkpoint_dir="$tmp/c6ck"
rc=$?
[[ $rc == 130 ]] || fail "c6 SIGINT: exit $rc: $(cat "$tmp/c6stop.err")"
if "$C6" "${T[@]}" --epochs=2 --optimizers=sgd,adam --checkpoint_dir="$tmp/c6ck" --resume >"$tmp/c6res.out" 2>"$tmp/c6res.err"; then
  grep -q "^c6: run 'sgd #1' restored from $tmp/c6ck/c6.ckpt$" "$tmp/c6res.err" && pass "c6 restores the finished run" \
    || fail "c6 did not restore sgd: $(cat "$tmp/c6res.err")"
  diff <(numbers "$tmp/c6whole.out") <(numbers "$tmp/c6res.out") >/dev/null \
    && pass "c6 resumed: same blocks and recap" || fail "c6 differs: $(diff <(numbers "$tmp/c6whole.out") <(numbers "$tmp/c6res.out"))"
  [[ "$(grep '^Final state digest (adam' "$tmp/c6whole.out")" == "$(grep '^Final state digest (adam' "$tmp/c6res.out")" ]] \
    && pass "c6: adam's final state identical" || fail "c6: adam's state differs"
else
  fail "c6 resume exited non-zero: $(cat "$tmp/c6res.err")"
fi

# --- dropout, stopped mid-epoch in a folder whose name needs quoting: the printed command resumes
# it, and the masks go on as they would have (LibTorch's generator is in the checkpoint) -------
M=tests/testdata/models/tiny_dropout.pt
D=(--dataset=synthetic --synthetic_train=2048 --batch_size=8 --threads=1 --max_batches_per_epoch=50
   --epochs=40 --model=torchscript --model_path="$M")
"$C2" "${D[@]}" --checkpoint_dir="$tmp/dropwhole" >"$tmp/dropwhole.out" 2>&1 || fail "dropout uninterrupted"
mkdir -p "$tmp/it's a dir"
start_and_signal dropstop INT "Epoch 2 Summary" "$C2" "${D[@]}" --checkpoint_dir="$tmp/it's a dir"
rc=$?
[[ $rc == 130 ]] || fail "dropout SIGINT: exit $rc: $(cat "$tmp/dropstop.err")"
command=$(sed -n 's/^c2: stopped by SIGINT: .*; resume with: //p' "$tmp/dropstop.err")
if [[ -n "$command" ]] && bash -c "$command" >"$tmp/dropres.out" 2>"$tmp/dropres.err"; then
  [[ "$(grep '^Final state digest' "$tmp/dropwhole.out")" == "$(grep '^Final state digest' "$tmp/dropres.out")" ]] \
    && pass "the printed resume command works in a quoted folder, and dropout resumes bit-identically" \
    || fail "dropout resumed '$(grep '^Final state digest' "$tmp/dropres.out")' vs '$(grep '^Final state digest' "$tmp/dropwhole.out")'"
else
  fail "the printed resume command failed: '$command': $(cat "$tmp/dropres.err" 2>/dev/null)"
fi

# --- Under an elastic launcher: the job's own checkpoint is resumed without --resume ------------
# (TORCHELASTIC_RUN_ID, torchrun's rendezvous id, set by hand: what a worker an agent restarted
# sees, whatever that agent's restart count.) Another job's checkpoint, or torchrun's default id
# "none", still needs --resume.
start_and_signal job INT "Epoch 1 Summary" env TORCHELASTIC_RUN_ID=job-a "$C2" "${T[@]}" --checkpoint_dir="$tmp/ckjob"
env TORCHELASTIC_RUN_ID=job-b "$C2" "${T[@]}" --checkpoint_dir="$tmp/ckjob" >"$tmp/jobb.out" 2>"$tmp/jobb.err" \
  && fail "another job resumed job-a's checkpoint"
grep -qF "c2.ckpt: a checkpoint is already there (of job job-a; this is job job-b); pass --resume" "$tmp/jobb.err" \
  && pass "another job's checkpoint: refused, both jobs named" || fail "another job: $(cat "$tmp/jobb.err")"
env TORCHELASTIC_RUN_ID=none "$C2" "${T[@]}" --checkpoint_dir="$tmp/ckjob" >"$tmp/jobnone.out" 2>"$tmp/jobnone.err" \
  && fail "torchrun's default id 'none' resumed a checkpoint"
if env TORCHELASTIC_RUN_ID=job-a "$C2" "${T[@]}" --checkpoint_dir="$tmp/ckjob" >"$tmp/joba.out" 2>"$tmp/joba.err"; then
  grep -q "^c2: resuming run 'sgd #1' at epoch " "$tmp/joba.err" || fail "job-a: no resuming line: $(cat "$tmp/joba.err")"
  [[ "$(grep '^Final state digest' "$tmp/whole.out")" == "$(grep '^Final state digest' "$tmp/joba.out")" ]] \
    && pass "the same job resumes its own checkpoint without --resume, bit-identical" \
    || fail "job-a resumed to another state"
else
  fail "the same job, without --resume: $(cat "$tmp/joba.err")"
fi

# --- a second signal exits at once; the same signal twice within a second is one request -------
# (One batch of 64 per epoch, about 3 s on one thread of a fast AVX-512 core, longer elsewhere:
# every signal lands while the second epoch's batch runs. The first two are 0.1 s apart, as a
# Ctrl-C that reaches torchrun and its workers arrives twice.)
"$C2" "${T[@]}" --synthetic_train=64 --batch_size=64 --max_batches_per_epoch=1 --epochs=50 \
  >"$tmp/twice.out" 2>"$tmp/twice.err" &
pid=$!
for i in $(seq 600); do grep -q "Epoch 1 Summary" "$tmp/twice.out" 2>/dev/null && break; sleep 0.05; done
kill -INT "$pid"; sleep 0.1; kill -INT "$pid"
sleep 0.5
kill -0 "$pid" 2>/dev/null && pass "the same SIGINT twice within a second: still finishing the batch" \
  || fail "a duplicate SIGINT 0.1 s after the first ended the process: $(cat "$tmp/twice.err")"
sleep 0.7; kill -INT "$pid"
wait "$pid"; rc=$?
[[ $rc == 130 ]] && grep -q "second signal: exiting now" "$tmp/twice.err" && pass "second SIGINT 1.3 s later exits at once" \
  || fail "second signal: exit $rc: $(cat "$tmp/twice.err")"

echo "resume_test: $failures failure(s)"
exit $((failures > 0))
