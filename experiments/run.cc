#include "experiments/run.h"

#include <torch/optim/optimizer.h>
#include <torch/utils.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/model.h"
#include "core/optimizer.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "core/torch_error.h"
#include "core/trainer.h"
#include "experiments/checkpoint.h"
#include "experiments/progress.h"
#include "experiments/results.h"
#include "experiments/stop.h"
#include "plugins/distributed/data_parallel.h"
#include "plugins/models/state_dict.h"

namespace trainlab::experiments {

double RunResult::total(double EpochStats::*field) const {
  double sum = 0;
  for (const EpochStats& e : epochs) sum += e.*field;
  return sum;
}

double RunResult::mean(double EpochStats::*field) const {
  return epochs.empty() ? 0.0 : total(field) / static_cast<double>(epochs.size());
}

Spread ConfigResult::Of(const std::function<double(const RunResult&)>& metric) const {
  std::vector<double> values;
  for (const RunResult& r : repeats) values.push_back(metric(r));
  return Spread::Of(std::move(values));
}

Spread ConfigResult::MeanOf(double EpochStats::*field) const {
  return Of([field](const RunResult& r) { return r.mean(field); });
}

Spread ConfigResult::TotalOf(double EpochStats::*field) const {
  return Of([field](const RunResult& r) { return r.total(field); });
}

bool ConfigResult::diverged() const {
  return std::any_of(repeats.begin(), repeats.end(),
                     [](const RunResult& r) { return r.diverged.has_value(); });
}

namespace {

// Prints an epoch's block, its divergence and test lines, as a run prints them.
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

// trainer.TrainEpoch; data-parallel, a failure of the gradient all-reduce inside backward (a
// peer died or hung) comes back as an error that says so, not as LibTorch's bare exception.
template <class T>
absl::StatusOr<EpochStats> TrainEpochOnRank(const Session& session, T& trainer, int64_t epoch,
                                            std::optional<EpochStats> partial) {
  if (!session.comm) return trainer.TrainEpoch(epoch, std::move(partial));
  try {
    return trainer.TrainEpoch(epoch, std::move(partial));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("rank ", session.comm->rank(), " of ", session.comm->world_size(),
                     ": averaging gradients failed in epoch ", epoch + 1,
                     " (a peer rank died, or hung past "
                     "--dist_timeout=",
                     session.config.dist_timeout_s, "s): ", TorchErrorLine(e)));
  }
}

}  // namespace

