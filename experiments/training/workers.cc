#include "experiments/training/workers.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/host.h"
#include "core/status_macros.h"
#include "experiments/results/json_reader.h"
#include "experiments/results/results_file.h"

namespace trainlab::experiments {

namespace {

absl::StatusOr<std::optional<int>> ReadC3BestWorkers(const Session& session) {
  if (session.options.results_dir.empty()) return std::optional<int>();
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<ResultsFile> c3,
                            ReadResultsFile(session.ResultsDir(), "c3"));
  if (!c3) return std::optional<int>();
  const JsonReader summary(c3->result.summary, "summary");
  // The range c3_report.cc checks: -1 when no worker count ran (an empty sweep): no best then.
  absl::StatusOr<int64_t> best = summary.Int("best_workers_total", -1, kMaxThreads);
  if (!best.ok()) {
    return absl::DataLossError(
        absl::StrCat(ResultsJsonPath(session.ResultsDir(), "c3"), ": ", best.status().message()));
  }
  if (*best < 0) return std::optional<int>();
  return std::optional<int>(static_cast<int>(*best));
}

}  // namespace

absl::StatusOr<std::optional<int>> C3BestWorkers(const Session& session) {
  // Data-parallel: rank 0 reads its --results_dir (the others have none) and every rank takes
  // its answer, so that all run the same trainings: -1 for none, -2 for an error on rank 0.
  absl::StatusOr<std::optional<int>> mine = std::optional<int>();
  if (session.writes()) mine = ReadC3BestWorkers(session);
  if (!session.comm) return mine;
  const int64_t code = !mine.ok() ? -2 : mine->has_value() ? **mine : -1;
  TRAINLAB_ASSIGN_OR_RETURN(const int64_t shared, session.FromRank0(code));
  if (!mine.ok()) return mine.status();
  if (shared == -2)
    return absl::DataLossError("rank 0 could not read C3's results (its error above)");
  if (shared == -1) return std::optional<int>();
  return std::optional<int>(static_cast<int>(shared));
}

absl::StatusOr<WorkerChoice> ChooseWorkers(const Session& session) {
  const ExperimentOptions& c = session.options;
  if (c.IsGiven("num_workers")) return WorkerChoice{c.run.num_workers, "from --num_workers"};
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<int> best, C3BestWorkers(session));
  if (best) {
    return WorkerChoice{*best, absl::StrCat("C3's best for total runtime, from ",
                                            session.ResultsDir(), "/c3.json")};
  }
  return WorkerChoice{c.run.num_workers,
                      absl::StrCat("--num_workers' default (no C3 results",
                                   c.results_dir.empty() ? "" : " in --results_dir", ")")};
}

absl::StatusOr<RunConfig> RunWithChosenWorkers(const Session& session, WorkerChoice* chosen) {
  TRAINLAB_ASSIGN_OR_RETURN(WorkerChoice workers, ChooseWorkers(session));
  std::printf("Loader workers: %d (%s)\n", workers.workers, workers.source.c_str());
  RunConfig run = session.DefaultRun();
  run.num_workers = workers.workers;
  if (chosen != nullptr) *chosen = workers;
  return run;
}

}  // namespace trainlab::experiments
