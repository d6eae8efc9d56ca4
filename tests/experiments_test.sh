#!/usr/bin/env bash
# End-to-end runs of every experiment binary on tiny synthetic data, and every bad input the
# binaries promise to refuse with one clear line and a non-zero exit.
set -uo pipefail

# Arguments: NAME=PATH for every experiment of experiments.bzl and the tools (tests/BUILD.bazel).
declare -A BIN
for arg in "$@"; do BIN["${arg%%=*}"]="${arg#*=}"; done
C2="${BIN[c2]}" C3="${BIN[c3]}" C4="${BIN[c4]}" C5="${BIN[c5]}" C6="${BIN[c6]}" C7="${BIN[c7]}"
C8="${BIN[c8]}" Q1Q4="${BIN[q1_q4]}" ALL="${BIN[all]}" MKDATA="${BIN[make_synthetic_cifar10]}"
CHECK_TRACE="${BIN[check_trace]}" CHECK_RESULTS="${BIN[check_results]}"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

TINY=(--dataset=synthetic --synthetic_train=48 --synthetic_test=16 --batch_size=8
      --max_batches_per_epoch=2 --threads=1)

# run NAME CMD...: runs, keeps stdout/stderr in $tmp/NAME.{out,err}, returns the exit code.
run() { local name="$1"; shift; "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"; }

# --- c2: the lab's block, once per epoch ---------------------------------------------------------
if run c2 "$C2" "${TINY[@]}" --epochs=2 --num_workers=2 --evaluate; then
  blocks=$(grep -c '^Epoch [0-9]* Summary:$' "$tmp/c2.out")
  [[ "$blocks" == 2 ]] || fail "c2 printed $blocks epoch blocks, want 2"
  # Each block, line by line, exactly the lab's format.
  if awk '
      /^Epoch [0-9]+ Summary:$/ {i = 1; next}
      i == 1 { if ($0 !~ /^- Loss: [0-9]+\.[0-9][0-9][0-9][0-9]$/) bad = bad "\nloss: " $0; i++; next }
      i == 2 { if ($0 !~ /^- Accuracy \(Top-1\): [0-9]+\.[0-9][0-9]%$/) bad = bad "\nacc: " $0; i++; next }
      i == 3 { if ($0 !~ /^- Total Data Loading Time: [0-9]+\.[0-9][0-9][0-9][0-9]s$/) bad = bad "\nload: " $0; i++; next }
      i == 4 { if ($0 !~ /^- Total Training Time: [0-9]+\.[0-9][0-9][0-9][0-9]s$/) bad = bad "\ntrain: " $0; i++; next }
      i == 5 { if ($0 !~ /^- Average Training Time per Batch: [0-9]+\.[0-9][0-9][0-9][0-9]s$/) bad = bad "\navg: " $0; i++; next }
      i == 6 { if ($0 !~ /^- Total Epoch Time: [0-9]+\.[0-9][0-9][0-9][0-9]s$/) bad = bad "\nepoch: " $0; i++; next }
      i == 7 { if ($0 != "=====") bad = bad "\nend: " $0; i = 0; n++ }
      END { if (bad != "" || n != 2) { print "bad block lines:" bad; exit 1 } }' "$tmp/c2.out"; then
    pass "c2 prints the lab's block for each epoch"
  else
    fail "c2 block format"; cat "$tmp/c2.out"
  fi
  grep -q '^- Test Loss: [0-9.]*, Test Accuracy (Top-1): [0-9.]*% (16 images)$' "$tmp/c2.out" \
    || fail "c2 --evaluate printed no test line"
  grep -q 'synthetic/train (generated, not CIFAR-10)' "$tmp/c2.out" || fail "c2 does not say the data is synthetic"
else
  fail "c2 exited non-zero"; cat "$tmp/c2.err"
fi

