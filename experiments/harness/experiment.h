// An experiment of the lab, registered by name like the plugins: the flags it takes (its
// FlagSpec, with its defaults and presets), how it reads its own flags into its own struct, and
// the function that runs it in a Session and returns its result. Its title, question and section
// are its report part (reporting/experiment_report.h), registered under the same name. The
// binaries c2 ... c8 and q1_q4 are each main.cc with a name; the `all` driver runs them all in one
// process.
//
// Example (experiments/lab/c6.cc, in outline):
//   DEFINE_string(optimizers, "sgd,sgd_nesterov,adagrad,adadelta,adam", "...");  // its own flag
//   struct C6Flags { std::vector<std::string> optimizers; };
//   absl::StatusOr<C6Flags> ReadC6Flags(const FlagValues& f) { ... f.List("optimizers") ... }
//   absl::StatusOr<ExperimentResult> RunC6(Session& session, const C6Flags& flags) { ... }
//   const bool kRegistered = RegisterExperiment<C6Flags>(
//       "c6", {.usage = "c6: ...", .flags = {"optimizers"}}, ReadC6Flags, RunC6);
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_EXPERIMENT_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_EXPERIMENT_H_

#include <any>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/registry.h"
#include "experiments/harness/options.h"
#include "experiments/harness/session.h"
#include "experiments/results/result.h"

namespace trainlab::experiments {

struct Experiment {
  static constexpr std::string_view kKind = "experiment";
  FlagSpec cli;  // its flags; cli.read_own reads its own into ExperimentOptions::own
  std::function<absl::StatusOr<ExperimentResult>(Session&)> run;
};
using ExperimentRegistry = Registry<Experiment>;

// Registers experiment `name` whose own flags (`cli.flags`, defined in its file) `read` turns
// into its struct `Flags`, checked before anything starts; `run` gets that struct, typed.
template <class Flags>
bool RegisterExperiment(const std::string& name, FlagSpec cli,
                        absl::StatusOr<Flags> (*read)(const FlagValues&),
                        absl::StatusOr<ExperimentResult> (*run)(Session&, const Flags&)) {
  cli.read_own = [read](const FlagValues& values) -> absl::StatusOr<std::any> {
    absl::StatusOr<Flags> flags = read(values);
    if (!flags.ok()) return flags.status();
    return std::any(*std::move(flags));
  };
  const std::vector<std::string> own_flags = cli.flags;
  return ExperimentRegistry::Global().Register(
      name, {.cli = std::move(cli), .run = [run, read, own_flags](Session& session) {
               // Options made by hand (a test's), without SetOwnFlags: the flags' defaults.
               if (!session.options.own.has_value()) {
                 absl::StatusOr<Flags> flags = read(FlagValues::Current(own_flags));
                 if (!flags.ok()) return absl::StatusOr<ExperimentResult>(flags.status());
                 session.options.own = *std::move(flags);
               }
               return run(session, std::any_cast<const Flags&>(session.options.own));
             }});
}

// For options made by hand (tests): experiment `options.experiment`'s own flags at their defaults
// but for those in `set` (as if typed: {{"profile_steps", "1"}}), read and checked into
// `options.own` as ReadOptions would.
inline absl::Status SetOwnFlags(ExperimentOptions& options,
                                const std::map<std::string, std::string>& set) {
  absl::StatusOr<const Experiment*> e = ExperimentRegistry::Global().Find(options.experiment);
  if (!e.ok()) return e.status();
  FlagValues values = FlagValues::Current((*e)->cli.flags);
  for (const auto& [flag, text] : set) {
    if (!values.has(flag)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " is not a flag of ", options.experiment));
    }
    values.Set(flag, text);
  }
  if (!(*e)->cli.read_own) return absl::OkStatus();
  absl::StatusOr<std::any> own = (*e)->cli.read_own(values);
  if (!own.ok()) return own.status();
  options.own = *std::move(own);
  return absl::OkStatus();
}

// Registers experiment `name` that takes no flags of its own.
inline bool RegisterExperiment(const std::string& name, FlagSpec cli,
                               absl::StatusOr<ExperimentResult> (*run)(Session&)) {
  return ExperimentRegistry::Global().Register(name, {.cli = std::move(cli), .run = run});
}

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_EXPERIMENT_H_
