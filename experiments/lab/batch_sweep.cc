// batch_sweep: what the batch size does to speed and accuracy. Trains the same model for the same
// epochs at each of --batch_sizes, the learning rate scaled linearly with the batch (--lr at
// --lr_base_batch; at batch B, lr x B / lr_base_batch) and warmed up linearly over the first
// --warmup_epochs (one by default here), as Goyal et al. 2017 ("Accurate, Large Minibatch SGD")
// train large batches; every epoch is evaluated on the test set. Its section
// (batch_sweep_report.cc): training time per image, images per second, epoch time and top-1 per
// batch, and the batch that trains fastest per image with what it costs in accuracy.
//
//   bazel run //experiments:batch_sweep -- --epochs=2 --max_batches_per_epoch=20
//
// With --max_batches_per_epoch each batch size sees that many batches, so larger batches train on
// more images per epoch: time per image stays comparable, accuracy after N epochs less so.
#include <gflags/gflags.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experiments/harness/experiment.h"
#include "experiments/training/run.h"
#include "experiments/training/workers.h"

DEFINE_string(batch_sizes, "32,64,128,256,512", "Batch sizes to train at, in order.");
DEFINE_int64(lr_base_batch, 128,
             "The batch --lr is for: at batch B the rate is lr x B / this (0: --lr at every B).");

namespace trainlab::experiments {
namespace {

struct BatchSweepFlags {
  std::vector<int64_t> batch_sizes;
  int64_t lr_base_batch = 128;  // 0: no scaling
};

// The largest batch a flag may ask for (past it, a typo would ask for terabytes; the run's memory
// check refuses what this machine cannot hold well before).
constexpr int64_t kMaxBatch = 1 << 20;

absl::StatusOr<BatchSweepFlags> ReadBatchSweepFlags(const FlagValues& f) {
  BatchSweepFlags b;
  TRAINLAB_ASSIGN_OR_RETURN(b.batch_sizes, f.IntList("batch_sizes", 1, kMaxBatch, "a batch size"));
  TRAINLAB_ASSIGN_OR_RETURN(b.lr_base_batch, f.IntIn("lr_base_batch", 0, kMaxBatch));
  return b;
}

absl::StatusOr<ExperimentResult> RunBatchSweep(Session& session, const BatchSweepFlags& flags) {
  TRAINLAB_ASSIGN_OR_RETURN(const RunConfig base, RunWithChosenWorkers(session));
  const double lr = base.optimizer_settings.lr;
  std::printf(
      "Learning rate: %s, warm-up over %g epochs\n",
      flags.lr_base_batch > 0
          ? absl::StrCat(lr, " x batch / ", flags.lr_base_batch, " (linear scaling)").c_str()
          : absl::StrCat(lr, " at every batch size").c_str(),
      base.warmup_epochs);
  ExperimentResult result;
  for (const int64_t b : flags.batch_sizes) {
    const double scaled = flags.lr_base_batch > 0 ? lr * static_cast<double>(b) /
                                                        static_cast<double>(flags.lr_base_batch)
                                                  : lr;
    Variant v{.label = absl::StrCat("batch ", b),
              .header = absl::StrCat("Batch size ", b, ", lr ", scaled),
              .config = base,
              .params = {{"batch_size", b}, {"lr", scaled}}};
    v.config.batch_size = b;
    v.config.optimizer_settings.lr = scaled;
    if (b > session.train->size) {  // a batch the data cannot fill once
      result.variants.push_back(SkippedVariant(
          v, absl::StrCat("larger than the training set (", session.train->size, " images)")));
      std::printf("Batch size %lld skipped: %s\n", static_cast<long long>(b),
                  result.variants.back().skipped.c_str());
      continue;
    }
    TRAINLAB_ASSIGN_OR_RETURN(VariantResult r, RunVariant(session, v));
    result.variants.push_back(std::move(r));
  }
  return result;
}

const bool kRegistered = RegisterExperiment<BatchSweepFlags>(
    "batch_sweep",
    {.usage = "batch_sweep: trains at each --batch_sizes with the rate scaled linearly and a "
              "warm-up: time per\n"
              "image, epoch time and top-1 per batch; the fastest batch and what it costs in "
              "accuracy.",
     .flags = {"batch_sizes", "lr_base_batch"},
     .defaults = {{"evaluate", "true"}, {"warmup_epochs", "1"}},
     // `all --preset=quick`: three sizes that fit a 2-core machine's quick run.
     .presets = {{"quick", {{"batch_sizes", "16,32,64"}, {"max_batches_per_epoch", "4"}}}}},
    ReadBatchSweepFlags, RunBatchSweep);

}  // namespace
}  // namespace trainlab::experiments
