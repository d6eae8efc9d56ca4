// An experiment of the lab, registered by name like the plugins: its --help text, the flags it
// takes, and the function that runs it in a Session and returns its results. The binaries c2 ...
// c8 and q1_q4 are each main.cc with a name; the `all` driver runs them all in one process.
//
// Example (experiments/c7.cc):
//   absl::StatusOr<ExperimentResult> RunC7(Session& session) { ... }
//   const bool kRegistered = ExperimentRegistry::Global().Register(
//       "c7", {.usage = "c7: ...", .run = RunC7});
#ifndef TRAINLAB_EXPERIMENTS_EXPERIMENT_H_
#define TRAINLAB_EXPERIMENTS_EXPERIMENT_H_

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/registry.h"
#include "experiments/run.h"
#include "experiments/session.h"

namespace trainlab::experiments {

struct Experiment {
  static constexpr std::string_view kKind = "experiment";
  std::string usage;               // --help's first lines
  bool trains = true;              // takes the training flags and needs the data
  std::vector<std::string> flags;  // its own flags, beyond the training ones
  std::vector<std::pair<std::string, std::string>> defaults;  // flag defaults of its own
  std::function<absl::StatusOr<ExperimentResult>(Session&)> run;
};
using ExperimentRegistry = Registry<Experiment>;

// The lab's order: what `all` runs and REPORT.md lists.
inline const std::vector<std::string>& LabOrder() {
  static const auto* order =
      new std::vector<std::string>{"c2", "c3", "c4", "c5", "c6", "c7", "c8", "q1_q4"};
  return *order;
}

// Runs `body`, turning a LibTorch or other exception into an absl::Status (the one error model
// below main()).
absl::Status Guarded(const std::function<absl::Status()>& body);

// Prints "<program>: error: <message>" (one line) to stderr; returns 1.
int ReportError(const std::string& program, const absl::Status& status);

// The exit code for `status`: 0; 128 + the signal for a stop by SIGINT/SIGTERM (after saying
// where the checkpoint is and how to resume); else 1, after ReportError.
int ExitCode(const std::string& program, const absl::Status& status, const Session* session);

// main() of an experiment binary: reads the flags, starts the session, runs the experiment,
// writes its results and trace. Any error is one line on stderr and exit code 1.
int ExperimentMain(int argc, char** argv, const std::string& name);

// Runs a registered experiment in `session` and writes its results (the `all` driver).
absl::StatusOr<ExperimentResult> RunAndWrite(const std::string& name, Session& session);

// C3's best worker count for total runtime, from --results_dir/c3.json; nullopt when there is
// no --results_dir or no c3.json in it.
absl::StatusOr<std::optional<int>> C3BestWorkers(const Session& session);

// The loader worker count c5-c8 train with, and where it came from: --num_workers when given,
// else C3's best (C3BestWorkers), else --num_workers' default.
struct WorkerChoice {
  int workers = 2;
  std::string source;  // a sentence for the output and the results
};
absl::StatusOr<WorkerChoice> ChooseWorkers(const Session& session);

// The session's default run with ChooseWorkers' count, after printing "Loader workers: N (why)".
absl::StatusOr<RunConfig> RunWithChosenWorkers(const Session& session,
                                               WorkerChoice* chosen = nullptr);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_EXPERIMENT_H_
