// C6: the lab's optimizer comparison. Trains ResNet-18 with each optimizer in turn (the lab's
// settings: lr 0.1, weight decay 5e-4, momentum 0.9 where it applies), prints each run's
// per-epoch blocks, then the recap (recap.h): average training time per epoch, average loss and
// average top-1, and a ranking by each. A run whose loss becomes NaN or infinite is reported as
// diverged at that epoch and batch, and the next optimizer runs.
//
//   bazel run //experiments:c6 -- --max_batches_per_epoch=10 --epochs=2 --optimizers=sgd,adam
#include <gflags/gflags.h>

#include "absl/strings/str_cat.h"
#include "core/optimizer.h"
#include "core/status_macros.h"
#include "experiments/harness/experiment.h"
#include "experiments/training/run.h"
#include "experiments/training/workers.h"

DEFINE_string(optimizers, "sgd,sgd_nesterov,adagrad,adadelta,adam",
              "Optimizers to compare, in order.");

namespace trainlab::experiments {
namespace {

struct C6Flags {
  std::vector<std::string> optimizers;  // each an OptimizerRegistry name
};

absl::StatusOr<C6Flags> ReadC6Flags(const FlagValues& f) {
  C6Flags c;
  TRAINLAB_ASSIGN_OR_RETURN(c.optimizers, f.List("optimizers"));
  for (const std::string& name : c.optimizers) {  // all known before any trains
    TRAINLAB_RETURN_IF_ERROR(OptimizerRegistry::Global().Find(name).status());
  }
  return c;
}

absl::StatusOr<ExperimentResult> RunC6(Session& session, const C6Flags& flags) {
  TRAINLAB_ASSIGN_OR_RETURN(const RunConfig base, RunWithChosenWorkers(session));
  ExperimentResult result;
  for (const std::string& name : flags.optimizers) {
    Variant v{.label = name,
              .header = absl::StrCat("Optimizer: ", name),
              .config = base,
              .params = {{"optimizer", name}}};
    v.config.optimizer = name;
    TRAINLAB_ASSIGN_OR_RETURN(VariantResult r, RunVariant(session, v));
    result.variants.push_back(std::move(r));
  }
  return result;
}

const bool kRegistered = RegisterExperiment<C6Flags>(
    "c6",
    {.usage = "c6: compares optimizers on ResNet-18 (C6): each run's blocks, then a recap and "
              "rankings.",
     .flags = {"optimizers"}},
    ReadC6Flags, RunC6);

}  // namespace
}  // namespace trainlab::experiments
