// C7: SGD on ResNet-18 with and without batch norm, each run's per-epoch blocks, then the
// same recap as C6 (recap.h).
//
//   bazel run //experiments:c7 -- --max_batches_per_epoch=10 --epochs=2
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experiments/harness/experiment.h"
#include "experiments/training/run.h"
#include "experiments/training/workers.h"

namespace trainlab::experiments {
namespace {

absl::StatusOr<ExperimentResult> RunC7(Session& session) {
  if (session.options.run.model != "resnet18") {
    return absl::InvalidArgumentError(absl::StrCat(
        "c7 compares resnet18 with resnet18_no_bn; --model=", session.options.run.model,
        " (or --nobatch_norm) does not apply"));
  }
  TRAINLAB_ASSIGN_OR_RETURN(const RunConfig base, RunWithChosenWorkers(session));
  ExperimentResult result;
  for (bool bn : {true, false}) {
    Variant v{.label = absl::StrCat(base.optimizer, bn ? " with BN" : " without BN"),
              .config = base,
              .params = {{"batch_norm", bn}}};
    v.config.model = bn ? "resnet18" : "resnet18_no_bn";
    TRAINLAB_ASSIGN_OR_RETURN(VariantResult r, RunVariant(session, v));
    result.variants.push_back(std::move(r));
  }
  return result;
}

const bool kRegistered = RegisterExperiment(
    "c7",
    {.usage = "c7: ResNet-18 with and without batch norm (C7), then the same recap "
              "as c6."},
    RunC7);

}  // namespace
}  // namespace trainlab::experiments
