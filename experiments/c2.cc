// C2: train ResNet-18 and print, per epoch, the lab's block: loss, top-1 accuracy, time waiting
// for data, training time (forward, loss, backward, optimizer step, synchronized), average
// training time per batch and total epoch time.
//
// With --save_model=FILE the trained weights are written as a PyTorch state_dict.
//
//   bazel run //experiments:c2 -- --max_batches_per_epoch=20 --epochs=3
#include <cstdio>

#include "core/status_macros.h"
#include "experiments/experiment.h"

namespace trainlab::experiments {
namespace {

absl::StatusOr<ExperimentResult> RunC2(Session& session) {
  ExperimentResult result;
  const RunConfig run = session.DefaultRun();
  TRAINLAB_ASSIGN_OR_RETURN(
      ConfigResult c,
      RunVariant(session, {.label = run.optimizer, .config = run, .announce = false}));
  const RunResult& r = c.repeats.front();
  std::printf("Recap: %zu epochs, mean epoch %s, mean data loading %s (%.2f%% of the epoch)\n",
              r.epochs.size(), FormatSeconds(r.mean(&EpochStats::epoch_s)).c_str(),
              FormatSeconds(r.mean(&EpochStats::load_s)).c_str(),
              100.0 * r.total(&EpochStats::load_s) / r.total(&EpochStats::epoch_s));
  result.summary["mean_epoch_s"] = c.MeanOf(&EpochStats::epoch_s).median;
  result.summary["data_loading_share"] =
      r.total(&EpochStats::load_s) / r.total(&EpochStats::epoch_s);
  result.configs.push_back(std::move(c));
  return result;
}

const bool kRegistered = ExperimentRegistry::Global().Register(
    "c2",
    {.usage =
         "c2: trains ResNet-18 and prints the lab's per-epoch summary (C2).\n"
         "  c2 [--dataset=auto|cifar10|fashion_mnist|synthetic] [--data_dir=DIR] [--epochs=5]\n"
         "     [--max_batches_per_epoch=N] [--model=NAME] [--save_model=FILE] ...",
     .flags = {"save_model"},
     .run = RunC2});

}  // namespace
}  // namespace trainlab::experiments