# --- results files: the JSON says what the blocks printed, the CSV has a row per batch ----------
if run c2res "$C2" "${TINY[@]}" --epochs=2 --results_dir="$tmp/res"; then
  "$CHECK_RESULTS" "$tmp/res/c2.json" "$tmp/c2res.out" "$tmp/res/c2_batches.csv" && pass "c2 results match its blocks" \
    || fail "c2 results"
  # stderr is not a terminal here: --progress=auto draws nothing.
  [[ ! -s "$tmp/c2res.err" ]] && pass "no progress line without a terminal" || fail "c2 stderr: $(cat "$tmp/c2res.err")"
  grep -q "^Results written to $tmp/res/c2.json and $tmp/res/c2_batches.csv$" "$tmp/c2res.out" || fail "c2 results line"
  ls "$tmp/res" | grep -q 'tmp' && fail "temporary files left in the results folder: $(ls "$tmp/res")"
else
  fail "c2 --results_dir exited non-zero: $(cat "$tmp/c2res.err")"
fi
if run c2prog "$C2" "${TINY[@]}" --epochs=1 --progress=on; then
  grep -qE '^c2 sgd  epoch 1/1  batch 1/2  [0-9]+ img/s  loss [0-9.]+  0:[0-9]+ elapsed, ETA 0:[0-9]+$' "$tmp/c2prog.err" \
    && pass "--progress=on draws the progress line" || fail "progress line: $(cat "$tmp/c2prog.err")"
  run c2off "$C2" "${TINY[@]}" --epochs=1 --progress=off
  # Blocks and tables without their times (the section's rows carry them: "1  2.9781  12.50  0.0001s ...").
  strip_times() { grep -v -e 'Time' -e '^Answer' "$1" | sed -E 's/[0-9]+\.[0-9]+s//g'; }
  diff <(strip_times "$tmp/c2prog.out") <(strip_times "$tmp/c2off.out") >/dev/null \
    && pass "stdout unchanged by the progress line" || fail "stdout differs with --progress=on"
else
  fail "c2 --progress=on exited non-zero: $(cat "$tmp/c2prog.err")"
fi
if run c6res "$C6" "${TINY[@]}" --epochs=1 --optimizers=sgd,adam --repeats=2 --results_dir="$tmp/res"; then
  "$CHECK_RESULTS" "$tmp/res/c6.json" "$tmp/c6res.out" "$tmp/res/c6_batches.csv" && pass "c6 --repeats=2 results match its blocks" \
    || fail "c6 results"
  grep -q '^##### Optimizer: adam (repeat 2/2) #####$' "$tmp/c6res.out" || fail "c6 repeat header"
  grep -qE '^adam +[0-9.]+s \([0-9.]+-[0-9.]+\) +[0-9.]+ +[0-9.]+$' "$tmp/c6res.out" || fail "c6 recap median: $(tail -5 "$tmp/c6res.out")"
else
  fail "c6 --repeats=2 exited non-zero: $(cat "$tmp/c6res.err")"
fi

# c2 on a CIFAR-10 binary folder (written by the synthetic tool), chosen by --dataset=auto.
"$MKDATA" --out="$tmp/cifar" --train=40 --test=8 >/dev/null || fail "make_synthetic_cifar10"
if run c2cifar "$C2" --data_dir="$tmp/cifar" --batch_size=8 --max_batches_per_epoch=1 --epochs=1 --threads=1; then
  grep -q "auto chose CIFAR-10 from $tmp/cifar" "$tmp/c2cifar.out" && pass "c2 --dataset=auto finds CIFAR-10" \
    || fail "c2 auto did not choose CIFAR-10: $(head -3 "$tmp/c2cifar.out")"
else
  fail "c2 on a CIFAR-10 folder: $(cat "$tmp/c2cifar.err")"
fi

