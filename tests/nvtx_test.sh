#!/usr/bin/env bash
# --nvtx end to end without a GPU or Nsight: NVTX_INJECTION64_PATH names tests/nvtx's recorder,
# which NVTX loads at the first range and which writes every push and pop; check_nvtx reads the
# record. c2 without the flag records nothing; --nvtx records the phases of every batch;
# --nvtx=layers every layer too, named as the per-layer profile names them; the profile's own
# --nvtx=layers; a bad value is one line.
set -uo pipefail
C2="$1" PROFILE="$2" RECORDER="$3" CHECK="$4"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
TINY=(--dataset=synthetic --synthetic_train=64 --synthetic_test=16 --batch_size=16
      --max_batches_per_epoch=2 --threads=1 --num_workers=0 --progress=off --seed=3)

# record NAME BINARY ARGS...: runs BINARY with the recorder attached; the record is $tmp/NAME.tsv.
record() {
  local name="$1" bin="$2"; shift 2
  rm -f "$tmp/$name.tsv"
  NVTX_INJECTION64_PATH="$RECORDER" NVTX_RECORD_FILE="$tmp/$name.tsv" \
    timeout -k 5 300 "$bin" "$@" >"$tmp/$name.out" 2>&1 || {
    fail "$name: exit $?: $(tail -3 "$tmp/$name.out")"
    return 1
  }
}

# 1. No flag: NVTX is never called, so the recorder is never even loaded.
record none "$C2" "${TINY[@]}" --epochs=1
if [[ -s "$tmp/none.tsv" ]]; then fail "without --nvtx, ranges were recorded: $(head -3 "$tmp/none.tsv")"; else echo "ok: no flag, no range"; fi

# 2. --nvtx (phases): two epochs of two batches, nothing inside the phases.
if record phases "$C2" "${TINY[@]}" --epochs=2 --nvtx; then
  "$CHECK" --mode=phases --batches=2 --epochs=2 "$tmp/phases.tsv" || fail "--nvtx: the record above"
  grep -q -- "- NVTX ranges (--nvtx=phases)" "$tmp/phases.out" || fail "--nvtx: no Settings line"
fi

# 3. --nvtx=layers with an evaluation, against the profile's own layer names.
if record layers "$C2" "${TINY[@]}" --epochs=1 --evaluate --nvtx=layers &&
   timeout -k 5 300 "$PROFILE" "${TINY[@]}" --strategies=eager --profile_steps=1 \
     --results_dir="$tmp/profile" >"$tmp/profile.out" 2>&1; then
  "$CHECK" --mode=layers --batches=2 --epochs=1 --evaluate --profile_json="$tmp/profile/profile.json" \
    "$tmp/layers.tsv" || fail "--nvtx=layers: the record above"
else
  [[ -f "$tmp/profile.out" ]] && fail "profile: $(tail -3 "$tmp/profile.out")"
fi

# 4. The profile's own steps, with its layers.
if record profile_layers "$PROFILE" "${TINY[@]}" --strategies=eager --profile_steps=1 --nvtx=layers; then
  pushes=$(awk -F'\t' '$2 == "push" && $4 == "layer1.0.conv1"' "$tmp/profile_layers.tsv" | wc -l)
  steps=$(awk -F'\t' '$2 == "push" && $4 == "step"' "$tmp/profile_layers.tsv" | wc -l)
  # Warm-up, timed and traced steps: layer ranges in the traced step only.
  if [[ $pushes == 1 && $steps -ge 3 ]]; then echo "ok: profile --nvtx=layers: $steps steps, layer1.0.conv1 once"
  else fail "profile --nvtx=layers: layer1.0.conv1 $pushes times over $steps steps, want once over 3 or more"; fi
fi

# 5. A bad value: one line, exit 1.
timeout -k 5 60 "$C2" "${TINY[@]}" --nvtx=everything >/dev/null 2>"$tmp/err"
rc=$?
if [[ $rc == 1 && $(wc -l <"$tmp/err") == 1 ]] && grep -qF -- "--nvtx=everything: must be off, phases or layers" "$tmp/err"; then
  echo "ok: $(cat "$tmp/err")"
else
  fail "--nvtx=everything: exit $rc: $(cat "$tmp/err")"
fi

((failures == 0)) && echo "PASS" || echo "$failures failure(s)"
((failures == 0))
