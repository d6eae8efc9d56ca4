#!/usr/bin/env bash
# REPORT.md rendered from checked-in results: every section and table, answers computed from the
# data, SVG plots that parse as XML and hold the plotted series, the report without gnuplot, and
# --compare's ratios for two known sets.
set -uo pipefail
REPORT="$1"
data="${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-trainlab}/tests/testdata"
[[ -d "$data/results" ]] || data="$(dirname "$0")/testdata"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

cp -r "$data/results" "$tmp/r" && cp -r "$data/results_half" "$tmp/half" && chmod -R u+w "$tmp/r" "$tmp/half"

if "$REPORT" "$tmp/r" >"$tmp/out" 2>"$tmp/err"; then
  md="$tmp/r/REPORT.md"
  for section in "## Environment" "## C2: time per epoch" "## C3: loader workers" "## C4: one worker against the best count" \
                 "## C5: GPU against CPU" "## C6: optimizers" "## C7: without batch norm" "## C8: compile strategies" \
                 "## Profile: where the step's time goes" "## Time to accuracy" "## Q1-Q4: the model, counted" "## Q5: compile strategies in C++"; do
    grep -qxF "$section" "$md" || fail "REPORT.md lacks '$section'"
  done
  for header in "| epoch | loss | top-1 % | data loading | training | avg per batch | epoch time |" \
                "| workers | total runtime | total data loading |" \
                "| device | epoch time (mean) | training (mean) | data loading (mean) |" \
                "| optimizer | train s/epoch | loss (mean over epochs) | top-1 % (mean) | note |" \
                "| strategy | first epoch | mean of epochs 2-2 | speed-up, first epoch | speed-up, steady |" \
                "| recipe | reached | wall time to target | training time to target | epochs to target | final test top-1 | best test top-1 |" \
                "| recipe | optimizer | batch | lr | schedule | warm-up epochs | label smoothing | tta | strategy | epochs at most |"; do
    grep -qxF "$header" "$md" || fail "REPORT.md lacks the table '$header'"
  done
  [[ $(grep -cE '^\| [012] \| [0-9.]+s \([0-9.-]+\) \| [0-9.]+s \([0-9.-]+\) \|$' "$md") == 3 ]] || fail "C3 rows (median and range)"
  grep -qF "the best worker count for total runtime is **0**, for data loading **0**" "$md" || fail "C3 answer"
  grep -qF "| Q1: convolutional layers | 20 (17 without the three 1x1 shortcuts) |" "$md" || fail "Q1 row"
  grep -qF "| Q3: SGD: trainable parameters / gradients | 11173962 / 11173962 |" "$md" || fail "Q3 row"
  grep -qF "no GPU here" "$md" || fail "C5 does not say there was no GPU"
  grep -qE '^\| eager \| .* \| 1\.0+x \| 1\.0+x \|$' "$md" || fail "C8 eager row"
  grep -qF 'Skipped here: `cuda_graph`' "$md" || fail "C8 skipped strategy"
  grep -qF 'docs/compile_strategies.md' "$md" || fail "Q5 pointer"
  grep -qF '| strategy | step | instrumented | rows cover (of instrumented) |' "$md" || fail "profile step table"
  grep -qE '^\| layer1\.0\.conv1 \| (forward|backward) \| conv \|' "$md" || fail "profile layer rows"
  grep -qE '^\| the other [0-9]+ rows \|' "$md" || fail "profile: the rows past the top 15, summed"
  grep -qF 'Skipped here: `cuda_graph`: cuda_graph needs a CUDA device' "$md" || fail "profile skipped strategy"
  # time_to_accuracy: both recipes, 2 runs each, reached in both (the fixture's target is one
  # the fast recipe reached); the fast row shows the recipe's settings.
  grep -qE '^\| lab \| [0-2] of 2 \|' "$md" && grep -qE '^\| fast \| 2 of 2 \| [0-9.]+s \([0-9.-]+\) \|' "$md" \
    || fail "time_to_accuracy rows: $(grep -E '^\| (lab|fast) \|' "$md" | head -4)"
  grep -qE '^\| fast \| sgd_nesterov \| 8 \| 0\.00625 \| onecycle \| 0\.6 \| 0\.2 \| flip \| channels_last' "$md" \
    || fail "time_to_accuracy fast settings row: $(grep -E '^\| fast \| sgd' "$md")"
  grep -qE '\*\*Answer:\*\* (`fast` reaches [0-9.]+% test top-1 fastest|`lab` reaches)' "$md" || fail "time_to_accuracy answer"
  pass "REPORT.md sections, tables and answers"

  # Each plot: linked, valid XML, and holding its series by name.
  check_svg() {  # check_svg FILE SERIES...
    local f="$tmp/r/$1"; shift
    grep -qF "]($(basename "$f"))" "$md" || fail "REPORT.md does not link $(basename "$f")"
    xmllint --noout "$f" 2>"$tmp/xml.err" || { fail "$(basename "$f") is not valid XML: $(head -2 "$tmp/xml.err")"; return; }
    local s
    for s in "$@"; do grep -qF "<text>$s</text>" "$f" || fail "$(basename "$f") lacks the series '$s'"; done
    [[ $(grep -c 'id="gnuplot_plot_' "$f") -ge $# ]] || fail "$(basename "$f") has fewer plotted series than $#"
  }
  check_svg c2_batches.svg "training time per batch (s)"
  check_svg c3.svg "total runtime (left axis)" "total data loading (right axis)"
  check_svg c6_loss.svg sgd adagrad adam
  check_svg c6_top1.svg sgd adagrad adam
  check_svg c7_loss.svg "sgd with BN" "sgd without BN"
  check_svg c8.svg eager channels_last
  check_svg profile_eager.svg forward backward optimizer
  check_svg profile_channels_last.svg forward backward
  check_svg time_to_accuracy.svg "lab (run 1)" "lab (run 2)" "fast (run 1)" "fast (run 2)"
  pass "SVG plots parse and hold their series"
else
  fail "report exited non-zero: $(cat "$tmp/err")"
fi

# Without gnuplot: every table, no plot, and how to get them.
cp -r "$data/results" "$tmp/noplot" && chmod -R u+w "$tmp/noplot"
if PATH=/nonexistent "$REPORT" "$tmp/noplot" >"$tmp/out2" 2>"$tmp/err2"; then
  grep -qF "*Plots: gnuplot is not installed" "$tmp/noplot/REPORT.md" && ! grep -q '\.svg)' "$tmp/noplot/REPORT.md" \
    && grep -qxF "| workers | total runtime | total data loading |" "$tmp/noplot/REPORT.md" \
    && pass "without gnuplot: tables and a hint" || fail "report without gnuplot: $(tail -3 "$tmp/noplot/REPORT.md")"
else
  fail "report without gnuplot exited non-zero: $(cat "$tmp/err2")"
fi

# --compare: every time halved -> 0.5x; loss and top-1 unchanged -> 1x.
if "$REPORT" "$tmp/r" --compare="$tmp/half" >"$tmp/out3" 2>"$tmp/err3"; then
  cmp="$tmp/r/COMPARISON.md"
  rows=$(grep -c '| epoch time (mean) |' "$cmp")
  halves=$(grep -cE '\| epoch time \(mean\) \| .* \| 0\.50?x \|$' "$cmp")
  ones=$(grep -cE '\| last epoch loss \| .* \| 1\.00?x \|$' "$cmp")
  ((rows >= 10 && halves == rows && ones == rows)) && pass "--compare: $rows configurations at 0.5x time, 1x loss" \
    || fail "--compare ratios: $rows rows, $halves at 0.5x, $ones at 1x"
else
  fail "report --compare exited non-zero: $(cat "$tmp/err3")"
fi

# Bad input: one line naming the folder.
"$REPORT" "$tmp/nonexistent" >/dev/null 2>"$tmp/err4" && fail "report on a missing folder succeeded"
[[ $(wc -l <"$tmp/err4") == 1 ]] && grep -qF "$tmp/nonexistent: no such directory" "$tmp/err4" \
  && pass "missing folder: $(cat "$tmp/err4")" || fail "missing folder: $(cat "$tmp/err4")"
mkdir -p "$tmp/empty"
"$REPORT" "$tmp/empty" >/dev/null 2>"$tmp/err5" && fail "report on an empty folder succeeded"
grep -qF "no results file" "$tmp/err5" || fail "empty folder: $(cat "$tmp/err5")"

echo "report_test: $failures failure(s)"
exit $((failures > 0))
