#include "experiments/training/epoch.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/nvtx.h"
#include "core/profiling/nvtx_layers.h"
#include "core/status_macros.h"
#include "core/trainer.h"
#include "experiments/harness/progress.h"
#include "experiments/harness/stop.h"
#include "plugins/distributed/data_parallel.h"
#include "plugins/models/state_dict.h"

namespace trainlab::experiments {
namespace {

using RunTrainer = Trainer<ClassifierImpl, torch::optim::Optimizer, data::BatchLoader>;

// What a batch decides about the rest of the run; data-parallel, the same on every rank.
struct BatchVerdict {
  bool diverged = false;  // a NaN or infinite loss (on some rank)
  int stop_signal = 0;    // a signal asked for a stop after this batch (on some rank), or 0
};

// This rank's verdict on the batch just trained, and data-parallel the job's: any rank's
// divergence or stop is every rank's (one small all-reduce, in the epoch's time but in none of
// load, copy or train).
absl::StatusOr<BatchVerdict> Agree(const Session& session, const BatchRecord& batch) {
  BatchVerdict mine{.diverged = !std::isfinite(batch.loss), .stop_signal = StopSignal()};
  if (!session.comm) return mine;
  absl::StatusOr<std::vector<double>> max = session.comm->MaxOverRanks(
      {mine.diverged ? 1.0 : 0.0, static_cast<double>(mine.stop_signal)});
  if (!max.ok()) return max.status();
  BatchVerdict agreed{.diverged = (*max)[0] > 0, .stop_signal = static_cast<int>((*max)[1])};
  if (agreed.stop_signal != 0) RequestStop(agreed.stop_signal);
  return agreed;
}

// Trainer::TrainBatch; data-parallel, an exception inside the step (the gradient all-reduce in
// backward: a peer died or hung) comes back as an error that says so.
absl::StatusOr<const BatchRecord*> TrainBatchOnRank(const Session& session, RunTrainer& trainer,
                                                    double lr) {
  absl::StatusOr<const BatchRecord*> b = trainer.TrainBatch(lr);
  if (b.ok() || !session.comm || !IsStepException(b.status())) return b;
  return absl::UnavailableError(absl::StrCat(
      "rank ", session.comm->rank(), " of ", session.comm->world_size(),
      ": averaging gradients failed in epoch ", trainer.Progress().epoch,
      " (a peer rank died, or hung past --dist_timeout=", session.options.dist_timeout_s,
      "s): ", b.status().message()));
}

// Loss and top-1 of the epoch over every rank's batches (the times stay this rank's).
absl::Status ReduceOverRanks(distributed::Communicator& comm, EpochStats& stats) {
  double correct = 0;
  for (const BatchRecord& b : stats.batches) correct += static_cast<double>(b.correct);
  const double batches = static_cast<double>(stats.batches.size());
  TRAINLAB_ASSIGN_OR_RETURN(std::vector<double> sum,
                            comm.SumOverRanks({stats.loss * batches, batches, correct,
                                               static_cast<double>(stats.samples)}));
  if (sum[1] > 0) stats.loss = sum[0] / sum[1];
  if (sum[3] > 0) {
    stats.top1 = 100.0 * sum[2] / sum[3];
    stats.samples = static_cast<int64_t>(sum[3]);
  }
  return absl::OkStatus();
}

// The test loss and top-1 over every rank's share of the test set (each image once).
absl::Status ReduceOverRanks(distributed::Communicator& comm, EvalStats& stats) {
  const double n = static_cast<double>(stats.samples);
  TRAINLAB_ASSIGN_OR_RETURN(
      std::vector<double> sum,
      comm.SumOverRanks({stats.loss * n, std::round(stats.top1 * n / 100.0), n}));
  stats.samples = static_cast<int64_t>(sum[2]);
  if (sum[2] > 0) {
    stats.loss = sum[0] / sum[2];
    stats.top1 = 100.0 * sum[1] / sum[2];
  }
  return absl::OkStatus();
}

// The index of the epoch with the best test top-1 of `r` (the first of equals); `r` has a test.
size_t BestTestEpoch(const RunResult& r) {
  size_t best = 0;
  for (size_t i = 1; i < r.test.size(); ++i) {
    if (r.test[i].top1 > r.test[best].top1) best = i;
  }
  return best;
}

// --keep_best: writes the weights when the epoch just evaluated is the best so far, rank 0 alone.
absl::Status KeepIfBest(const Session& session, const RunConfig& config, const RunResult& r,
                        const ClassifierImpl& model) {
  if (!config.keep_best || !session.writes() || r.test.empty()) return absl::OkStatus();
  if (BestTestEpoch(r) + 1 != r.test.size()) return absl::OkStatus();
  TRAINLAB_ASSIGN_OR_RETURN(const std::string bytes, models::StateDictBytes(model));
  TRAINLAB_RETURN_IF_ERROR(WriteFileAtomically(config.save_model, bytes));
  if (config.print_blocks) {
    std::printf("Kept the weights of epoch %zu (best test top-1 so far, %.2f%%) in %s\n",
                r.test.size(), r.test.back().top1, config.save_model.c_str());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

// The target reached at the last epoch of `r`: the epochs' training time, and their wall time
// plus every evaluation's.
TargetReached Reached(const RunConfig& config, const RunResult& r) {
  TargetReached t{.target = config.target_accuracy, .epoch = r.epochs.back().epoch};
  for (const EpochStats& e : r.epochs) {
    t.batches += static_cast<int64_t>(e.batches.size());
    t.train_s += e.train_s;
    t.wall_s += e.epoch_s;
  }
  for (const EvalStats& test : r.test) t.wall_s += test.seconds;
  return t;
}

absl::Status Stopped(const Session& session, int signal) {
  // No rank leaves before rank 0's checkpoint is on disk: torchrun ends the rest of a job once
  // one worker has exited.
  if (session.comm) TRAINLAB_RETURN_IF_ERROR(session.comm->Barrier());
  return absl::CancelledError(absl::StrCat("stopped by ", SignalName(signal)));
}

// The batches of one epoch (the per-batch procedure of epoch.h); its stats, diverged or not.
absl::StatusOr<EpochStats> TrainOneEpoch(const Session& session, const RunConfig& config,
                                         const RunKey& key, Training& t, RunTrainer& trainer,
                                         ProgressLine& progress, const RunResult& result,
                                         int64_t epoch, std::optional<EpochStats> partial) {
  Checkpointer* ckpt = session.checkpointer.get();
  const int64_t every = session.options.checkpoint_every;
  TRAINLAB_RETURN_IF_ERROR(trainer.BeginEpoch(epoch, std::move(partial)));
  for (;;) {
    // 1. schedule: the rate of this batch, set before it is fetched, outside every timed interval
    //    (the lab's constant rate included: recorded).
    const double lr = t.schedule->At(trainer.NextStep());
    SetLearningRate(*t.optimizer, lr);
    // 2. train: fetch, copy, step, record.
    TRAINLAB_ASSIGN_OR_RETURN(const BatchRecord* batch, TrainBatchOnRank(session, trainer, lr));
    if (batch == nullptr) break;  // the epoch's batches are done
    // 3. progress, and TensorBoard's scalars of the batch (buffered; written off this thread).
    progress.Update(trainer.Progress());
    if (t.board) t.board->Batch(*batch, trainer.NextStep());
    // 4. agree.
    TRAINLAB_ASSIGN_OR_RETURN(const BatchVerdict verdict, Agree(session, *batch));
    // 5. diverged: this rank's loss when it is the one that diverged; NaN when another rank's.
    if (verdict.diverged) {
      trainer.Diverged(std::isfinite(batch->loss) ? std::nan("") : batch->loss);
      break;
    }
    // 6. checkpoint.
    const EpochStats& so_far = trainer.SoFar();
    const bool due = every > 0 && static_cast<int64_t>(so_far.batches.size()) % every == 0;
    if (ckpt != nullptr && (due || verdict.stop_signal != 0)) {
      TRAINLAB_RETURN_IF_ERROR(ckpt->Save(key, result, so_far, epoch, *t.model, *t.optimizer));
    }
    // 7. stop.
    if (verdict.stop_signal != 0) {
      progress.Clear();
      return Stopped(session, verdict.stop_signal);
    }
  }
  return trainer.EndEpoch();
}

}  // namespace

void PrintEpoch(const RunConfig& config, const EpochStats& stats, const EvalStats* test) {
  if (!config.print_blocks) return;
  std::fputs(FormatLabBlock(stats).c_str(), stdout);
  if (stats.diverged) {
    std::printf("Diverged: %s, epoch %" PRId64 ", batch %" PRId64 ": loss %g; run stopped.\n",
                config.label.c_str(), stats.diverged->epoch, stats.diverged->batch,
                stats.diverged->loss);
  }
  if (test != nullptr) {
    std::printf("- Test Loss: %.4f, Test Accuracy (Top-1): %.2f%% (%" PRId64 " images)\n",
                test->loss, test->top1, test->samples);
  }
  std::fflush(stdout);
}

absl::Status TrainEpochs(const Session& session, const RunConfig& config, const RunKey& key,
                         Training& t, RunResult& result, int64_t first_epoch,
                         std::optional<EpochStats> partial) {
  Checkpointer* ckpt = session.checkpointer.get();
  ProgressLine progress(session.progress,
                        absl::StrCat(session.options.experiment, " ", config.label), config.epochs);
  TrainerOptions topts;
  topts.device = config.device;
  topts.step = t.step;
  // A rate set per batch is a host scalar a captured graph would freeze at its capture value:
  // under a schedule no optimizer step is capturable (cuda_graph refuses; c8 lists it skipped).
  topts.optimizer_capturable = t.optimizer_entry->capturable && config.lr_schedule == "constant" &&
                               config.warmup_epochs == 0;
  topts.trace = config.record_trace ? session.trace.get() : nullptr;
  topts.tta_flip = config.tta_flip;
  // --nvtx=layers: a tracer that times nothing names each layer of each pass for its NVTX range.
  NvtxLayerRanges layer_ranges;
  std::unique_ptr<LayerTracer> layers;
  if (nvtx::LayersEnabled()) {
    layers = std::make_unique<LayerTracer>(*t.model, std::unique_ptr<Timeline>());
    layers->set_listener(&layer_ranges);
    topts.layers = layers.get();
  }
  std::unique_ptr<distributed::DataParallel> data_parallel;
  if (session.comm) {  // after any restore: rank 0's weights go to every rank
    TRAINLAB_ASSIGN_OR_RETURN(data_parallel,
                              distributed::DataParallel::Attach(*session.comm, *t.model));
    topts.gradients = data_parallel->hooks();
  }
  RunTrainer trainer(*t.model, *t.optimizer, *t.loader, topts);
  StopsAreGraceful();
  for (int64_t e = first_epoch; e < config.epochs; ++e) {
    absl::StatusOr<EpochStats> epoch =
        TrainOneEpoch(session, config, key, t, trainer, progress, result, e, std::move(partial));
    partial.reset();
    progress.Clear();
    TRAINLAB_RETURN_IF_ERROR(epoch.status());
    EpochStats& stats = *epoch;
    // Loss and top-1 over every rank; the loader's stage times.
    if (session.comm) TRAINLAB_RETURN_IF_ERROR(ReduceOverRanks(*session.comm, stats));
    result.loader_stages.push_back(t.loader->stage_times());
    result.total_s += stats.epoch_s;
    const bool diverged = stats.diverged.has_value();
    if (diverged) result.diverged = stats.diverged;
    result.epochs.push_back(std::move(stats));
    // Evaluate, and keep the best weights.
    if (t.test_loader && !diverged) {
      if (config.before_evaluate) config.before_evaluate(e);
      // As DDP's forward: every rank evaluates with rank 0's batch-norm statistics.
      if (data_parallel) TRAINLAB_RETURN_IF_ERROR(data_parallel->SyncBuffers());
      TRAINLAB_ASSIGN_OR_RETURN(EvalStats test, trainer.Evaluate(*t.test_loader, e));
      if (session.comm) TRAINLAB_RETURN_IF_ERROR(ReduceOverRanks(*session.comm, test));
      result.test.push_back(test);
      TRAINLAB_RETURN_IF_ERROR(KeepIfBest(session, config, result, *t.model));
    }
    // TensorBoard's block, at the global step of the epoch's last batch, flushed; then the lab's
    // (so a block on stdout means its figures are in the event file).
    const EpochStats& done = result.epochs.back();
    const EvalStats* epoch_test =
        result.test.size() == result.epochs.size() ? &result.test.back() : nullptr;
    if (t.board) {
      t.board->Epoch(done, epoch_test, result.loader_stages.back(),
                     (done.epoch - 1) * t.loader->batches_per_epoch() +
                         static_cast<int64_t>(done.batches.size()));
    }
    PrintEpoch(config, done, epoch_test);
    // The target reached: the run ends here.
    if (!diverged && config.target_accuracy > 0 && !result.test.empty() &&
        result.test.back().top1 >= config.target_accuracy) {
      result.target = Reached(config, result);
      if (config.print_blocks) {
        std::printf("Target reached: %.2f%% test top-1 >= %.2f%% after epoch %" PRId64 " (%" PRId64
                    " batches): training time %.4fs, wall time with the "
                    "evaluations %.4fs\n",
                    result.test.back().top1, config.target_accuracy, result.target->epoch,
                    result.target->batches, result.target->train_s, result.target->wall_s);
        std::fflush(stdout);
      }
      break;
    }
    if (diverged || e + 1 == config.epochs) break;
    // Checkpoint at the epoch's end; a stop asked for takes effect here.
    if (ckpt != nullptr) {
      TRAINLAB_RETURN_IF_ERROR(
          ckpt->Save(key, result, std::nullopt, e + 1, *t.model, *t.optimizer));
    }
    TRAINLAB_ASSIGN_OR_RETURN(const int signal, session.AgreedStopSignal());
    if (signal != 0) return Stopped(session, signal);
  }
  if (config.target_accuracy > 0 && !result.target && !result.diverged && config.print_blocks &&
      !result.test.empty()) {
    const size_t best = BestTestEpoch(result);
    std::printf(
        "Target not reached: %.2f%% test top-1 wanted; the best was %.2f%%, after epoch "
        "%zu of %zu\n",
        config.target_accuracy, result.test[best].top1, best + 1, result.test.size());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

}  // namespace trainlab::experiments
