#include "experiments/training/run.h"

#include <torch/optim/optimizer.h>
#include <torch/utils.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/files.h"
#include "core/memory.h"
#include "core/model.h"
#include "core/optimizer.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "core/torch_error.h"
#include "core/trainer.h"
#include "experiments/harness/progress.h"
#include "experiments/harness/stop.h"
#include "plugins/data/loader.h"
#include "plugins/distributed/data_parallel.h"
#include "plugins/models/state_dict.h"

namespace trainlab::experiments {
namespace {

// --- What a run needs, built and checked before the first batch ---------------------------------

// ResNet-18's training memory per 32x32 image (the activations kept for backward, their
// gradients, oneDNN's scratch): the slope of c2's peak RSS between batch 16, 64 and 128 on
// LibTorch 1.13 (2026-12-02, `/usr/bin/time -v`): 9.4 MB per image. Other models: not counted.
constexpr int64_t kResNet18BytesPerImage = 9'400'000;
// LibTorch, the program and its libraries: that peak RSS less the above, at batch 16.
constexpr int64_t kBaseBytes = int64_t{320} << 20;

std::string GiB(int64_t bytes) { return absl::StrFormat("%.1f GiB", bytes / 1073741824.0); }

struct Training {
  std::shared_ptr<ClassifierImpl> model;
  const OptimizerEntry* optimizer_entry = nullptr;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  StepOptions step;
  std::unique_ptr<data::BatchLoader> loader, test_loader;
  std::optional<LrSchedule> schedule;
};

data::LoaderOptions TrainLoaderOptions(const Session& session, const RunConfig& config) {
  data::LoaderOptions lo;
  lo.batch_size = config.batch_size;
  lo.num_workers = config.num_workers;
  lo.seed = config.seed;
  lo.max_batches = config.max_batches_per_epoch;
  lo.pin_memory = config.device.is_cuda();
  lo.pin_device = config.device.has_index() ? config.device.index() : -1;
  lo.trace = config.record_trace ? session.trace.get() : nullptr;
  lo.before_batch = config.loader_fault;
  if (session.comm) {  // this rank's DistributedSampler share of each epoch
    lo.rank = session.comm->rank();
    lo.world_size = session.comm->world_size();
  }
  return lo;
}

// Evaluation batches: large (no gradients are kept, so memory per image is small), at least 512.
constexpr int64_t kMinEvalBatch = 512;

data::LoaderOptions TestLoaderOptions(data::LoaderOptions lo) {
  lo.batch_size = std::max(lo.batch_size, kMinEvalBatch);
  lo.shuffle = false;
  lo.augment = false;
  lo.pad_shards = false;  // data-parallel: every test image once, over all ranks
  lo.trace = nullptr;
  lo.before_batch = nullptr;
  return lo;
}

// What the run will allocate against what the machine has left; refused, with both figures,
// when it cannot fit.
absl::Status CheckMemory(const RunConfig& config, int64_t parameters,
                         const data::LoaderOptions& lo) {
  const std::optional<int64_t> available = AvailableMemoryBytes();
  if (!available) return absl::OkStatus();
  const int64_t loaders =
      data::BatchLoader::PooledBytes(lo) +
      (config.evaluate ? data::BatchLoader::PooledBytes(TestLoaderOptions(lo)) : 0);
  const bool resnet = config.model == "resnet18" || config.model == "resnet18_no_bn";
  const int64_t activations =
      resnet && config.device.is_cpu() ? config.batch_size * kResNet18BytesPerImage : 0;
  // Weights, gradients and up to two optimizer moments, in float32.
  const int64_t state = parameters * 4 * 4;
  const int64_t need = kBaseBytes + loaders + activations + state;
  if (need <= *available) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "--batch_size=", config.batch_size, " --num_workers=", config.num_workers,
      ": this run needs about ", GiB(need), " (loader batch slots ", GiB(loaders),
      resnet ? absl::StrCat(", activations ", GiB(activations)) : "", ", model and optimizer ",
      GiB(state), ", LibTorch ", GiB(kBaseBytes), "), and this machine has ", GiB(*available),
      " available; use a smaller --batch_size or fewer --num_workers"));
}

