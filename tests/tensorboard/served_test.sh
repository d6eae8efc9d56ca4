#!/usr/bin/env bash
# TensorBoard serving a c6 run with two optimizers: its HTTP API (what the dashboards ask) gives
# both runs' scalars and an HParams table with one row per optimizer, equal to c6's results.
# The server runs on 127.0.0.1 at a port it picks itself, and is stopped within the test.
set -uo pipefail
C6="$1" TB_VERSION_PY="$2" CHECK="$3"
PY=/usr/bin/python3
export PYTHONPATH="$(cd "$(dirname "$TB_VERSION_PY")/.." && pwd)"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

"$C6" --dataset=synthetic --synthetic_train=64 --synthetic_test=16 --batch_size=8 --threads=1 \
  --epochs=2 --max_batches_per_epoch=3 --optimizers=sgd,adam --progress=off \
  --tensorboard_dir="$tmp/tb" --results_dir="$tmp/res" >"$tmp/c6.out" 2>"$tmp/c6.err" \
  || { echo "FAIL: c6: $(cat "$tmp/c6.err")"; exit 1; }

timeout 90 "$PY" -m tensorboard.main --logdir "$tmp/tb" --host 127.0.0.1 --port 0 \
  --load_fast=false --reload_interval=1 >"$tmp/tb.out" 2>"$tmp/tb.err" &
server=$!
url=""
for _ in $(seq 300); do  # up to 30 s to start
  url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$tmp/tb.err" "$tmp/tb.out" 2>/dev/null | head -1 | sed 's/^[^:]*://')
  [[ -n "$url" ]] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$url" ]]; then
  fail "tensorboard did not start: $(cat "$tmp/tb.err")"
else
  pass "tensorboard serves $tmp/tb at $url"
  "$PY" "$CHECK" served --url "$url" --experiment c6 --results "$tmp/res" --labels sgd,adam \
    && pass "scalars and HParams of both optimizers served, equal to c6's results" \
    || fail "served figures differ (above)"
fi
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
kill -0 "$server" 2>/dev/null && fail "tensorboard still running"

echo "$failures failure(s)"
((failures == 0))
