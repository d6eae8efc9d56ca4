// The lab's procedure for the epochs of one run, batch by batch, in one place (epoch.cc):
//
//   per batch   1. schedule    the rate of this global step, set on the optimizer
//               2. train       fetch, copy, step, record: Trainer::TrainBatch, timed as the lab
//                              times it (core/trainer.h)
//               3. progress    the progress line
//               4. agree       data-parallel: any rank's divergence or stop is every rank's
//               5. diverged?   a NaN or infinite loss ends the run (not an error)
//               6. checkpoint  every --checkpoint_every batches, and before a stop
//               7. stop?       Ctrl-C / SIGTERM: after the batch under way, checkpoint written
//   per epoch   loss and top-1 over every rank; the loader's stage times; evaluate (--evaluate)
//               with --tta; keep the best weights (--keep_best); print the lab's block; stop at
//               --target_accuracy; checkpoint; stop?
//
// Example (run.cc):
//   TRAINLAB_ASSIGN_OR_RETURN(Training t, BuildTraining(session, config));
//   TRAINLAB_RETURN_IF_ERROR(TrainEpochs(session, config, key, t, result, 0, std::nullopt));
#ifndef TRAINLAB_EXPERIMENTS_TRAINING_EPOCH_H_
#define TRAINLAB_EXPERIMENTS_TRAINING_EPOCH_H_

#include <torch/optim/optimizer.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "core/lr_schedule.h"
#include "core/model.h"
#include "core/optimizer.h"
#include "core/step.h"
#include "experiments/checkpoint/checkpointer.h"
#include "experiments/harness/run_config.h"
#include "experiments/harness/session.h"
#include "experiments/results/result.h"
#include "experiments/tensorboard/board.h"
#include "plugins/data/loader.h"

namespace trainlab::experiments {

// What one run trains with, built and checked before its first batch (run.cc: BuildTraining).
struct Training {
  std::shared_ptr<ClassifierImpl> model;
  const OptimizerEntry* optimizer_entry = nullptr;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  StepOptions step;
  std::unique_ptr<data::BatchLoader> loader, test_loader;
  std::optional<LrSchedule> schedule;
  std::unique_ptr<RunBoard> board;  // --tensorboard_dir (rank 0), or null
};

// Epochs [first_epoch, config.epochs) of the run, appended to `result`; `partial` is the epoch a
// checkpoint stopped in. A stop asked for ends it after the batch under way (Cancelled, with the
// checkpoint written), except after an epoch's last batch: then the epoch finishes, and the stop
// takes effect before the next.
absl::Status TrainEpochs(const Session& session, const RunConfig& config, const RunKey& key,
                         Training& t, RunResult& result, int64_t first_epoch,
                         std::optional<EpochStats> partial);

// An epoch's block, its divergence and test lines, as a run prints them (when
// config.print_blocks).
void PrintEpoch(const RunConfig& config, const EpochStats& stats, const EvalStats* test);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_TRAINING_EPOCH_H_
