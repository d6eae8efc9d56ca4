// C8's section: per compile strategy, the first epoch (one-off costs included) and the mean of
// the steady epochs (6-10 in the lab), the speed-ups over eager, and epoch times as a plot.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "experiments/reporting/experiment_report.h"

namespace trainlab::experiments {
namespace {

// The lab's steady state is epochs 6-10; shorter runs use what they have after the first.
int FirstSteadyEpoch(int epochs) { return epochs >= 6 ? 6 : std::min(2, epochs); }

double FirstEpoch(const RunResult& r) { return r.epochs.empty() ? 0 : r.epochs.front().epoch_s; }

double SteadyMean(const RunResult& r, int first_steady) {
  double sum = 0;
  int n = 0;
  for (const EpochStats& e : r.epochs) {
    if (e.epoch >= first_steady) {
      sum += e.epoch_s;
      ++n;
    }
  }
  return n ? sum / n : 0.0;
}

int Epochs(const ExperimentResult& result) {
  size_t epochs = 0;
  for (const VariantResult& v : result.variants) {
    if (!v.repeats.empty()) epochs = std::max(epochs, v.repeats.front().epochs.size());
  }
  return static_cast<int>(epochs);
}

Section C8Section(const ExperimentResult& result) {
  Section s;
  const int epochs = Epochs(result);
  const int first_steady =
      static_cast<int>(SummaryInt(result.summary, "first_steady_epoch", FirstSteadyEpoch(epochs)));
  auto steady = [first_steady](const RunResult& r) { return SteadyMean(r, first_steady); };
  const VariantResult* eager = result.Find("eager");
  Table t{.header = {"strategy", "first epoch",
                     absl::StrCat("mean of epochs ", first_steady, "-", epochs),
                     "speed-up, first epoch", "speed-up, steady"}};
  std::vector<Series> series;
  std::vector<std::string> skipped;
  std::string best;
  double best_ratio = 0;
  for (const VariantResult& v : result.variants) {
    if (!v.skipped.empty() || v.repeats.empty()) {
      skipped.push_back(absl::StrCat("`", v.label, "`: ", v.skipped));
      continue;
    }
    const Spread first = v.Of(FirstEpoch), steady_s = v.Of(steady);
    std::string up_first = "n/a", up_steady = "n/a";
    if (eager != nullptr) {
      up_first = FormatRatio(eager->Of(FirstEpoch), first);
      up_steady = FormatRatio(eager->Of(steady), steady_s);
      const double ratio = steady_s.median > 0 ? eager->Of(steady).median / steady_s.median : 0;
      if (ratio > best_ratio) {
        best_ratio = ratio;
        best = v.label;
      }
    }
    t.rows.push_back({v.label, FormatSeconds(first), FormatSeconds(steady_s), up_first, up_steady});
    Series line{v.label, {}};
    for (const EpochStats& e : v.repeats.front().epochs)
      line.points.emplace_back(e.epoch, e.epoch_s);
    series.push_back(std::move(line));
  }
  s.AddTable(std::move(t));
  if (!skipped.empty()) s.AddText("Skipped here: " + absl::StrJoin(skipped, "; ") + ".");
  if (eager != nullptr && !best.empty()) {
    s.AddAnswer(absl::StrCat(
        "in the steady state the fastest is `", best, "`",
        best == "eager" ? " (no strategy beat eager on this device)" : "",
        "; the first epoch carries each strategy's one-off cost (capture, autotuning)."));
  }
  s.AddPlot({.file = "c8.svg",
             .title = "C8: epoch time per epoch and strategy (epoch 1 carries one-off costs)",
             .xlabel = "epoch",
             .ylabel = "seconds",
             .series = std::move(series),
             .from_zero = true});
  return s;
}

nlohmann::json C8Summary(const ExperimentResult& result) {
  return {{"first_steady_epoch", FirstSteadyEpoch(Epochs(result))}};
}

const bool kRegistered = ReportRegistry::Global().Register(
    "c8", {.title = "C8: compile strategies",
           .question = "First-epoch time and steady-state time of each strategy against eager.",
           .section = C8Section,
           .summarize = C8Summary,
           .check_summary = [](const JsonReader& s) {
             return s.Int("first_steady_epoch", 0, 1 << 20).status();
           }});

}  // namespace
}  // namespace trainlab::experiments
