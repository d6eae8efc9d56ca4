// C3's section: total runtime and total data-loading time per worker count, the best count for
// each (the summary C4-C8 read back), and both against the count as a plot.
#include "absl/strings/str_format.h"
#include "core/host.h"
#include "core/status_macros.h"
#include "experiments/reporting/experiment_report.h"

namespace trainlab::experiments {
namespace {

struct Best {
  int total = -1;    // worker count with the lowest median total runtime
  int loading = -1;  // ... and with the lowest median total data-loading time
};

// The first of equals wins: fewer workers, when they are as good.
Best BestWorkers(const ExperimentResult& result) {
  Best best;
  double best_total = 0, best_loading = 0;
  for (const VariantResult& v : result.variants) {
    if (v.repeats.empty()) continue;
    const double total = v.TotalTime().median, loading = v.TotalOf(&EpochStats::load_s).median;
    if (best.total < 0 || total < best_total) {
      best.total = v.setup.num_workers;
      best_total = total;
    }
    if (best.loading < 0 || loading < best_loading) {
      best.loading = v.setup.num_workers;
      best_loading = loading;
    }
  }
  return best;
}

Section C3Section(const ExperimentResult& result) {
  Section s;
  Table t{.header = {"workers", "total runtime", "total data loading"}};
  Series total{"total runtime (left axis)", {}},
      loading{"total data loading (right axis)", {}, true};
  for (const VariantResult& v : result.variants) {
    const Spread tt = v.TotalTime(), l = v.TotalOf(&EpochStats::load_s);
    t.rows.push_back({std::to_string(v.setup.num_workers), FormatSeconds(tt), FormatSeconds(l)});
    total.points.emplace_back(v.setup.num_workers, tt.median);
    loading.points.emplace_back(v.setup.num_workers, l.median);
  }
  s.AddTable(std::move(t));
  const Best best = BestWorkers(result);
  s.AddAnswer(
      absl::StrFormat("the best worker count for total runtime is **%d**, for data loading **%d**.",
                      best.total, best.loading));
  s.AddPlot({.file = "c3.svg",
             .title = "C3: time against loader workers",
             .xlabel = "loader workers",
             .ylabel = "total runtime, s (all epochs)",
             .series = {std::move(total), std::move(loading)},
             .y2label = "data loading, s (all epochs)",
             .from_zero = true});
  return s;
}

nlohmann::json C3Summary(const ExperimentResult& result) {
  const Best best = BestWorkers(result);
  return {{"best_workers_total", best.total}, {"best_workers_loading", best.loading}};
}

const bool kRegistered = ReportRegistry::Global().Register(
    "c3", {.title = "C3: loader workers",
           .question = "How many loader workers give the best data-loading time and total runtime?",
           .section = C3Section,
           .summarize = C3Summary,
           .check_summary = [](const JsonReader& s) -> absl::Status {
             // -1: no worker count ran (an empty sweep).
             TRAINLAB_RETURN_IF_ERROR(s.Int("best_workers_total", -1, kMaxThreads).status());
             return s.Int("best_workers_loading", -1, kMaxThreads).status();
           }});

}  // namespace
}  // namespace trainlab::experiments
