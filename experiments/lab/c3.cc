// C3: the loader worker sweep. Trains with --num_workers 0, 4, 8, 12, ... and stops when the
// total data-loading time no longer falls (or runs exactly --workers=0,1,2,4). Its section
// (c3_report.cc) reports total runtime and total data-loading time per count and names the best
// count for each, as the lab did. With --repeats, medians decide.
//
// Our workers are threads sharing one in-memory dataset; the lab's were processes, each with a
// copy of the dataset, that pickled batches back through shared memory. Threads start in
// microseconds and hand over a pointer, so the curve here is flatter and its optimum smaller.
//
//   bazel run //experiments:c3 -- --max_batches_per_epoch=10 --epochs=1
#include <cstdio>

#include <gflags/gflags.h>

#include "absl/strings/str_cat.h"
#include "core/host.h"
#include "core/status_macros.h"
#include "experiments/harness/experiment.h"
#include "experiments/training/run.h"

DEFINE_string(workers, "",
              "Counts to run, e.g. 0,1,2 (default: 0, 4, 8, ... while loading falls).");
DEFINE_int32(max_workers, 64, "Upper bound of the automatic sweep.");

namespace trainlab::experiments {
namespace {

struct C3Flags {
  std::vector<int64_t> workers;  // explicit counts; empty: the automatic sweep
  int64_t max_workers = 64;      // the automatic sweep's upper bound
};

absl::StatusOr<C3Flags> ReadC3Flags(const FlagValues& f) {
  C3Flags c;
  if (!f.Str("workers").empty()) {
    TRAINLAB_ASSIGN_OR_RETURN(c.workers, f.IntList("workers", 0, kMaxThreads, "a worker count"));
  }
  TRAINLAB_ASSIGN_OR_RETURN(c.max_workers, f.IntIn("max_workers", 0, kMaxThreads));
  return c;
}

// The automatic sweep goes on while the last count's data loading is below the one before it.
bool LoadingStillFalls(const std::vector<VariantResult>& runs) {
  if (runs.size() < 2) return true;
  const double before = runs[runs.size() - 2].TotalOf(&EpochStats::load_s).median;
  const double last = runs.back().TotalOf(&EpochStats::load_s).median;
  return last < before;
}

absl::StatusOr<ExperimentResult> RunC3(Session& session, const C3Flags& o) {
  std::printf(
      "Note: loader workers are threads sharing one in-memory dataset (the lab's were processes,\n"
      "each with its own copy); see README, 'What a number on a CPU does and does not tell'.\n");
  ExperimentResult result;
  std::vector<VariantResult>& runs = result.variants;
  const bool automatic = o.workers.empty();
  for (int i = 0;; ++i) {
    int64_t n = 0;
    if (automatic) {
      n = 4 * i;
      if (n > o.max_workers) break;
      // Data-parallel: rank 0's timings decide, so every rank runs the same counts.
      TRAINLAB_ASSIGN_OR_RETURN(const int64_t falls, session.FromRank0(LoadingStillFalls(runs)));
      if (falls == 0) break;
    } else {
      if (i >= static_cast<int>(o.workers.size())) break;
      n = o.workers[i];
    }
    Variant v{.label = absl::StrCat(n, " workers"),
              .config = session.DefaultRun(),
              .params = {{"num_workers", n}}};
    v.config.num_workers = static_cast<int>(n);
    TRAINLAB_ASSIGN_OR_RETURN(VariantResult r, RunVariant(session, v));
    runs.push_back(std::move(r));
  }
  if (runs.empty()) {
    return absl::InvalidArgumentError("no worker count to run (check --workers / --max_workers)");
  }
  return result;
}

const bool kRegistered = RegisterExperiment<C3Flags>(
    "c3",
    {.usage = "c3: sweeps the number of loader workers (C3): 0, 4, 8, ... until data loading "
              "stops\n"
              "falling, or --workers=0,1,2,4; totals per count and the best count for each.",
     .flags = {"workers", "max_workers"}},
    ReadC3Flags, RunC3);

}  // namespace
}  // namespace trainlab::experiments
