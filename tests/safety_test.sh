#!/usr/bin/env bash
# Nothing lost, nothing hung, nothing run that should not be (issue 22), through the real
# binaries: no shell ever sees data, special files never block, a signal before training ends the
# process at once, odd bytes in the command line are kept, a checkpoint is held by one run at a
# time, a larger --epochs extends a run exactly, a finished checkpoint still gives its weights,
# and dropout resumes with the masks it would have drawn. One-line refusals are in
# bad_input_test.sh.
set -uo pipefail
C2="$1"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
TINY=(--dataset=synthetic --synthetic_train=32 --synthetic_test=16 --batch_size=8
      --max_batches_per_epoch=2 --threads=1 --num_workers=0)
digest() { grep '^Final state digest' "$1"; }

# --- no shell sees data: the workspace path reaches git as one argument ----------------------------
BUILD_WORKSPACE_DIRECTORY="/x'; touch $tmp/pwned; '" "$C2" "${TINY[@]}" --epochs=1 --results_dir="$tmp/inj" \
  >"$tmp/inj.out" 2>"$tmp/inj.err" || fail "c2 with an odd BUILD_WORKSPACE_DIRECTORY: $(cat "$tmp/inj.err")"
[[ -e "$tmp/pwned" ]] && fail "a command in BUILD_WORKSPACE_DIRECTORY ran" || pass "BUILD_WORKSPACE_DIRECTORY is never run"

# --- a FIFO where the checkpoint is: one error line at once, no waiting for a writer -------------
mkdir -p "$tmp/fifo"; mkfifo "$tmp/fifo/c2.ckpt"
start=$SECONDS
timeout -k 5 20 "$C2" "${TINY[@]}" --epochs=1 --checkpoint_dir="$tmp/fifo" --resume >"$tmp/fifo.out" 2>"$tmp/fifo.err"
rc=$?
if ((rc == 1)) && grep -q "c2.ckpt: a FIFO, not a regular file" "$tmp/fifo.err"; then
  pass "a FIFO checkpoint is refused in $((SECONDS - start)) s"
else
  fail "FIFO checkpoint: exit $rc (124: hung): $(cat "$tmp/fifo.err")"
fi

# --- a signal before training has started ends the process at once -------------------------------
# (400,000 synthetic images take seconds to make: the signal lands while they are made.)
"$C2" --dataset=synthetic --synthetic_train=400000 --batch_size=8 --max_batches_per_epoch=1 --epochs=1 \
  --threads=1 >"$tmp/early.out" 2>"$tmp/early.err" &
