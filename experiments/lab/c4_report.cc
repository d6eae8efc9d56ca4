// C4's section: one loader worker against the best count, per epoch; the loader's stages; and
// what the single worker cost in all.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/host.h"
#include "core/status_macros.h"
#include "experiments/reporting/experiment_report.h"

namespace trainlab::experiments {
namespace {

Section C4Section(const ExperimentResult& result) {
  Section s;
  if (result.variants.size() < 2) return s;
  const VariantResult& a = result.variants[0];
  const VariantResult& b = result.variants[1];
  if (a.repeats.empty() || b.repeats.empty()) return s;
  s.AddText(absl::StrCat("Best worker count: ", SummaryInt(result.summary, "best_workers", -1),
                         " (", SummaryString(result.summary, "best_workers_source"), ")."));
  const std::string& la = a.label;
  const std::string& lb = b.label;
  Table epochs{.header = {"epoch", la + ": loading", la + ": training", la + ": epoch",
                          lb + ": loading", lb + ": training", lb + ": epoch"}};
  const RunResult& ra = a.repeats.front();
  const RunResult& rb = b.repeats.front();
  for (size_t e = 0; e < std::min(ra.epochs.size(), rb.epochs.size()); ++e) {
    const EpochStats& x = ra.epochs[e];
    const EpochStats& y = rb.epochs[e];
    epochs.rows.push_back({std::to_string(e + 1), FormatSeconds(x.load_s), FormatSeconds(x.train_s),
                           FormatSeconds(x.epoch_s), FormatSeconds(y.load_s),
                           FormatSeconds(y.train_s), FormatSeconds(y.epoch_s)});
  }
  s.AddTable(std::move(epochs));
  if (a.repeats.size() > 1) {
    s.AddText("(Per epoch: the first of the runs; the totals below are medians.)");
  }
  Table stages{.header = {"loader stages (summed over threads and epochs)", "read", "crop", "flip",
                          "normalise", "assemble", "trainer waited"}};
  for (const VariantResult* v : {&a, &b}) {
    const LoaderStageTimes t = v->repeats.front().total_stages();
    stages.rows.push_back({v->label, FormatSeconds(t.read_s), FormatSeconds(t.crop_s),
                           FormatSeconds(t.flip_s), FormatSeconds(t.normalize_s),
                           FormatSeconds(t.assemble_s),
                           FormatSeconds(v->repeats.front().total(&EpochStats::load_s))});
  }
  s.AddTable(std::move(stages));
  const Spread ta = a.TotalTime(), tb = b.TotalTime();
  const Spread wa = a.TotalOf(&EpochStats::load_s), wb = b.TotalOf(&EpochStats::load_s);
  s.AddAnswer(absl::StrCat("with ", la, " the whole run took ", FormatRatio(ta, tb),
                           " the time of ", lb, " (", FormatSeconds(ta), " against ",
                           FormatSeconds(tb), "); the trainer waited ", FormatSeconds(wa),
                           " against ", FormatSeconds(wb), "."));
  return s;
}

absl::Status C4CheckSummary(const JsonReader& s) {
  TRAINLAB_RETURN_IF_ERROR(s.Int("best_workers", 0, kMaxThreads).status());
  return s.String("best_workers_source").status();
}

const bool kRegistered = ReportRegistry::Global().Register(
    "c4", {.title = "C4: one worker against the best count",
           .question = "What does a single worker cost, and where?",
           .section = C4Section,
           .check_summary = C4CheckSummary});

}  // namespace
}  // namespace trainlab::experiments