absl::StatusOr<Training> Build(const Session& session, const RunConfig& config) {
  Training t;
  torch::manual_seed(config.seed);
  // A loaded model (TorchScript) starts from its file's weights; a built one from the seed.
  TRAINLAB_ASSIGN_OR_RETURN(t.model, MakeModel(config.model, {.path = config.model_path}));
  int64_t parameters = 0;
  for (const at::Tensor& p : t.model->parameters()) parameters += p.numel();
  const data::LoaderOptions lo = TrainLoaderOptions(session, config);
  TRAINLAB_RETURN_IF_ERROR(CheckMemory(config, parameters, lo));
  t.model->to(config.device);
  TRAINLAB_ASSIGN_OR_RETURN(t.optimizer_entry, OptimizerRegistry::Global().Find(config.optimizer));
  TRAINLAB_ASSIGN_OR_RETURN(
      t.optimizer, t.optimizer_entry->make(t.model->parameters(), config.optimizer_settings));
  TRAINLAB_ASSIGN_OR_RETURN(t.step, ResolveStrategies(config.strategy, config.device));
  t.step.label_smoothing = config.label_smoothing;
  TRAINLAB_ASSIGN_OR_RETURN(t.loader, data::BatchLoader::Create(session.train, lo));
  TRAINLAB_ASSIGN_OR_RETURN(
      t.schedule, LrSchedule::Make(ScheduleOptions(config, t.loader->batches_per_epoch())));
  if (config.evaluate) {
    TRAINLAB_ASSIGN_OR_RETURN(t.test_loader,
                              data::BatchLoader::Create(session.test, TestLoaderOptions(lo)));
  }
  return t;
}

// --- What a run prints -------------------------------------------------------------------------

// An epoch's block, its divergence and test lines, as a run prints them.
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

void PrintRun(const RunConfig& config, const RunResult& r) {
  for (size_t e = 0; e < r.epochs.size(); ++e) {
    PrintEpoch(config, r.epochs[e], e < r.test.size() ? &r.test[e] : nullptr);
  }
}