# --- bad input: one line on stderr naming the problem, non-zero exit -------------------------
cp -r "$tmp/cifar" "$tmp/truncated"; truncate -s 5000 "$tmp/truncated/data_batch_2.bin"
cp -r "$tmp/cifar" "$tmp/badlabel"; printf '\x0c' | dd of="$tmp/badlabel/data_batch_1.bin" bs=1 seek=3073 conv=notrunc status=none
expect_error() {  # expect_error WANT_TEXT ARGS...
  local want="$1"; shift
  if run bad "$C2" "$@" --threads=1; then fail "c2 $* succeeded; want an error"; return; fi
  local lines; lines=$(wc -l <"$tmp/bad.err")
  if [[ "$lines" != 1 ]]; then fail "c2 $*: $lines stderr lines, want 1:"; cat "$tmp/bad.err"; return; fi
  grep -qF -- "$want" "$tmp/bad.err" && pass "c2 $* -> $(cat "$tmp/bad.err")" \
    || fail "c2 $*: stderr '$(cat "$tmp/bad.err")' lacks '$want'"
}
expect_error "--num_workers=-1: must be >= 0" --num_workers=-1
expect_error "--batch_size=0: must be >= 1" --batch_size=0
expect_error "--dataset=imagenet: unknown dataset" --dataset=imagenet
expect_error "--device=tpu: unknown device" --device=tpu
expect_error "--device=cuda: no CUDA device" --device=cuda
expect_error "/nonexistent/cifar: CIFAR-10 directory not found" --dataset=cifar10 --data_dir=/nonexistent/cifar
expect_error "data_batch_2.bin: size 5000 is not a whole number of 3073-byte" --dataset=cifar10 --data_dir="$tmp/truncated"
expect_error "data_batch_1.bin: record 1 has label 12" --dataset=cifar10 --data_dir="$tmp/badlabel"
expect_error "unknown optimizer 'lamb'; known: adadelta, adagrad, adam, adamw, rmsprop, sgd, sgd_nesterov" "${TINY[@]}" --optimizer=lamb
expect_error "unknown strategy 'warp'" "${TINY[@]}" --strategy=warp
expect_error "cuda_graph needs a CUDA device" "${TINY[@]}" --strategy=cuda_graph
expect_error "learning rate must be positive" --lr=-1
expect_error "unexpected argument 'extra'" extra
touch "$tmp/afile"
expect_error "--results_dir=$tmp/afile: cannot create it" "${TINY[@]}" --results_dir="$tmp/afile"
grep -q 'Epoch' "$tmp/bad.out" && fail "c2 trained before refusing an unwritable --results_dir"
expect_error "--results_dir=/proc/trainlab-results: cannot create it" "${TINY[@]}" --results_dir=/proc/trainlab-results
expect_error "--repeats=0: must be >= 1" "${TINY[@]}" --repeats=0
expect_error "--progress=sometimes: must be auto, on or off" "${TINY[@]}" --progress=sometimes
expect_error "unknown flag --workers (--help lists the flags)" "${TINY[@]}" --workers=0,1

# --- q1_q4: counted from the model ------------------------------------------------------------
if run q "$Q1Q4"; then
  grep -q '^Q1: convolutional layers: 20 (17 without 1x1 convolutions)$' "$tmp/q.out" || fail "Q1"
  grep -q '^Q2: input features of the last linear layer: 512$' "$tmp/q.out" || fail "Q2"
  grep -q '^Q3: SGD: trainable parameters 11173962, gradients 11173962' "$tmp/q.out" || fail "Q3"
  grep -q '^Q4: Adam: trainable parameters 11173962, gradients 11173962; .*: 22347924 state elements$' "$tmp/q.out" || fail "Q4"
  pass "q1_q4 counts"
else
  fail "q1_q4 exited non-zero: $(cat "$tmp/q.err")"
fi

# --- models: a TorchScript model trains and is counted; --save_model writes a state_dict ---------
M=tests/testdata/models
if run q_ts "$Q1Q4" --model=torchscript --model_path="$M/tiny_cnn.pt"; then
  grep -q '^Q1: convolutional layers: 2 (1 without 1x1 convolutions)$' "$tmp/q_ts.out" || fail "Q1 of tiny_cnn.pt"
  grep -q '^Q2: input features of the last linear layer: 8$' "$tmp/q_ts.out" || fail "Q2 of tiny_cnn.pt"
  grep -q '^Q3: SGD: trainable parameters 394, gradients 394' "$tmp/q_ts.out" || fail "Q3 of tiny_cnn.pt"
  pass "q1_q4 counts a TorchScript model"
else
  fail "q1_q4 --model=torchscript exited non-zero: $(cat "$tmp/q_ts.err")"