pid=$!
# Wait until the handlers are installed (SIGTERM's bit, 1 << 14, in SigCgt): under a sanitizer,
# loading LibTorch alone can take longer than a fixed sleep, and a signal before main is not
# what this case is about.
for _ in $(seq 300); do
  cgt=$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  [[ -n "$cgt" ]] && (((16#$cgt >> 14) & 1)) && break
  sleep 0.1
done
sleep 0.2
sent=$(date +%s%N)
kill -TERM "$pid"
wait "$pid"
rc=$?
took_ms=$((($(date +%s%N) - sent) / 1000000))
if ((rc == 143)) && grep -q "stopped before training started" "$tmp/early.err" && ! grep -q '^Epoch' "$tmp/early.out"; then
  pass "SIGTERM before training: exit 143 after ${took_ms} ms, nothing trained"
else
  fail "SIGTERM before training: exit $rc after ${took_ms} ms: $(cat "$tmp/early.err")"
fi

# --- bytes that are not UTF-8 in the command line: kept, escaped, and the results written ---------
if "$C2" "${TINY[@]}" --epochs=1 --results_dir="$tmp/utf8" --data_dir=$'/tmp/\xff' >"$tmp/utf8.out" 2>"$tmp/utf8.err"; then
  grep -qF -- '--data_dir=/tmp/\\xFF' "$tmp/utf8/c2.json" && pass "invalid UTF-8 in argv is recorded as \\xFF" \
    || fail "c2.json lacks the escaped argument: $(grep -m1 data_dir "$tmp/utf8/c2.json")"
else
  fail "c2 with invalid UTF-8 in argv: $(cat "$tmp/utf8.err")"
fi

# --- one run at a time on a checkpoint, and the other is told who holds it ---------------------------
mkdir -p "$tmp/locked"
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "w"); fcntl.flock(f, fcntl.LOCK_EX); f.write("c2 --epochs=50 (pid 4242)"); f.flush()
print("locked", flush=True); time.sleep(60)' "$tmp/locked/c2.ckpt.lock" >"$tmp/holder.out" &
holder=$!
for _ in $(seq 100); do grep -q locked "$tmp/holder.out" 2>/dev/null && break; sleep 0.05; done
"$C2" "${TINY[@]}" --epochs=1 --checkpoint_dir="$tmp/locked" >"$tmp/lock.out" 2>"$tmp/lock.err"
rc=$?
kill "$holder"; wait "$holder" 2>/dev/null
((rc == 1)) && grep -qF "c2.ckpt: in use by another run (c2 --epochs=50 (pid 4242))" "$tmp/lock.err" \
  && pass "a held checkpoint is refused, naming the holder" || fail "held checkpoint: exit $rc: $(cat "$tmp/lock.err")"

# --- a larger --epochs extends a finished run, bit-identical to the longer run ----------------------
"$C2" "${TINY[@]}" --epochs=2 --checkpoint_dir="$tmp/two" >"$tmp/two.out" 2>&1 || fail "c2 --epochs=2"
"$C2" "${TINY[@]}" --epochs=1 --checkpoint_dir="$tmp/ext" >"$tmp/ext1.out" 2>&1 || fail "c2 --epochs=1"
if "$C2" "${TINY[@]}" --epochs=2 --checkpoint_dir="$tmp/ext" --resume >"$tmp/ext2.out" 2>"$tmp/ext2.err"; then
  grep -q "^c2: extending run 'sgd #1' from 1 to 2 epochs (--epochs)" "$tmp/ext2.err" || fail "no extension line: $(cat "$tmp/ext2.err")"
  [[ $(grep -c '^Epoch [0-9]* Summary:$' "$tmp/ext2.out") == 2 ]] || fail "the extended run does not print both epochs"
  [[ -n "$(digest "$tmp/two.out")" && "$(digest "$tmp/two.out")" == "$(digest "$tmp/ext2.out")" ]] \
    && pass "--epochs=1 then --epochs=2 --resume: the bits of --epochs=2 ($(digest "$tmp/two.out"))" \
    || fail "extended '$(digest "$tmp/ext2.out")' vs whole '$(digest "$tmp/two.out")'"
else
  fail "extending with --resume: $(cat "$tmp/ext2.err")"
fi

# --- --resume --save_model on a finished checkpoint writes the weights -------------------------------
"$C2" "${TINY[@]}" --epochs=1 --checkpoint_dir="$tmp/fin" >/dev/null 2>&1 || fail "c2 to finish"
if "$C2" "${TINY[@]}" --epochs=1 --checkpoint_dir="$tmp/fin" --resume --save_model="$tmp/w.pt" \
    >"$tmp/fin.out" 2>"$tmp/fin.err"; then
  grep -q "^Saved the trained weights to $tmp/w.pt" "$tmp/fin.out" && [[ "$(head -c 2 "$tmp/w.pt")" == PK ]] \
    && pass "a finished run's weights are saved from its checkpoint" || fail "no weights: $(cat "$tmp/fin.out" "$tmp/fin.err")"
else
  fail "--resume --save_model on a finished run: $(cat "$tmp/fin.err")"
fi

# --- dropout resumes with the masks it would have drawn (LibTorch's generator in the checkpoint) ------
M=tests/testdata/models/tiny_dropout.pt
D=(--dataset=synthetic --synthetic_train=64 --batch_size=8 --max_batches_per_epoch=4 --epochs=2 --threads=1
   --num_workers=0 --model=torchscript --model_path="$M")
"$C2" "${D[@]}" --checkpoint_dir="$tmp/drop_whole" >"$tmp/drop_whole.out" 2>&1 || fail "dropout model: $(tail -2 "$tmp/drop_whole.out")"
"$C2" "${D[@]}" --epochs=1 --checkpoint_dir="$tmp/drop" >/dev/null 2>&1 || fail "dropout model, 1 epoch"
"$C2" "${D[@]}" --checkpoint_dir="$tmp/drop" --resume >"$tmp/drop_res.out" 2>&1 || fail "dropout model, resumed: $(tail -2 "$tmp/drop_res.out")"
[[ -n "$(digest "$tmp/drop_whole.out")" && "$(digest "$tmp/drop_whole.out")" == "$(digest "$tmp/drop_res.out")" ]] \
  && pass "a dropout model resumed between epochs ends with the uninterrupted run's bits" \
  || fail "dropout: resumed '$(digest "$tmp/drop_res.out")' vs whole '$(digest "$tmp/drop_whole.out")'"

echo "safety_test: $failures failure(s)"
exit $((failures > 0))
