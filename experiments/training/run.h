// Running: one training run (RunTraining: what it trains with, built and checked, then its epochs
// as epoch.h's procedure) and one variant of an experiment run --repeats times (RunVariant), each
// returning the result model's data (results/result.h).
//
// Example (lab/c7.cc's loop):
//   TRAINLAB_ASSIGN_OR_RETURN(const RunConfig base, RunWithChosenWorkers(session));
//   for (bool bn : {true, false}) {
//     Variant v{.label = absl::StrCat(base.optimizer, bn ? " with BN" : " without BN"),
//               .config = base, .params = {{"batch_norm", bn}}};
//     v.config.model = bn ? "resnet18" : "resnet18_no_bn";
//     TRAINLAB_ASSIGN_OR_RETURN(VariantResult r, RunVariant(session, v));
//     result.variants.push_back(std::move(r));
//   }
#ifndef TRAINLAB_EXPERIMENTS_TRAINING_RUN_H_
#define TRAINLAB_EXPERIMENTS_TRAINING_RUN_H_

#include <nlohmann/json.hpp>

#include <torch/optim/optimizer.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/model.h"
#include "core/optimizer.h"
#include "experiments/harness/run_config.h"
#include "experiments/harness/session.h"
#include "experiments/results/result.h"

namespace trainlab::experiments {

// One variant of an experiment ("4 workers", "adam", "channels_last").
struct Variant {
  std::string label;
  std::string header;  // the "##### ... #####" line before its blocks; empty: the label
  RunConfig config;
  nlohmann::json params = nlohmann::json::object();  // what distinguishes it: {"num_workers": 4}
  bool announce = true;  // print the header line (c2, a single run, prints none)
};

// Trains `config.epochs` epochs, printing the lab's block per epoch when asked. A NaN or
// infinite loss ends the run early with RunResult::diverged set (not an error). Before it
// allocates anything it checks that the run fits in the machine's memory.
absl::StatusOr<RunResult> RunTraining(const Session& session, const RunConfig& config,
                                      int repeat = 1);

// What every run trains, and the profile times: the model (built from the seed, or loaded from
// its file) on the run's device and the optimizer over its parameters, after checking that the
// run fits in the memory this machine has left (the error names both figures).
struct ModelAndOptimizer {
  std::shared_ptr<ClassifierImpl> model;
  const OptimizerEntry* optimizer_entry = nullptr;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
};
absl::StatusOr<ModelAndOptimizer> BuildModelAndOptimizer(const Session& session,
                                                         const RunConfig& config);

// `variant` listed as not run here, with the reason (a strategy that cannot run on this device, a
// batch larger than the data): its results record it, its section lists it.
VariantResult SkippedVariant(const Variant& variant, std::string reason);

// Prints "##### <label> #####" and runs `variant` --repeats times. With `can_skip`, a variant
// whose compile strategy cannot run here (core/step.h: IsStrategyCannotRun) is returned with
// `skipped` set; every other error is returned as it is. A stop asked for (Ctrl-C) between runs
// ends it before the next one starts.
absl::StatusOr<VariantResult> RunVariant(const Session& session, const Variant& variant,
                                         bool can_skip = false);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_TRAINING_RUN_H_