absl::StatusOr<RunResult> RunTraining(const Session& session, const RunConfig& config, int repeat) {
  Checkpointer* ckpt = session.checkpointer.get();
  const RunKey key{config.label, repeat};
  if (ckpt != nullptr) {
    if (const RunResult* done = ckpt->Finished(key)) {  // finished before the stop: as it was
      std::fprintf(stderr, "%s: run '%s' restored from %s\n", session.config.experiment.c_str(),
                   key.str().c_str(), ckpt->path().c_str());
      PrintRun(config, *done);
      return *done;
    }
  }
  torch::manual_seed(config.seed);
  // A loaded model (TorchScript) starts from its file's weights; a built one from the seed.
  TRAINLAB_ASSIGN_OR_RETURN(std::shared_ptr<ClassifierImpl> model,
                            MakeModel(config.model, {.path = config.model_path}));
  model->to(config.device);

  TRAINLAB_ASSIGN_OR_RETURN(const OptimizerEntry* entry,
                            OptimizerRegistry::Global().Find(config.optimizer));
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<torch::optim::Optimizer> optimizer,
                            entry->make(model->parameters(), config.optimizer_settings));
  TRAINLAB_ASSIGN_OR_RETURN(StepOptions step, ResolveStrategies(config.strategy, config.device));
  TraceRecorder* trace = config.record_trace ? session.trace.get() : nullptr;

  data::LoaderOptions lo;
  lo.batch_size = config.batch_size;
  lo.num_workers = config.num_workers;
  lo.seed = config.seed;
  lo.max_batches = config.max_batches_per_epoch;
  lo.pin_memory = config.device.is_cuda();
  lo.pin_device = config.device.has_index() ? config.device.index() : -1;
  lo.trace = trace;
  lo.before_batch = config.loader_fault;
  if (session.comm) {  // this rank's DistributedSampler share of each epoch
    lo.rank = session.comm->rank();
    lo.world_size = session.comm->world_size();
  }
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<data::BatchLoader> loader,
                            data::BatchLoader::Create(session.train, lo));
  std::unique_ptr<data::BatchLoader> test_loader;
  if (config.evaluate) {
    data::LoaderOptions to = lo;
    to.shuffle = false;
    to.augment = false;
    to.trace = nullptr;
    to.before_batch = nullptr;
    TRAINLAB_ASSIGN_OR_RETURN(test_loader, data::BatchLoader::Create(session.test, to));
  }

  RunResult result;
  result.repeat = repeat;
  int64_t first_epoch = 0;
  std::optional<EpochStats> partial;
  if (ckpt != nullptr) {
    // Restores the model and optimizer when the checkpoint's run in progress is this one.
    TRAINLAB_ASSIGN_OR_RETURN(std::optional<InProgress> p, ckpt->Resume(key, *model, *optimizer));
    if (p) {
      result = std::move(p->done);
      result.repeat = repeat;
      first_epoch = p->epoch;
      partial = std::move(p->partial);
      std::fprintf(stderr, "%s: resuming run '%s' at epoch %" PRId64 ", batch %zu, from %s\n",
                   session.config.experiment.c_str(), key.str().c_str(), first_epoch + 1,
                   partial ? partial->batches.size() : size_t{0}, ckpt->path().c_str());
      PrintRun(config, result);
    }
  }

  ProgressLine progress(session.progress,
                        absl::StrCat(session.config.experiment, " ", config.label), config.epochs);
  int64_t e = first_epoch;
  const int64_t every = session.config.checkpoint_every;
  TrainerOptions topts;
  topts.device = config.device;
  topts.step = step;
  topts.optimizer_capturable = entry->capturable;
  topts.trace = trace;
  topts.on_batch = [&progress](const EpochProgress& p) { progress.Update(p); };
  topts.after_batch = [&](const EpochStats& so_far) -> absl::Status {
    const int signal = StopSignal();
    const bool due = every > 0 && static_cast<int64_t>(so_far.batches.size()) % every == 0;
    if (ckpt != nullptr && (due || signal != 0)) {
      TRAINLAB_RETURN_IF_ERROR(ckpt->Save(key, result, so_far, e, *model, *optimizer));
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
                              distributed::DataParallel::Attach(*session.comm, *model));
    topts.gradients = data_parallel->hooks();
  }
  Trainer<ClassifierImpl, torch::optim::Optimizer, data::BatchLoader> trainer(*model, *optimizer,
                                                                              *loader, topts);
  for (; e < config.epochs; ++e) {
    absl::StatusOr<EpochStats> epoch = TrainEpochOnRank(session, trainer, e, std::move(partial));
    partial.reset();
    progress.Clear();
    TRAINLAB_RETURN_IF_ERROR(epoch.status());
    EpochStats& stats = *epoch;
    if (session.comm) TRAINLAB_RETURN_IF_ERROR(ReduceOverRanks(*session.comm, stats));
    result.loader_stages.push_back(loader->stage_times());
    result.total_s += stats.epoch_s;
    const bool diverged = stats.diverged.has_value();
    if (diverged) result.diverged = stats.diverged;
    result.epochs.push_back(std::move(stats));
    if (test_loader && !diverged) {
      TRAINLAB_ASSIGN_OR_RETURN(EvalStats t, trainer.Evaluate(*test_loader, e));
      result.test.push_back(t);
    }
    PrintEpoch(config, result.epochs.back(),
               result.test.size() == result.epochs.size() ? &result.test.back() : nullptr);
    if (diverged) break;
    if (ckpt != nullptr && e + 1 < config.epochs) {
      TRAINLAB_RETURN_IF_ERROR(ckpt->Save(key, result, std::nullopt, e + 1, *model, *optimizer));
    }
    if (const int signal = StopSignal(); signal != 0) {
      return absl::CancelledError(absl::StrCat("stopped by ", SignalName(signal)));
    }
  }
  if (!config.save_model.empty()) {
    TRAINLAB_ASSIGN_OR_RETURN(const std::string bytes, models::StateDictBytes(*model));
    TRAINLAB_RETURN_IF_ERROR(WriteFileAtomically(config.save_model, bytes));
    std::printf(
        "Saved the trained weights to %s (a PyTorch state_dict: in Python, "
        "model.load_state_dict(torch.load(path)))\n",
        config.save_model.c_str());
    std::fflush(stdout);
  }
  if (ckpt != nullptr) {
    TRAINLAB_RETURN_IF_ERROR(ckpt->Finish(key, result));
    std::printf("Final state digest (%s): %s\n", key.str().c_str(),
                StateDigest(*model, *optimizer).c_str());
    std::fflush(stdout);
  }
  return result;
}