absl::Status SaveModel(const RunConfig& config, const ClassifierImpl& model) {
  if (config.save_model.empty()) return absl::OkStatus();
  TRAINLAB_ASSIGN_OR_RETURN(const std::string bytes, models::StateDictBytes(model));
  TRAINLAB_RETURN_IF_ERROR(WriteFileAtomically(config.save_model, bytes));
  std::printf(
      "Saved the trained weights to %s (a PyTorch state_dict: in Python, "
      "model.load_state_dict(torch.load(path)))\n",
      config.save_model.c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

// A run that finished before the checkpoint was written: as it was, and its saved weights when
// --save_model asks for them.
absl::StatusOr<RunResult> Restored(const Session& session, const RunConfig& config,
                                   const RunKey& key, const RunResult& done) {
  std::fprintf(stderr, "%s: run '%s' restored from %s\n", session.options.experiment.c_str(),
               key.str().c_str(), session.checkpointer->path().c_str());
  PrintRun(config, done);
  // (--keep_best wrote the best epoch's weights while the run trained; they are not re-derived.)
  if (!config.save_model.empty() && !config.keep_best) {
    TRAINLAB_ASSIGN_OR_RETURN(std::shared_ptr<ClassifierImpl> model,
                              MakeModel(config.model, {.path = config.model_path}));
    TRAINLAB_RETURN_IF_ERROR(session.checkpointer->LoadFinalModel(key, *model));
    TRAINLAB_RETURN_IF_ERROR(SaveModel(config, *model));
  }
  return done;
}

// --- Training ------------------------------------------------------------------------------------

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

// The batch's verdict over every rank: any rank's divergence or stop is every rank's.
absl::StatusOr<BatchVerdict> AgreeOnBatch(distributed::Communicator& comm, const BatchVerdict& v) {
  TRAINLAB_ASSIGN_OR_RETURN(
      const std::vector<double> max,
      comm.MaxOverRanks({v.diverged ? 1.0 : 0.0, static_cast<double>(v.stop_signal)}));
  BatchVerdict agreed{.diverged = max[0] > 0, .stop_signal = static_cast<int>(max[1])};
  if (agreed.stop_signal != 0) RequestStop(agreed.stop_signal);
  return agreed;
}

// trainer.TrainEpoch; data-parallel, a failure of the gradient all-reduce inside backward (a
// peer died or hung) comes back as an error that says so, not as LibTorch's bare exception.
template <class T>
absl::StatusOr<EpochStats> TrainEpochOnRank(const Session& session, T& trainer, int64_t epoch,
                                            std::optional<EpochStats> partial) {
  if (!session.comm) return trainer.TrainEpoch(epoch, std::move(partial));
  try {
    return trainer.TrainEpoch(epoch, std::move(partial));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "rank ", session.comm->rank(), " of ", session.comm->world_size(),
        ": averaging gradients failed in epoch ", epoch + 1,
        " (a peer rank died, or hung past --dist_timeout=", session.options.dist_timeout_s,
        "s): ", TorchErrorLine(e)));
  }
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

// Epochs [first_epoch, config.epochs) of the run, appended to `result`; `partial` is the epoch
// the checkpoint stopped in. Checkpoints at each epoch end that is not the last, and every
// --checkpoint_every batches; a stop asked for ends it after the batch under way (Cancelled),
// except after the last batch: then the run finishes, and the stop takes effect before the next.
absl::Status TrainEpochs(const Session& session, const RunConfig& config, const RunKey& key,
                         Training& t, RunResult& result, int64_t first_epoch,
                         std::optional<EpochStats> partial) {
  Checkpointer* ckpt = session.checkpointer.get();
  ProgressLine progress(session.progress,
                        absl::StrCat(session.options.experiment, " ", config.label), config.epochs);
  int64_t e = first_epoch;
  const int64_t every = session.options.checkpoint_every;
  TrainerOptions topts;
  topts.device = config.device;
  topts.step = t.step;
  // A rate set per batch is a host scalar a captured graph would freeze at its capture value:
  // under a schedule no optimizer step is capturable (cuda_graph refuses; c8 lists it skipped).
  topts.optimizer_capturable = t.optimizer_entry->capturable && config.lr_schedule == "constant" &&
                               config.warmup_epochs == 0;
  topts.trace = config.record_trace ? session.trace.get() : nullptr;
  topts.on_batch = [&progress](const EpochProgress& p) { progress.Update(p); };
  topts.stop_requested = [] { return StopSignal(); };
  topts.tta_flip = config.tta_flip;
  // The rate of every batch, from the schedule (the lab's constant one included: recorded).
  topts.set_learning_rate = [&t](int64_t step) {
    const double lr = t.schedule->At(step);
    SetLearningRate(*t.optimizer, lr);
    return lr;
  };
  if (session.comm) {
    topts.agree = [comm = session.comm](const BatchVerdict& v) { return AgreeOnBatch(*comm, v); };
  }
  topts.after_batch = [&](const EpochStats& so_far, int signal) -> absl::Status {
    const bool due = every > 0 && static_cast<int64_t>(so_far.batches.size()) % every == 0;
    if (ckpt != nullptr && (due || signal != 0)) {
      TRAINLAB_RETURN_IF_ERROR(ckpt->Save(key, result, so_far, e, *t.model, *t.optimizer));
    }
    if (signal != 0 && session.comm) {
      // No rank leaves before rank 0's checkpoint is on disk: torchrun ends the rest of a job
      // once one worker has exited.
      TRAINLAB_RETURN_IF_ERROR(session.comm->Barrier());
    }
    if (signal != 0) {
      progress.Clear();
      return absl::CancelledError(absl::StrCat("stopped by ", SignalName(signal)));
    }
    return absl::OkStatus();
  };
  std::unique_ptr<distributed::DataParallel> data_parallel;
  if (session.comm) {  // after any restore: rank 0's weights go to every rank
    TRAINLAB_ASSIGN_OR_RETURN(data_parallel,
                              distributed::DataParallel::Attach(*session.comm, *t.model));
    topts.gradients = data_parallel->hooks();
  }
  Trainer<ClassifierImpl, torch::optim::Optimizer, data::BatchLoader> trainer(
      *t.model, *t.optimizer, *t.loader, topts);
  StopsAreGraceful();
  for (; e < config.epochs; ++e) {
    absl::StatusOr<EpochStats> epoch = TrainEpochOnRank(session, trainer, e, std::move(partial));
    partial.reset();
    progress.Clear();
    TRAINLAB_RETURN_IF_ERROR(epoch.status());
    EpochStats& stats = *epoch;
    if (session.comm) TRAINLAB_RETURN_IF_ERROR(ReduceOverRanks(*session.comm, stats));
    result.loader_stages.push_back(t.loader->stage_times());
    result.total_s += stats.epoch_s;
    const bool diverged = stats.diverged.has_value();
    if (diverged) result.diverged = stats.diverged;
    result.epochs.push_back(std::move(stats));
    if (t.test_loader && !diverged) {
      if (config.before_evaluate) config.before_evaluate(e);
      // As DDP's forward: every rank evaluates with rank 0's batch-norm statistics.
      if (data_parallel) TRAINLAB_RETURN_IF_ERROR(data_parallel->SyncBuffers());
      TRAINLAB_ASSIGN_OR_RETURN(EvalStats test, trainer.Evaluate(*t.test_loader, e));
      if (session.comm) TRAINLAB_RETURN_IF_ERROR(ReduceOverRanks(*session.comm, test));
      result.test.push_back(test);
      TRAINLAB_RETURN_IF_ERROR(KeepIfBest(session, config, result, *t.model));
    }
    PrintEpoch(config, result.epochs.back(),
               result.test.size() == result.epochs.size() ? &result.test.back() : nullptr);
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
    if (ckpt != nullptr) {
      TRAINLAB_RETURN_IF_ERROR(
          ckpt->Save(key, result, std::nullopt, e + 1, *t.model, *t.optimizer));
    }
    TRAINLAB_ASSIGN_OR_RETURN(const int signal, session.AgreedStopSignal());
    if (signal != 0) {
      if (session.comm) TRAINLAB_RETURN_IF_ERROR(session.comm->Barrier());
      return absl::CancelledError(absl::StrCat("stopped by ", SignalName(signal)));
    }
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

}  // namespace

absl::Status CheckRunMemory(const Session& session, const RunConfig& config, int64_t parameters) {
  return CheckMemory(config, parameters, TrainLoaderOptions(session, config));
}

absl::StatusOr<RunResult> RunTraining(const Session& session, const RunConfig& config, int repeat) {
  Checkpointer* ckpt = session.checkpointer.get();
  const RunKey key{config.label, repeat};
  if (ckpt != nullptr) {
    if (const RunResult* done = ckpt->Finished(key, config.epochs)) {
      return Restored(session, config, key, *done);
    }
  }
  TRAINLAB_ASSIGN_OR_RETURN(Training t, Build(session, config));
  RunResult result;
  result.repeat = repeat;
  int64_t first_epoch = 0;
  std::optional<EpochStats> partial;
  if (ckpt != nullptr) {
    // Restores the model, optimizer and generators when the run to continue is this one.
    TRAINLAB_ASSIGN_OR_RETURN(std::optional<InProgress> p,
                              ckpt->Resume(key, config.epochs, *t.model, *t.optimizer));
    if (p) {
      result = std::move(p->done);
      result.repeat = repeat;
      first_epoch = p->epoch;
      partial = std::move(p->partial);
      const auto extended = ckpt->extended().find("epochs");
      if (extended != ckpt->extended().end() && first_epoch >= extended->second.first) {
        std::fprintf(stderr,
                     "%s: extending run '%s' from %" PRId64 " to %" PRId64
                     " epochs (--epochs), from %s\n",
                     session.options.experiment.c_str(), key.str().c_str(), extended->second.first,
                     extended->second.second, ckpt->path().c_str());
      } else {
        std::fprintf(stderr, "%s: resuming run '%s' at epoch %" PRId64 ", batch %zu, from %s\n",
                     session.options.experiment.c_str(), key.str().c_str(), first_epoch + 1,
                     partial ? partial->batches.size() : size_t{0}, ckpt->path().c_str());
      }
      PrintRun(config, result);
    }
  }
  TRAINLAB_RETURN_IF_ERROR(
      TrainEpochs(session, config, key, t, result, first_epoch, std::move(partial)));
  if (!config.keep_best) TRAINLAB_RETURN_IF_ERROR(SaveModel(config, *t.model));
  if (ckpt != nullptr) {
    TRAINLAB_RETURN_IF_ERROR(ckpt->Finish(key, result, *t.model, *t.optimizer));
    std::printf("Final state digest (%s): %s\n", key.str().c_str(),
                StateDigest(*t.model, *t.optimizer).c_str());
    std::fflush(stdout);
  }
  return result;
}

absl::StatusOr<VariantResult> RunVariant(const Session& session, const Variant& variant,
                                         bool can_skip) {
  VariantResult out;
  out.label = variant.label;
  out.params = variant.params;
  const RunConfig& c = variant.config;
  out.setup = {c.optimizer, c.strategy, c.model, c.device.str(), c.num_workers};
  RunConfig config = c;
  config.label = variant.label;
  const int n = session.options.repeats;
  const std::string& header = variant.header.empty() ? variant.label : variant.header;
  for (int i = 1; i <= n; ++i) {
    TRAINLAB_ASSIGN_OR_RETURN(const int signal, session.AgreedStopSignal());
    if (signal != 0) {
      return absl::CancelledError(absl::StrCat("stopped by ", SignalName(signal)));
    }
    if (config.print_blocks && (variant.announce || n > 1)) {
      if (n > 1) {
        std::printf("\n##### %s (repeat %d/%d) #####\n", header.c_str(), i, n);
      } else {
        std::printf("\n##### %s #####\n", header.c_str());
      }
      std::fflush(stdout);
    }
    absl::StatusOr<RunResult> r = RunTraining(session, config, i);
    if (!r.ok()) {
      if (!can_skip || !IsStrategyCannotRun(r.status())) return r.status();
      out.skipped = std::string(r.status().message());
      out.repeats.clear();
      return out;
    }
    out.repeats.push_back(std::move(*r));
  }
  return out;
}

}  // namespace trainlab::experiments