fi
if run c2_ts "$C2" "${TINY[@]}" --epochs=2 --model=torchscript --model_path="$M/tiny_cnn.pt" \
    --save_model="$tmp/tiny_weights.pt" --results_dir="$tmp/r_ts"; then
  [[ $(grep -c '^Epoch [0-9]* Summary:$' "$tmp/c2_ts.out") == 2 ]] || fail "c2 --model=torchscript: epochs"
  grep -q "^- Model: torchscript from $M/tiny_cnn.pt$" "$tmp/c2_ts.out" || fail "c2 does not name the model"
  grep -q "^Saved the trained weights to $tmp/tiny_weights.pt" "$tmp/c2_ts.out" || fail "c2 --save_model line"
  # A zip archive (torch.load's format) holding the pickled dict, the tensors named as in Python.
  [[ "$(head -c 2 "$tmp/tiny_weights.pt")" == "PK" ]] || fail "--save_model did not write a zip archive"
  grep -qa 'conv.weight' "$tmp/tiny_weights.pt" || fail "--save_model lacks the Python name conv.weight"
  grep -q '"model": "torchscript"' "$tmp/r_ts/c2.json" || fail "c2.json does not record the model"
  pass "c2 trains a TorchScript model and saves its weights"
else
  fail "c2 --model=torchscript exited non-zero: $(cat "$tmp/c2_ts.err")"
fi

# --- c3: a given worker list, its table and the two bests -------------------------------------
if run c3 "$C3" "${TINY[@]}" --epochs=1 --workers=0,2; then
  grep -q 'threads sharing one in-memory dataset' "$tmp/c3.out" || fail "c3 does not explain threads vs processes"
  grep -qxF '===== C3: loader workers =====' "$tmp/c3.out" || fail "c3 section title"
  [[ $(grep -cE '^[02] +[0-9.]+s +[0-9.]+s$' "$tmp/c3.out") == 2 ]] || fail "c3 table rows: $(tail -6 "$tmp/c3.out")"
  grep -qE '^Answer: the best worker count for total runtime is [02], for data loading [02]\.$' "$tmp/c3.out" \
    && pass "c3 sweep table" || fail "c3 answer: $(tail -3 "$tmp/c3.out")"
else
  fail "c3 exited non-zero: $(cat "$tmp/c3.err")"
fi
run bad "$C3" --max_workers=-1 && fail "c3 --max_workers=-1 accepted" || grep -q -- "--max_workers=-1: must be >= 0" "$tmp/bad.err" \
  || fail "c3 --max_workers=-1: $(cat "$tmp/bad.err")"
run bad "$C3" --workers=0,x && fail "c3 --workers=0,x accepted" || grep -q "'x' is not a worker count" "$tmp/bad.err" || fail "c3 bad --workers message"

# --- c4: side by side, stage breakdown, a valid nested trace -----------------------------------
if run c4 "$C4" "${TINY[@]}" --epochs=1 --best_workers=2 --trace="$tmp/c4.json"; then
  grep -qxF 'Best worker count: 2 (from --best_workers).' "$tmp/c4.out" \
    && grep -qE '^epoch +1 worker: loading +1 worker: training +1 worker: epoch +2 workers: loading' "$tmp/c4.out" \
    || fail "c4 table: $(tail -12 "$tmp/c4.out")"
  grep -qE '^1 worker +([0-9.]+s +){6}$' <(sed 's/$/ /' "$tmp/c4.out") || fail "c4 stage breakdown: $(tail -6 "$tmp/c4.out")"
  "$CHECK_TRACE" "$tmp/c4.json" && pass "c4 trace is valid, named and nested" || fail "c4 trace"
else
  fail "c4 exited non-zero: $(cat "$tmp/c4.err")"
fi

# --- c5: no GPU here: says so, runs the CPU, exits 0 --------------------------------------------
if run c5 "$C5" "${TINY[@]}" --epochs=1; then
  grep -q '^No GPU found' "$tmp/c5.out" && grep -qE '^cpu +[0-9.]+s +[0-9.]+s +[0-9.]+s$' "$tmp/c5.out" \
    && grep -q '^Answer: no GPU here' "$tmp/c5.out" && pass "c5 without a GPU" \
    || fail "c5 output: $(cat "$tmp/c5.out")"
