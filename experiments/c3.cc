// C3: the loader worker sweep. Trains with --num_workers 0, 4, 8, 12, ... and stops when the
// total data-loading time no longer falls (or runs exactly --workers=0,1,2,4). For each count
// it reports total runtime and total data-loading time over the epochs, then names the best
// count for each, as the lab did.
//
// Our workers are threads sharing one in-memory dataset; the lab's were processes, each with a
// copy of the dataset, that pickled batches back through shared memory. Threads start in
// microseconds and hand over a pointer, so the curve here is flatter and its optimum smaller.
//
//   bazel run //experiments:c3 -- --max_batches_per_epoch=10 --epochs=1
#include <cinttypes>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "experiments/common.h"

DEFINE_string(workers, "", "Worker counts to run, e.g. 0,1,2,4 (default: 0, 4, 8, ... until data loading stops improving).");
DEFINE_int32(max_workers, 64, "Upper bound of the automatic sweep.");

int main(int argc, char** argv) {
  using namespace trainlab::experiments;
  using trainlab::EpochStats;
  return RunMain(argc, argv, "C3: sweeps the number of loader workers.", [] {
    std::vector<int> counts;
    if (!FLAGS_workers.empty()) {
      TRAINLAB_ASSIGN_OR_RETURN(std::vector<std::string> items, SplitList("workers", FLAGS_workers));
      for (const std::string& s : items) {
        int n = -1;
        if (!absl::SimpleAtoi(s, &n) || n < 0) {
          return absl::InvalidArgumentError(absl::StrCat("--workers=", FLAGS_workers, ": '", s, "' is not a worker count >= 0"));
        }
        counts.push_back(n);
      }
    }
    TRAINLAB_ASSIGN_OR_RETURN(Setup setup, Setup::FromFlags());
    std::printf("Note: loader workers are threads sharing one in-memory dataset (the lab's were processes,\n"
                "each with its own copy); see README, 'What the numbers mean'.\n");
    std::vector<std::pair<int, RunResult>> runs;
    const bool automatic = counts.empty();
    for (int i = 0;; ++i) {
      int n;
      if (automatic) {
        n = 4 * i;
        if (n > FLAGS_max_workers) break;
        if (runs.size() >= 2) {
          const double prev = runs[runs.size() - 2].second.total(&EpochStats::load_s);
          const double last = runs.back().second.total(&EpochStats::load_s);
          if (last >= prev) break;  // data loading stopped falling
        }
      } else {
        if (i >= static_cast<int>(counts.size())) break;
        n = counts[i];
      }
      RunConfig c = setup.DefaultRun();
      c.num_workers = n;
      c.label = absl::StrCat(n, " workers");
      std::printf("\n##### num_workers=%d #####\n", n);
      TRAINLAB_ASSIGN_OR_RETURN(RunResult r, RunTraining(setup, c));
      runs.emplace_back(n, std::move(r));
    }
    std::printf("\n===== C3: worker sweep (totals over %d epochs) =====\n", FLAGS_epochs);
    std::printf("%8s %16s %22s\n", "workers", "total runtime", "total data loading");
    int best_run = -1, best_load = -1;
    for (size_t i = 0; i < runs.size(); ++i) {
      const RunResult& r = runs[i].second;
      std::printf("%8d %16s %22s\n", runs[i].first, FormatSeconds(r.total_s).c_str(),
                  FormatSeconds(r.total(&EpochStats::load_s)).c_str());
      if (best_run < 0 || r.total_s < runs[best_run].second.total_s) best_run = static_cast<int>(i);
      if (best_load < 0 || r.total(&EpochStats::load_s) < runs[best_load].second.total(&EpochStats::load_s)) {
        best_load = static_cast<int>(i);
      }
    }
    std::printf("Best for total runtime: %d workers\n", runs[best_run].first);
    std::printf("Best for data loading: %d workers\n", runs[best_load].first);
    return setup.Finish();
  });
}