absl::StatusOr<ConfigResult> RunVariant(const Session& session, const Variant& variant,
                                        bool skip_on_error) {
  ConfigResult out;
  out.label = variant.label;
  out.config = variant.config;
  out.config.label = variant.label;
  out.params = variant.params;
  const int n = session.config.repeats;
  const std::string& header = variant.header.empty() ? variant.label : variant.header;
  for (int i = 1; i <= n; ++i) {
    if (out.config.print_blocks && (variant.announce || n > 1)) {
      if (n > 1) {
        std::printf("\n##### %s (repeat %d/%d) #####\n", header.c_str(), i, n);
      } else {
        std::printf("\n##### %s #####\n", header.c_str());
      }
      std::fflush(stdout);
    }
    absl::StatusOr<RunResult> r = RunTraining(session, out.config, i);
    if (!r.ok()) {
      // A stop (Ctrl-C) is never a configuration that "cannot run here".
      if (!skip_on_error || absl::IsCancelled(r.status())) return r.status();
      out.skipped = std::string(r.status().message());
      out.repeats.clear();
      return out;
    }
    out.repeats.push_back(std::move(*r));
  }
  return out;
}

void PrintRecap(const std::vector<ConfigResult>& configs) {
  std::printf("\n===== Recap (averages over each run's epochs) =====\n");
  std::printf("%-22s %16s %10s %12s  %s\n", "run", "train s/epoch", "loss", "top-1 %", "note");
  struct Row {
    std::string label;
    double train, loss, top1;
  };
  std::vector<Row> ok;
  for (const ConfigResult& c : configs) {
    const Spread train = c.MeanOf(&EpochStats::train_s), loss = c.MeanOf(&EpochStats::loss),
                 top1 = c.MeanOf(&EpochStats::top1);
    std::string note;
    for (const RunResult& r : c.repeats) {
      if (r.diverged) {
        note = absl::StrFormat("diverged at epoch %d, batch %d (loss %g)", r.diverged->epoch,
                               r.diverged->batch, r.diverged->loss);
      }
    }
    if (note.empty()) ok.push_back({c.label, train.median, loss.median, top1.median});
    if (train.n > 1 && note.empty()) {
      note = absl::StrFormat("median of %d runs; train %.4f-%.4f", train.n, train.min, train.max);
    }
    std::printf("%-22s %16.4f %10.4f %12.2f  %s\n", c.label.c_str(), train.median, loss.median,
                top1.median, note.c_str());
  }
  auto rank = [&](const char* what, auto key, bool ascending) {
    std::vector<Row> sorted = ok;
    std::stable_sort(sorted.begin(), sorted.end(), [&](const Row& a, const Row& b) {
      return ascending ? key(a) < key(b) : key(a) > key(b);
    });
    std::printf("Ranking by %s:", what);
    for (size_t i = 0; i < sorted.size(); ++i)
      std::printf("%s %zu. %s", i ? "," : "", i + 1, sorted[i].label.c_str());
    std::printf("%s\n", sorted.empty() ? " (no run finished)" : "");
  };
  rank(
      "training time (fastest first)", [](const Row& r) { return r.train; }, true);
  rank(
      "loss (lowest first)", [](const Row& r) { return r.loss; }, true);
  rank(
      "top-1 accuracy (highest first)", [](const Row& r) { return r.top1; }, false);
}

}  // namespace trainlab::experiments