else
  fail "c5 exited non-zero: $(cat "$tmp/c5.err")"
fi

# --- c6: recap and rankings; a diverging run is reported and the next one runs -----------------
if run c6 "$C6" "${TINY[@]}" --epochs=1 --optimizers=sgd,adadelta; then
  grep -qE '^Answer: by training time, fastest first: (sgd, adadelta|adadelta, sgd)\. By loss, lowest first: .*\. By top-1, highest first: ' "$tmp/c6.out" \
    && grep -qE '^adadelta +[0-9.]+s +[0-9.]+ +[0-9.]+$' "$tmp/c6.out" && pass "c6 recap" || fail "c6 recap: $(tail -8 "$tmp/c6.out")"
else
  fail "c6 exited non-zero: $(cat "$tmp/c6.err")"
fi
if run c6div "$C6" "${TINY[@]}" --epochs=2 --optimizers=sgd,adagrad --lr=1e30; then
  grep -qE '^Diverged: sgd, epoch 1, batch [12]: loss' "$tmp/c6div.out" && grep -q '##### Optimizer: adagrad #####' "$tmp/c6div.out" \
    && grep -qE '^sgd +.*diverged at epoch 1, batch' "$tmp/c6div.out" && pass "c6 reports divergence and goes on" \
    || fail "c6 divergence: $(grep -E 'Diverged|Loss' "$tmp/c6div.out")"
else
  fail "c6 (diverging) exited non-zero: $(cat "$tmp/c6div.err")"
fi

# --- c7: with and without batch norm --------------------------------------------------------------
# (with another optimizer and strategy than the defaults: every binary links every plugin)
if run c7 "$C7" "${TINY[@]}" --epochs=1 --optimizer=adam --strategy=channels_last; then
  grep -qE '^adam with BN ' "$tmp/c7.out" && grep -qE '^adam without BN ' "$tmp/c7.out" && pass "c7 recap (adam, channels_last)" \
    || fail "c7 recap: $(tail -6 "$tmp/c7.out")"
else
  fail "c7 exited non-zero: $(cat "$tmp/c7.err")"
fi

# --- every experiment offers every optimizer and strategy: the shared flags' errors list them all -
names=(c3 c4 c5 c7)
bins=("$C3" "$C4" "$C5" "$C7")
for i in "${!names[@]}"; do
  run bad "${bins[$i]}" "${TINY[@]}" --epochs=1 --optimizer=lamb
  grep -qF "known: adadelta, adagrad, adam, adamw, rmsprop, sgd, sgd_nesterov" "$tmp/bad.err" \
    && pass "${names[$i]} offers every optimizer" || fail "${names[$i]} --optimizer=lamb: $(cat "$tmp/bad.err")"
  run bad "${bins[$i]}" "${TINY[@]}" --epochs=1 --strategy=warp
  grep -qF "known: amp_bf16, channels_last, conv_autotune, cuda_graph, cudnn_autotune, eager, fused_bn_relu" "$tmp/bad.err" \
    && pass "${names[$i]} offers every strategy" || fail "${names[$i]} --strategy=warp: $(cat "$tmp/bad.err")"
done

# --- c8: eager and CPU strategies run; CUDA ones are skipped with the reason -------------------
if run c8 "$C8" "${TINY[@]}" --epochs=2 --strategies=eager,channels_last,cuda_graph,cudnn_autotune; then
  grep -qE '^eager +[0-9.]+s +[0-9.]+s +1\.00x +1\.00x$' "$tmp/c8.out" || fail "c8 eager row: $(grep -A8 'C8:' "$tmp/c8.out")"
  grep -qE '^channels_last +[0-9.]+s' "$tmp/c8.out" || fail "c8 channels_last row"
  grep -qE '^Skipped here: cuda_graph: cuda_graph needs a CUDA device.*; cudnn_autotune: cudnn_autotune needs a CUDA device' "$tmp/c8.out" \
    || fail "c8 skips: $(grep Skipped "$tmp/c8.out")"
  [[ $(grep -c '^Epoch [0-9]* Summary:$' "$tmp/c8.out") == 4 ]] || fail "c8 blocks"
  pass "c8 table"
