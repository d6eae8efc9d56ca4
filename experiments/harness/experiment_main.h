// What every experiment binary does around its experiment: read the flags, start the session,
// run, print the section, write the results and the trace; and the one error boundary: any error
// is one line on stderr and exit code 1, a stop by SIGINT/SIGTERM exits 128 + the signal after
// saying where the checkpoint is and how to resume.
//
// Example (main.cc):
//   int main(int argc, char** argv) { return ExperimentMain(argc, argv, "c3"); }
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_EXPERIMENT_MAIN_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_EXPERIMENT_MAIN_H_

#include <string>

#include "absl/status/statusor.h"
#include "experiments/harness/session.h"
#include "experiments/results/result.h"

namespace trainlab::experiments {

// Runs experiment `name` in `session`: its result, the figures its report keeps in the summary,
// its section printed at the end (the tables REPORT.md shows), and its results files written
// when --results_dir is set (by the process that writes: rank 0).
absl::StatusOr<ExperimentResult> RunAndWrite(const std::string& name, Session& session);

// The exit code for `status`: 0; 128 + the signal for a stop by SIGINT/SIGTERM (after saying
// where the checkpoint is and how to resume, shell-quoted); else 1, after ReportError.
int ExitCode(const std::string& program, const absl::Status& status, const Session* session);

// main() of an experiment binary.
int ExperimentMain(int argc, char** argv, const std::string& name);

// `arg` quoted for a POSIX shell when it needs it: 'a b' -> "'a b'", it's -> 'it'\''s'.
std::string ShellQuote(const std::string& arg);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_EXPERIMENT_MAIN_H_
