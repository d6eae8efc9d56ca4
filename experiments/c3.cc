// C3: the loader worker sweep. Trains with --num_workers 0, 4, 8, 12, ... and stops when the
// total data-loading time no longer falls (or runs exactly --workers=0,1,2,4). For each count
// it reports total runtime and total data-loading time over the epochs, then names the best
// count for each, as the lab did. With --repeats, medians decide.
//
// Our workers are threads sharing one in-memory dataset; the lab's were processes, each with a
// copy of the dataset, that pickled batches back through shared memory. Threads start in
// microseconds and hand over a pointer, so the curve here is flatter and its optimum smaller.
//
//   bazel run //experiments:c3 -- --max_batches_per_epoch=10 --epochs=1
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experiments/experiment.h"

namespace trainlab::experiments {
namespace {

absl::StatusOr<ExperimentResult> RunC3(Session& session) {
  const ExperimentConfig& cfg = session.config;
  std::printf(
      "Note: loader workers are threads sharing one in-memory dataset (the lab's were processes,\n"
      "each with its own copy); see README, 'What a number on a CPU does and does not tell'.\n");
  ExperimentResult result;
  std::vector<ConfigResult>& runs = result.configs;
  const bool automatic = cfg.workers.empty();
  for (int i = 0;; ++i) {
    int n;
    if (automatic) {
      n = 4 * i;
      if (n > cfg.max_workers) break;
      if (runs.size() >= 2) {
        const double prev = runs[runs.size() - 2].TotalOf(&EpochStats::load_s).median;
        const double last = runs.back().TotalOf(&EpochStats::load_s).median;
        if (last >= prev) break;  // data loading stopped falling
      }
    } else {
      if (i >= static_cast<int>(cfg.workers.size())) break;
      n = cfg.workers[i];
    }
    Variant v{.label = absl::StrCat(n, " workers"),
              .config = session.DefaultRun(),
              .params = {{"num_workers", n}}};
    v.config.num_workers = n;
    TRAINLAB_ASSIGN_OR_RETURN(ConfigResult r, RunVariant(session, v));
    runs.push_back(std::move(r));
  }
  if (runs.empty())
    return absl::InvalidArgumentError("no worker count to run (check --workers / --max_workers)");

  std::printf("\n===== C3: worker sweep (totals over %d epochs) =====\n", cfg.run.epochs);
  std::printf("%8s %16s %22s\n", "workers", "total runtime", "total data loading");
  size_t best_run = 0, best_load = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Spread total = runs[i].Of([](const RunResult& r) { return r.total_s; });
    const Spread load = runs[i].TotalOf(&EpochStats::load_s);
    std::printf("%8d %16s %22s\n", runs[i].config.num_workers, FormatSeconds(total).c_str(),
                FormatSeconds(load).c_str());
    if (total.median < runs[best_run].Of([](const RunResult& r) { return r.total_s; }).median)
      best_run = i;
    if (load.median < runs[best_load].TotalOf(&EpochStats::load_s).median) best_load = i;
  }
  const int best_total = runs[best_run].config.num_workers,
            best_loading = runs[best_load].config.num_workers;
  std::printf("Best for total runtime: %d workers\n", best_total);
  std::printf("Best for data loading: %d workers\n", best_loading);
  result.summary = {{"best_workers_total", best_total}, {"best_workers_loading", best_loading}};
  return result;
}

const bool kRegistered = ExperimentRegistry::Global().Register(
    "c3",
    {.usage =
         "c3: sweeps the number of loader workers (C3): 0, 4, 8, ... until data loading stops\n"
         "falling, or --workers=0,1,2,4; totals per count and the best count for each.",
     .flags = {"workers", "max_workers"},
     .run = RunC3});

}  // namespace
}  // namespace trainlab::experiments