else
  fail "c8 exited non-zero: $(cat "$tmp/c8.err")"
fi

# --- batch_sweep: the rate scaled with the batch, a batch too large skipped, the answer; its own
# flag in the checkpoint's fingerprint ----------------------------------------------------------
SWEEP="${BIN[batch_sweep]}"
if run sweep "$SWEEP" "${TINY[@]}" --epochs=1 --batch_sizes=4,8,64 --lr_base_batch=8 \
     --checkpoint_dir="$tmp/sweepck" --results_dir="$tmp/sweep"; then
  grep -q '^##### Batch size 4, lr 0.05 #####$' "$tmp/sweep.out" && grep -q '^##### Batch size 8, lr 0.1 #####$' "$tmp/sweep.out" \
    && pass "batch_sweep scales the rate linearly" || fail "batch_sweep rates: $(grep '#####' "$tmp/sweep.out")"
  grep -q '^Batch size 64 skipped: larger than the training set (48 images)$' "$tmp/sweep.out" \
    || fail "batch_sweep did not skip batch 64: $(grep -i skip "$tmp/sweep.out")"
  [[ $(grep -c '^- Test Loss: ' "$tmp/sweep.out") == 2 ]] || fail "batch_sweep: each batch size is evaluated"
  grep -qE '^Answer: batch (4|8) trains fastest per image \([0-9.]+ ms, ' "$tmp/sweep.out" \
    && pass "batch_sweep names the fastest batch" || fail "batch_sweep answer: $(grep -A2 '^Answer' "$tmp/sweep.out")"
  [[ -s "$tmp/sweep/batch_sweep.json" ]] || fail "batch_sweep wrote no results"
  # Its own flag is part of the checkpoint's fingerprint: another --lr_base_batch is another run.
  run sweepbad "$SWEEP" "${TINY[@]}" --epochs=1 --batch_sizes=4,8,64 --lr_base_batch=16 \
    --checkpoint_dir="$tmp/sweepck" --resume && fail "batch_sweep resumed a run of another --lr_base_batch"
  grep -qF 'made with other settings: lr_base_batch was 8, now 16' "$tmp/sweepbad.err" \
    && pass "batch_sweep's own flag refuses a mismatched resume" || fail "batch_sweep resume: $(cat "$tmp/sweepbad.err")"
else
  fail "batch_sweep exited non-zero: $(cat "$tmp/sweep.err")"
fi

# --- all: every experiment in one process, C3's best carried into C4-C8, then REPORT.md ----------
if run all "$ALL" "${TINY[@]}" --epochs=1 --max_batches_per_epoch=1 --workers=0,1 --optimizers=sgd,adam \
     --strategies=eager,channels_last --results_dir="$tmp/all"; then
  for e in "${!BIN[@]}"; do  # every experiment of experiments.bzl
    case "$e" in all | make_synthetic_cifar10 | check_trace | check_results) continue ;; esac
    [[ -s "$tmp/all/$e.json" ]] || fail "all wrote no $e.json"
  done
  best=$(grep -oE '"best_workers_total": [0-9]+' "$tmp/all/c3.json" | grep -oE '[0-9]+$')
  grep -qE "\"best_workers\": $best," "$tmp/all/c4.json" && grep -qE "\"num_workers\": $best,?\$" "$tmp/all/c8.json" \
    && pass "all carries C3's best worker count ($best) into C4-C8" || fail "C3's best ($best) not carried into C4/C8"
  grep -q "^Loader workers: $best (C3's best for total runtime, from $tmp/all/c3.json)$" "$tmp/all.out" || fail "c5-c8 do not say where the worker count came from"
  grep -q '^## C8: compile strategies$' "$tmp/all/REPORT.md" && grep -q '^## Q1-Q4' "$tmp/all/REPORT.md" \
    && pass "all wrote REPORT.md" || fail "all: REPORT.md: $(head -5 "$tmp/all/REPORT.md")"
else
  fail "all exited non-zero: $(cat "$tmp/all.err")"
fi

echo "experiments_test: $failures failure(s)"
exit $((failures > 0))
