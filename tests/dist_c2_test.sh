#!/usr/bin/env bash
# c2 data-parallel over two real processes on loopback: rank 0 alone prints, with loss and top-1
# over both ranks; rank 1 prints nothing; rank 0 alone writes TensorBoard's event files (both
# given the same --tensorboard_dir, as nodes on shared storage are); a rank killed mid-run makes the other exit 1 with one
# clear error line within --dist_timeout.
set -uo pipefail
C2="$1"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
TINY=(--dataset=synthetic --synthetic_train=256 --synthetic_test=32 --batch_size=8 --threads=1
      --progress=off --model=resnet18_no_bn --dist_timeout=20)

P=$((20000 + RANDOM % 30000))
WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P timeout 120 "$C2" "${TINY[@]}" --epochs=2 --max_batches_per_epoch=3 --tensorboard_dir="$tmp/tb" >"$tmp/r1.out" 2>"$tmp/r1.err" &
pid1=$!
WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P timeout 120 "$C2" "${TINY[@]}" --epochs=2 --max_batches_per_epoch=3 --tensorboard_dir="$tmp/tb" >"$tmp/r0.out" 2>"$tmp/r0.err"
rc0=$?
wait $pid1; rc1=$?
if [[ $rc0 == 0 && $rc1 == 0 ]]; then
  [[ $(grep -c '^Epoch [0-9]* Summary:$' "$tmp/r0.out") == 2 ]] || fail "rank 0 printed $(grep -c Summary "$tmp/r0.out") epoch blocks"
  grep -q '^- Data-parallel over 2 ranks (c10d, Gloo): rank 0 of 2' "$tmp/r0.out" || fail "rank 0 does not say it is data-parallel"
  grep -q '16 images per step in all' "$tmp/r0.out" || fail "per-rank batch size not explained"
  [[ ! -s "$tmp/r1.out" ]] || fail "rank 1 printed: $(head -3 "$tmp/r1.out")"
  files=$(find "$tmp/tb" -name 'events.out.tfevents.*' | wc -l)
  [[ $files == 2 && $(ls "$tmp/tb/c2/sgd" | wc -l) == 1 && $(ls "$tmp/tb/c2" | grep -c events) == 1 ]] \
    && echo "ok: one writer of TensorBoard's events (rank 0): $(find "$tmp/tb" -name 'events.*' | sed "s|$tmp/tb/||" | tr '\n' ' ')" \
    || fail "TensorBoard event files of two ranks: $(find "$tmp/tb" -type f)"
  echo "ok: two ranks of c2; rank 0: $(grep -m1 '^- Loss' "$tmp/r0.out")"
else
  fail "two ranks: rc $rc0/$rc1: $(cat "$tmp/r0.err" "$tmp/r1.err")"
fi

# Rank 1 killed (SIGKILL) a few seconds in; rank 0 must fail with one line, well within 20 s.
P=$((20000 + RANDOM % 30000))
WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P timeout -s KILL 8 "$C2" "${TINY[@]}" --epochs=100 >/dev/null 2>&1 &
start=$SECONDS
WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$P timeout 120 "$C2" "${TINY[@]}" --epochs=100 >"$tmp/k0.out" 2>"$tmp/k0.err"
rc0=$? elapsed=$((SECONDS - start))
wait
if [[ $rc0 == 1 && $(wc -l <"$tmp/k0.err") == 1 ]] && grep -qE "c2: error: rank 0 of 2: (averaging gradients failed in epoch [0-9]*|agreeing on the batch.s outcome failed) \(a peer rank died" "$tmp/k0.err" && ((elapsed < 60)); then
  echo "ok: rank 1 killed: rank 0 after ${elapsed}s: $(cat "$tmp/k0.err")"
else
  fail "rank 1 killed: rank 0 rc $rc0 after ${elapsed}s: $(head -5 "$tmp/k0.err")"
fi
echo "dist_c2_test: $failures failure(s)"
exit $((failures > 0))
