// An experiment of the lab, registered by name like the plugins: the flags it takes (its
// FlagSpec, with its defaults and profiles) and the function that runs it in a Session and
// returns its result. Its title, question and section are its report part
// (experiment_report.h), registered under the same name. The binaries c2 ... c8 and q1_q4 are
// each main.cc with a name; the `all` driver runs them all in one process.
//
// Example (experiments/c7.cc):
//   absl::StatusOr<ExperimentResult> RunC7(Session& session) { ... }
//   const bool kRegistered = ExperimentRegistry::Global().Register(
//       "c7", {.cli = {.usage = "c7: ..."}, .run = RunC7});
#ifndef TRAINLAB_EXPERIMENTS_EXPERIMENT_H_
#define TRAINLAB_EXPERIMENTS_EXPERIMENT_H_

#include <functional>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/registry.h"
#include "experiments/options.h"
#include "experiments/result.h"
#include "experiments/session.h"

namespace trainlab::experiments {

struct Experiment {
  static constexpr std::string_view kKind = "experiment";
  FlagSpec cli;
  std::function<absl::StatusOr<ExperimentResult>(Session&)> run;
};
using ExperimentRegistry = Registry<Experiment>;

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_EXPERIMENT_H_
