// C2: train ResNet-18 and print, per epoch, the lab's block: loss, top-1 accuracy, time waiting
// for data, training time (forward, loss, backward, optimizer step, synchronized), average
// training time per batch and total epoch time. Its section (c2_report.cc) adds the share of
// the epoch spent waiting for data.
//
// With --save_model=FILE the trained weights are written as a PyTorch state_dict.
//
//   bazel run //experiments:c2 -- --max_batches_per_epoch=20 --epochs=3
#include "core/status_macros.h"
#include "experiments/harness/experiment.h"
#include "experiments/training/run.h"

namespace trainlab::experiments {
namespace {

absl::StatusOr<ExperimentResult> RunC2(Session& session) {
  const RunConfig run = session.DefaultRun();
  TRAINLAB_ASSIGN_OR_RETURN(
      VariantResult v,
      RunVariant(session, {.label = run.optimizer, .config = run, .announce = false}));
  ExperimentResult result;
  result.variants.push_back(std::move(v));
  return result;
}

const bool kRegistered = RegisterExperiment(
    "c2",
    {.usage = "c2: trains ResNet-18 and prints the lab's per-epoch summary (C2).\n"
              "  c2 [--dataset=auto|cifar10|fashion_mnist|synthetic] [--data_dir=DIR] "
              "[--epochs=5]\n"
              "     [--max_batches_per_epoch=N] [--model=NAME] [--save_model=FILE] ...",
     .flags = {"save_model", "keep_best"}},
    RunC2);

}  // namespace
}  // namespace trainlab::experiments
