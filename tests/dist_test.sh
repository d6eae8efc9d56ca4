#!/usr/bin/env bash
# Data-parallel plumbing across real processes on loopback (127.0.0.1): two ranks agree on
# broadcast, average and sum; a rank that dies or hangs makes the other exit 1 with one clear
# error within the timeout; a bad environment or an unreachable store is one clear error.
set -uo pipefail
CHECK="$1"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
port() { echo $((20000 + RANDOM % 30000)); }

# two MODE TIMEOUT: ranks 0 and 1 in the background; their exit codes in rc0, rc1.
two() {
  local p; p=$(port)
  WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p timeout 60 "$CHECK" "$1" "$2" >"$tmp/r0.out" 2>"$tmp/r0.err" &
  local pid0=$!
  WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p timeout 60 "$CHECK" "$1" "$2" >"$tmp/r1.out" 2>"$tmp/r1.err" &
  local pid1=$!
  wait $pid0; rc0=$?
  if [[ "$1" == hang ]]; then kill $pid1 2>/dev/null; fi
  wait $pid1; rc1=$?
}

two allreduce 20
if [[ $rc0 == 0 && $rc1 == 0 ]] && grep -q "rank 0 of 2 .*correct" "$tmp/r0.out" && grep -q "rank 1 of 2 .*correct" "$tmp/r1.out"; then
  echo "ok: two ranks: broadcast, average and sum"
else
  fail "allreduce: rc $rc0/$rc1: $(cat "$tmp"/r*.err)"
fi

two train 60
if [[ $rc0 == 0 && $rc1 == 0 ]] && grep -q "parameters identical across ranks" "$tmp/r1.out"; then
  echo "ok: $(cat "$tmp/r0.out")"
  echo "ok: $(cat "$tmp/r1.out")"
else
  fail "train: rc $rc0/$rc1: $(cat "$tmp"/r*.err)"
fi

start=$SECONDS
two die 20
elapsed=$((SECONDS - start))
if [[ $rc0 == 1 && $rc1 == 3 ]] && [[ $(wc -l <"$tmp/r0.err") == 1 ]] && grep -q "rank 0 of 2: .* failed (a peer rank died" "$tmp/r0.err"; then
  echo "ok: a dead peer: $(cat "$tmp/r0.err") (${elapsed}s)"
else
  fail "die: rc $rc0/$rc1: $(cat "$tmp/r0.err")"
fi

start=$SECONDS
two hang 3
elapsed=$((SECONDS - start))
if [[ $rc0 == 1 ]] && ((elapsed < 30)) && grep -q "rank 0 of 2: .* failed" "$tmp/r0.err"; then
  echo "ok: a hung peer, 3 s timeout: $(cat "$tmp/r0.err") (${elapsed}s)"
else
  fail "hang: rc $rc0 after ${elapsed}s: $(cat "$tmp/r0.err")"
fi

# bad WANT ENV...: one error line containing WANT, exit 1.
bad() {
  local want="$1"; shift
  env "$@" timeout 60 "$CHECK" allreduce 3 >"$tmp/b.out" 2>"$tmp/b.err"
  local rc=$?
  if [[ $rc == 1 && $(wc -l <"$tmp/b.err") == 1 ]] && grep -qF -- "$want" "$tmp/b.err"; then
    echo "ok: $(cat "$tmp/b.err")"
  else
    fail "$*: rc $rc: $(cat "$tmp/b.err") (want '$want')"
  fi
}
bad "RANK=5 is out of range for WORLD_SIZE=2 (0 to 1)" WORLD_SIZE=2 RANK=5 MASTER_ADDR=127.0.0.1 MASTER_PORT=29599
bad "WORLD_SIZE=2 needs MASTER_ADDR" WORLD_SIZE=2 RANK=0 MASTER_PORT=29599
# Rank 1 with nobody hosting the store: an error within the timeout, not a hang.
bad "rank 1 of 2: cannot reach the store at 127.0.0.1:" WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$(port)

echo "dist_test: $failures failure(s)"
exit $((failures > 0))
