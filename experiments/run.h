// Running: one training run (RunTraining), one configuration run --repeats times (RunVariant),
// and what an experiment hands back (ExperimentResult), which the lab's tables, the JSON results
// and REPORT.md are all rendered from.
//
// Example (c7, in full):
//   ExperimentResult result;
//   for (bool bn : {true, false}) {
//     Variant v{.label = bn ? "sgd with BN" : "sgd without BN", .config = session.DefaultRun()};
//     v.config.model = bn ? "resnet18" : "resnet18_no_bn";
//     TRAINLAB_ASSIGN_OR_RETURN(ConfigResult r, RunVariant(session, v));
//     result.configs.push_back(std::move(r));
//   }
//   PrintRecap(result.configs);
#ifndef TRAINLAB_EXPERIMENTS_RUN_H_
#define TRAINLAB_EXPERIMENTS_RUN_H_

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/stats.h"
#include "experiments/config.h"
#include "experiments/run_result.h"
#include "experiments/session.h"
#include "experiments/spread.h"
#include "plugins/data/loader.h"

namespace trainlab::experiments {

// One configuration of an experiment ("4 workers", "adam", "channels_last").
struct Variant {
  std::string label;
  std::string header;  // the "##### ... #####" line before its blocks; empty: the label
  RunConfig config;
  nlohmann::json params = nlohmann::json::object();  // what distinguishes it: {"num_workers": 4}
  bool announce = true;  // print the header line (c2, a single run, prints none)
};

// A configuration's runs (one per repeat), or why it could not run.
struct ConfigResult {
  std::string label;
  RunConfig config;
  nlohmann::json params = nlohmann::json::object();
  std::vector<RunResult> repeats;
  std::string
      skipped;  // non-empty: the reason it did not run (c8's strategies that cannot run here)

  // `metric` of each repeat, as median and range.
  Spread Of(const std::function<double(const RunResult&)>& metric) const;
  Spread MeanOf(double EpochStats::*field) const;   // per repeat: mean over its epochs
  Spread TotalOf(double EpochStats::*field) const;  // per repeat: sum over its epochs
  bool diverged() const;
};

// What an experiment produced: its configurations' runs and the answers it drew from them.
struct ExperimentResult {
  std::vector<ConfigResult> configs;
  nlohmann::json summary = nlohmann::json::object();  // e.g. {"best_workers_total": 4}
  std::vector<std::string> notes;                     // sentences the report repeats
};

// Trains `config.epochs` epochs, printing the lab's block per epoch when asked. A NaN or infinite
// loss ends the run early with RunResult::diverged set (not an error).
absl::StatusOr<RunResult> RunTraining(const Session& session, const RunConfig& config,
                                      int repeat = 1);

// Prints "##### <label> #####" and runs `variant` --repeats times. With `skip_on_error`, a run
// that fails (a strategy that cannot run here) is returned with `skipped` set instead.
absl::StatusOr<ConfigResult> RunVariant(const Session& session, const Variant& variant,
                                        bool skip_on_error = false);

// The lab's recap of several configurations (C6, C7): average training time per epoch, average
// loss and average top-1 over the epochs (medians over repeats), then a ranking by each.
void PrintRecap(const std::vector<ConfigResult>& configs);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_RUN_H_
