#!/usr/bin/env bash
# --tensorboard_dir as users use it, read back by the real TensorBoard (a pinned PyPI wheel):
# 1. a c2 run: every tag, step and value against c2's results files, the HParams start and end,
#    the Settings paragraph and the section as text;
# 2. a run stopped by SIGINT and resumed: the same run folder, every step once;
# 3. a run SIGKILLed after its events ran past its checkpoint, then resumed: TensorBoard's
#    reader shows every step once (the resumed run's purge event drops the killed run's
#    orphaned steps), with the values of the resumed run's results;
# 4. a fresh run in a folder that holds an older run's events: TensorBoard shows the new run;
# 5. bad input: a --tensorboard_dir that is a file is one error line before training.
set -uo pipefail
C2="$1" TB_VERSION_PY="$2" CHECK="$3"
PY=/usr/bin/python3  # Debian's, with python3-protobuf & co (./bazelw installs them)
export PYTHONPATH="$(cd "$(dirname "$TB_VERSION_PY")/.." && pwd)"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
T=(--dataset=synthetic --synthetic_train=96 --synthetic_test=32 --batch_size=8 --threads=1
   --progress=off)

# --- 1. a run, read back --------------------------------------------------------------------
if "$C2" "${T[@]}" --epochs=2 --max_batches_per_epoch=5 --evaluate --tensorboard_dir="$tmp/tb" \
    --results_dir="$tmp/res" >"$tmp/c2.out" 2>"$tmp/c2.err"; then
  grep -q "^- TensorBoard: event files under $tmp/tb/c2" "$tmp/c2.out" \
    && pass "Settings names the folder" || fail "no TensorBoard line in Settings: $(head -20 "$tmp/c2.out")"
  "$PY" "$CHECK" readback --logdir "$tmp/tb" --experiment c2 --results "$tmp/res" --label sgd \
    && pass "c2's events read back by TensorBoard equal its results files" \
    || fail "c2's events differ from its results (above)"
  ls "$tmp/tb/c2/sgd"/events.out.tfevents.* >/dev/null 2>&1 \
    && pass "the run folder is DIR/c2/sgd" || fail "no event file in $tmp/tb/c2/sgd: $(find "$tmp/tb")"
else
  fail "c2 --tensorboard_dir: $(cat "$tmp/c2.err")"
fi

# --- 2. SIGINT and resume: the run folder continues, every step once ------------------------
start_and_signal() {  # NAME SIGNAL WAIT_FOR CMD...: SIGNAL once stdout shows WAIT_FOR
  local name="$1" sig="$2" want="$3"; shift 3
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  local pid=$! i
  for i in $(seq 1200); do
    grep -q "$want" "$tmp/$name.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill "-$sig" "$pid" 2>/dev/null
  wait "$pid"
}
event_files() { ls "$1"/events.out.tfevents.* 2>/dev/null | wc -l; }
I=(--epochs=3 --max_batches_per_epoch=5 --checkpoint_dir="$tmp/cki" --tensorboard_dir="$tmp/tbi"
   --results_dir="$tmp/resi")
start_and_signal int INT "Epoch 1 Summary" "$C2" "${T[@]}" "${I[@]}"
rc=$?
[[ $rc == 130 ]] || fail "SIGINT: exit $rc, want 130: $(cat "$tmp/int.err")"
if "$C2" "${T[@]}" "${I[@]}" --resume >"$tmp/resi.out" 2>"$tmp/resi.err"; then
  grep -q "^c2: resuming run 'sgd #1' at epoch" "$tmp/resi.err" || fail "SIGINT: no resuming line: $(cat "$tmp/resi.err")"
  (($(event_files "$tmp/tbi/c2/sgd") == 2)) \
    && pass "SIGINT + --resume: the run folder continues (a second event file)" \
    || fail "event files after SIGINT + resume: $(ls "$tmp/tbi/c2/sgd")"
  "$PY" "$CHECK" readback --logdir "$tmp/tbi" --experiment c2 --results "$tmp/resi" --label sgd \
    && pass "SIGINT + --resume: every step once, the values of the resumed run's results" \
    || fail "SIGINT + --resume: the curves differ from the results (above)"
