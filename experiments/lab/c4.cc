// C4: one loader worker against the best count, side by side per epoch (data loading,
// training, epoch time), and a measured breakdown of the loader's stages (read, crop, flip,
// normalise, batch assembly) next to the time the trainer waited, so that "why is one worker
// slower" has a measured answer (the tables: c4_report.cc). --trace=FILE.json writes a Chrome
// trace of both runs.
//
// The best count: --best_workers when given, else C3's best for total runtime from
// --results_dir/c3.json, else a one-epoch sweep of 0, 2, 4, 8 workers.
//
//   bazel run //experiments:c4 -- --max_batches_per_epoch=10 --epochs=2 --best_workers=2
//   --trace=c4.json
#include <cstdio>

#include <gflags/gflags.h>

#include "absl/strings/str_cat.h"
#include "core/host.h"
#include "core/status_macros.h"
#include "experiments/harness/experiment.h"
#include "experiments/training/run.h"
#include "experiments/training/workers.h"

DEFINE_int32(best_workers, -1, "The best worker count; -1: C3's from --results_dir, else a sweep.");

namespace trainlab::experiments {
namespace {

struct C4Flags {
  int64_t best_workers = -1;  // -1: C3's from --results_dir, else a sweep
};

absl::StatusOr<C4Flags> ReadC4Flags(const FlagValues& f) {
  C4Flags c;
  TRAINLAB_ASSIGN_OR_RETURN(
      c.best_workers, f.IntIn("best_workers", -1, kMaxThreads, "must be >= 0 (or -1: find it)"));
  return c;
}

absl::StatusOr<int> SweepForBest(const Session& session) {
  std::printf("Finding the best worker count (one epoch each of 0, 2, 4, 8 workers)...\n");
  int best = 0;
  double best_load = 0;
  for (int n : {0, 2, 4, 8}) {
    RunConfig c = session.DefaultRun();
    c.label = absl::StrCat(n, " workers (sweep)");
    c.num_workers = n;
    c.epochs = 1;
    c.print_blocks = false;
    c.evaluate = false;
    c.record_trace = false;
    TRAINLAB_ASSIGN_OR_RETURN(RunResult r, RunTraining(session, c));
    const double load = r.total(&EpochStats::load_s);
    std::printf("  %d workers: data loading %s\n", n, FormatSeconds(load).c_str());
    if (n == 0 || load < best_load) {
      best = n;
      best_load = load;
    }
  }
  // Data-parallel: rank 0's timings decide, so every rank runs the same comparison.
  TRAINLAB_ASSIGN_OR_RETURN(const int64_t chosen, session.FromRank0(best));
  return static_cast<int>(chosen);
}

absl::StatusOr<WorkerChoice> BestWorkers(const Session& session, const C4Flags& flags) {
  if (flags.best_workers >= 0) {
    return WorkerChoice{static_cast<int>(flags.best_workers), "from --best_workers"};
  }
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<int> c3_best, C3BestWorkers(session));
  if (c3_best) {
    return WorkerChoice{*c3_best, absl::StrCat("C3's best for total runtime, from ",
                                               session.ResultsDir(), "/c3.json")};
  }
  TRAINLAB_ASSIGN_OR_RETURN(int best, SweepForBest(session));
  return WorkerChoice{best, "from a one-epoch sweep of 0, 2, 4, 8 workers"};
}

absl::StatusOr<ExperimentResult> RunC4(Session& session, const C4Flags& flags) {
  TRAINLAB_ASSIGN_OR_RETURN(const WorkerChoice best, BestWorkers(session, flags));
  std::printf("Best worker count: %d (%s)\n", best.workers, best.source.c_str());
  ExperimentResult result;
  for (int n : {1, best.workers}) {
    Variant v{.label = absl::StrCat(n, n == 1 ? " worker" : " workers"),
              .config = session.DefaultRun(),
              .params = {{"num_workers", n}}};
    v.config.num_workers = n;
    TRAINLAB_ASSIGN_OR_RETURN(VariantResult r, RunVariant(session, v));
    result.variants.push_back(std::move(r));
  }
  std::printf(
      "\nWith one worker the trainer waits whenever a batch takes longer to make than a step\n"
      "takes to train; more workers overlap that work. On a CPU the workers also compete with\n"
      "the training threads for the same cores.\n");
  result.summary = {{"best_workers", best.workers}, {"best_workers_source", best.source}};
  return result;
}

const bool kRegistered = RegisterExperiment<C4Flags>(
    "c4",
    {.usage = "c4: one loader worker against the best count (C4), per epoch, with the loader's\n"
              "stage breakdown; --trace=FILE.json for a timeline.",
     .flags = {"best_workers"}},
    ReadC4Flags, RunC4);

}  // namespace
}  // namespace trainlab::experiments
