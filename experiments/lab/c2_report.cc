// C2's section: the lab's per-epoch figures as a table, the share of the epoch spent waiting for
// data, and each batch's training time as a plot.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/reporting/experiment_report.h"

namespace trainlab::experiments {
namespace {

// Per epoch, over the repeats: loss, top-1 and the lab's times.
Table EpochTable(const VariantResult& v) {
  Table t{.header = {"epoch", "loss", "top-1 %", "data loading", "training", "avg per batch",
                     "epoch time"}};
  const size_t epochs = v.repeats.front().epochs.size();
  for (size_t e = 0; e < epochs; ++e) {
    auto at = [&](auto field) {
      std::vector<double> values;
      for (const RunResult& r : v.repeats) {
        if (e < r.epochs.size()) values.push_back(field(r.epochs[e]));
      }
      return Spread::Of(std::move(values));
    };
    t.rows.push_back(
        {std::to_string(e + 1), FormatValue(at([](const EpochStats& s) { return s.loss; }), 4),
         FormatValue(at([](const EpochStats& s) { return s.top1; }), 2),
         FormatSeconds(at([](const EpochStats& s) { return s.load_s; })),
         FormatSeconds(at([](const EpochStats& s) { return s.train_s; })),
         FormatSeconds(at([](const EpochStats& s) { return s.avg_train_per_batch_s(); })),
         FormatSeconds(at([](const EpochStats& s) { return s.epoch_s; }))});
  }
  return t;
}

// The first repeat's batches one after another: (batch number, training seconds).
Series BatchTimes(const ExperimentResult& result) {
  Series s{"training time per batch (s)", {}};
  int64_t i = 0;
  for (const VariantResult& v : result.variants) {
    for (const RunResult& r : v.repeats) {
      if (r.repeat != 1) continue;
      for (const EpochStats& e : r.epochs) {
        for (const BatchRecord& b : e.batches) s.points.emplace_back(++i, b.train_s);
      }
    }
  }
  return s;
}

Section C2Section(const ExperimentResult& result) {
  Section s;
  if (result.variants.empty() || result.variants.front().repeats.empty()) return s;
  const VariantResult& v = result.variants.front();
  s.AddTable(EpochTable(v));
  if (v.repeats.size() > 1) {
    s.AddText(absl::StrCat("Medians over ", v.repeats.size(), " runs, (min-max) beside them."));
  }
  const Spread load = v.TotalOf(&EpochStats::load_s), epoch = v.TotalOf(&EpochStats::epoch_s);
  s.AddAnswer(absl::StrFormat(
      "waiting for data took %.2f%% of the epoch time (%s of %s over %d epochs); the rest is "
      "training.",
      epoch.median > 0 ? 100 * load.median / epoch.median : 0.0, FormatSeconds(load),
      FormatSeconds(epoch), static_cast<int>(v.repeats.front().epochs.size())));
  Series batches = BatchTimes(result);
  if (!batches.points.empty()) {
    s.AddPlot({.file = "c2_batches.svg",
               .title = "C2: training time of each batch",
               .xlabel = "batch (epochs one after another)",
               .ylabel = "seconds",
               .series = {std::move(batches)},
               .from_zero = true,
               .tics_at_points = false});
  }
  return s;
}

nlohmann::json C2Summary(const ExperimentResult& result) {
  if (result.variants.empty() || result.variants.front().repeats.empty()) return {};
  const VariantResult& v = result.variants.front();
  const Spread load = v.TotalOf(&EpochStats::load_s), epoch = v.TotalOf(&EpochStats::epoch_s);
  return {{"mean_epoch_s", v.MeanOf(&EpochStats::epoch_s).median},
          {"data_loading_share", epoch.median > 0 ? load.median / epoch.median : 0.0}};
}

const bool kRegistered = ReportRegistry::Global().Register(
    "c2", {.title = "C2: time per epoch",
           .question = "Where does an epoch's time go: waiting for data, or training?",
           .section = C2Section,
           .summarize = C2Summary});

}  // namespace
}  // namespace trainlab::experiments