else
  fail "resume after SIGINT: $(cat "$tmp/resi.err")"
fi

# --- 3. SIGKILL with events past the checkpoint: the resumed run purges them -------------------
# Made deterministic: the run's epoch-1 checkpoint is copied aside as soon as it is written, the
# run is SIGKILLed once epoch 2's block is out (its events through step 2x20 are flushed before
# the block is printed), and the epoch-1 checkpoint is put back: the killed run's steps 21-40 lie
# past the checkpoint, as they do when a machine dies between a flush and the next checkpoint.
K=(--epochs=3 --max_batches_per_epoch=20 --synthetic_train=160 --checkpoint_dir="$tmp/ck"
   --tensorboard_dir="$tmp/tbk")
"$C2" "${T[@]}" "${K[@]}" >"$tmp/kill.out" 2>"$tmp/kill.err" &
pid=$!
copied=0
for _ in $(seq 1200); do  # up to 60 s
  kill -0 "$pid" 2>/dev/null || break
  if ((copied == 0)) && [[ -f "$tmp/ck/c2.ckpt" ]]; then
    cp "$tmp/ck/c2.ckpt" "$tmp/epoch1.ckpt" && copied=1
  fi
  grep -q "Epoch 2 Summary" "$tmp/kill.out" && { kill -KILL "$pid"; break; }
  sleep 0.05
done
wait "$pid" 2>/dev/null
on_disk=$("$PY" "$CHECK" steps --logdir "$tmp/tbk" --run c2/sgd)
if ((copied == 0)); then
  fail "no epoch-1 checkpoint to copy: $(cat "$tmp/kill.err")"
elif cp "$tmp/epoch1.ckpt" "$tmp/ck/c2.ckpt" &&
    "$C2" "${T[@]}" "${K[@]}" --resume --results_dir="$tmp/resk" >"$tmp/resk.out" 2>"$tmp/resk.err"; then
  grep -q "^c2: resuming run 'sgd #1' at epoch 2, batch 0" "$tmp/resk.err" \
    || fail "not resumed at epoch 2: $(cat "$tmp/resk.err")"
  ((on_disk >= 40)) && pass "the killed run had written steps up to $on_disk; the resumed run starts again at 21" \
    || fail "the killed run's events reach step $on_disk only: the purge went untested"
  "$PY" "$CHECK" readback --logdir "$tmp/tbk" --experiment c2 --results "$tmp/resk" --label sgd \
    && pass "after SIGKILL and resume, every step once (steps 21-$on_disk purged), the resumed values" \
    || fail "SIGKILL + resume: the curves differ from the results (above)"
else
  fail "resume after SIGKILL: $(cat "$tmp/resk.err")"
fi

# --- 4. a fresh run in a folder with an older run's events: they are purged (step 1) ----------
if "$C2" "${T[@]}" --epochs=1 --max_batches_per_epoch=3 --tensorboard_dir="$tmp/tb" \
    --results_dir="$tmp/res2" >"$tmp/again.out" 2>"$tmp/again.err"; then
  "$PY" "$CHECK" readback --logdir "$tmp/tb" --experiment c2 --results "$tmp/res2" --label sgd \
    && pass "a second run in the same folder: TensorBoard shows it alone" \
    || fail "a second run in the same folder: its curves mix with the first's (above)"
else
  fail "second c2 run: $(cat "$tmp/again.err")"
fi

# --- 5. bad input ------------------------------------------------------------------------------
touch "$tmp/plain"
"$C2" "${T[@]}" --epochs=1 --max_batches_per_epoch=2 --tensorboard_dir="$tmp/plain" \
  >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
[[ $rc == 1 && $(wc -l <"$tmp/bad.err") == 1 ]] && grep -q -- "--tensorboard_dir=$tmp/plain" "$tmp/bad.err" \
  && pass "a file as --tensorboard_dir: one line, exit 1 ($(cat "$tmp/bad.err"))" \
  || fail "a file as --tensorboard_dir: exit $rc: $(cat "$tmp/bad.err")"
grep -q "Epoch 1 Summary" "$tmp/bad.out" && fail "trained before refusing --tensorboard_dir"

echo "$failures failure(s)"
((failures == 0))
