// The loader worker count C4-C8 train with, and where it came from: --num_workers when given,
// else C3's best for total runtime from --results_dir/c3.json (checked: an integer in range, or
// one error line naming the file and the field), else --num_workers' default.
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(RunConfig base, RunWithChosenWorkers(session));  // prints the choice
#ifndef TRAINLAB_EXPERIMENTS_TRAINING_WORKERS_H_
#define TRAINLAB_EXPERIMENTS_TRAINING_WORKERS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/harness/run_config.h"
#include "experiments/harness/session.h"

namespace trainlab::experiments {

// C3's best worker count for total runtime, from --results_dir/c3.json; nullopt when there is
// no --results_dir or no c3.json in it.
absl::StatusOr<std::optional<int>> C3BestWorkers(const Session& session);

struct WorkerChoice {
  int workers = 2;
  std::string source;  // a sentence for the output and the results
};
absl::StatusOr<WorkerChoice> ChooseWorkers(const Session& session);

// The session's default run with ChooseWorkers' count, after printing "Loader workers: N (why)".
absl::StatusOr<RunConfig> RunWithChosenWorkers(const Session& session,
                                               WorkerChoice* chosen = nullptr);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_TRAINING_WORKERS_H_
