#!/usr/bin/env bash
# Every binary's --help fits on one screen (at most 60 lines) and lists the binary's own flags
# within its first 40 lines, before any library's; --helpfull still reaches the libraries' flags.
set -uo pipefail
# Arguments: NAME=PATH for every experiment of experiments.bzl and the other binaries.
declare -A BIN
for arg in "$@"; do BIN["${arg%%=*}"]="${arg#*=}"; done
C2="${BIN[c2]}" C3="${BIN[c3]}" C4="${BIN[c4]}" C5="${BIN[c5]}" C6="${BIN[c6]}" C7="${BIN[c7]}"
C8="${BIN[c8]}" Q1Q4="${BIN[q1_q4]}" ALL="${BIN[all]}" REPORT="${BIN[report]}"
SSB="${BIN[strategy_step_benchmark]}" MKDATA="${BIN[make_synthetic_cifar10]}"
PROFILE="${BIN[profile]}" TTA="${BIN[time_to_accuracy]}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
training="dataset data_dir batch_size num_workers epochs optimizer lr strategy device threads results_dir progress repeats"

check() {  # check BINARY FLAG...
  local bin="$1"; shift
  local name; name=$(basename "$bin")
  local help; help=$("$bin" --help 2>&1); local rc=$?
  [[ $rc == 0 ]] || fail "$name --help exited $rc"
  local lines; lines=$(wc -l <<<"$help")
  ((lines <= 60)) || fail "$name --help is $lines lines (more than one screen)"
  local head40; head40=$(head -40 <<<"$help")
  local flag
  for flag in "$@"; do
    grep -qE -- "--${flag}([= ]|$)" <<<"$head40" || fail "$name --help: --$flag not in the first 40 lines"
  done
  if grep -qE -- '--(caffe2_|torch_jit|logtostderr|flagfile)' <<<"$help"; then
    fail "$name --help lists a library's flags"
  fi
  echo "ok: $name --help ($lines lines)"
}

check "$C2" save_model model model_path $training
check "$C3" workers max_workers $training
check "$C4" best_workers dataset epochs results_dir
check "$C5" dataset epochs device results_dir
check "$C6" optimizers dataset epochs results_dir
check "$C7" dataset epochs batch_norm results_dir
check "$C8" strategies dataset epochs results_dir
check "$Q1Q4" model model_path batch_norm results_dir
check "$ALL" preset results_dir workers optimizers strategies
check "$REPORT" compare
check "$SSB" device strategies batch_sizes threads
check "$MKDATA" out train test seed
check "$TTA" recipe test_images $training
check "$PROFILE" strategies profile_steps dataset batch_size model device threads results_dir progress
# Every other experiment of experiments.bzl (one added since): one screen, the training flags.
for name in "${!BIN[@]}"; do
  case "$name" in
    c[2-8] | q1_q4 | all | report | strategy_step_benchmark | make_synthetic_cifar10 | profile | time_to_accuracy) ;;
    *) check "${BIN[$name]}" $training ;;
  esac
done

# The help lists the plugins this binary linked, by the registries' names.
c2help=$("$C2" --help 2>&1)
grep -q -- "Models (--model): resnet18, resnet18_no_bn, torchscript" <<<"$c2help" || fail "c2 --help: no model list"
grep -q -- "Optimizers (--optimizer): adadelta, adagrad, adam" <<<"$c2help" || fail "c2 --help: no optimizer list"
# The compact groups: every flag with its default, on one line.
grep -qF -- '  --lr_schedule="constant" --warmup_epochs=0 --lr_milestones="" --lr_gamma=0.1 --label_smoothing=0' <<<"$c2help" \
  || fail "c2 --help: no learning-rate paragraph"
grep -qF -- '  --checkpoint_dir="" --checkpoint_every=0 --resume="no"' <<<"$c2help" || fail "c2 --help: no checkpoint paragraph"
q1help=$("$Q1Q4" --help 2>&1)
grep -q -- "Models (--model): resnet18" <<<"$q1help" || fail "q1_q4 --help: no model list"

# time_to_accuracy's own defaults show in its help, and so do the flags its recipes set (in the
# learning-rate paragraph, past the first 40 lines: they are every training binary's flags).
ttahelp=$("$TTA" --help 2>&1)
for flag in lr_schedule warmup_epochs label_smoothing tta target_accuracy; do
  grep -qE -- "--${flag}=" <<<"$ttahelp" || fail "time_to_accuracy --help does not list --$flag"
done
grep -qE -- '--epochs=20 ' <<<"$ttahelp" && grep -qE -- '--target_accuracy=94( |$)' <<<"$ttahelp" ||
  fail "time_to_accuracy --help does not show its 20-epoch, 94% defaults"
# c8's own default shows in its help; --helpfull still lists the libraries' flags.
# (Output captured first: `grep -q` closing the pipe early would fail the pipeline under pipefail.)
c8help=$("$C8" --help 2>&1)
grep -qE -- '--epochs=10 ' <<<"$c8help" || fail "c8 --help does not show its 10-epoch default"
full=$("$C2" --helpfull 2>&1)
grep -q -- '-logtostderr' <<<"$full" || fail "c2 --helpfull lacks glog's flags"
# A flag of another experiment (defined in its own file, not linked into c2) is unknown to c2; a
# training flag given to q1_q4 is refused by name.
out=$("$C2" --workers=0,1 2>&1) && fail "c2 accepted c3's --workers" ||
  grep -q -- "unknown flag --workers (--help lists the flags)" <<<"$out" || fail "c2 --workers: $out"
out=$("$Q1Q4" --epochs=3 2>&1) && fail "q1_q4 accepted --epochs" ||
  grep -q -- "--epochs is not a flag of q1_q4 (it takes: --model, --model_path, --batch_norm, --results_dir)" <<<"$out" || fail "q1_q4 --epochs: $out"

echo "help_test: $failures failure(s)"
exit $((failures > 0))
