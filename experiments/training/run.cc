#include "experiments/training/run.h"

#include <torch/optim/optimizer.h>
#include <torch/utils.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/files.h"
#include "core/introspect.h"
#include "core/memory.h"
#include "core/model.h"
#include "core/optimizer.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "core/torch_error.h"
#include "experiments/harness/stop.h"
#include "experiments/training/epoch.h"
#include "plugins/data/loader.h"
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

absl::StatusOr<Training> BuildTraining(const Session& session, const RunConfig& config) {
  Training t;
  TRAINLAB_ASSIGN_OR_RETURN(ModelAndOptimizer m, BuildModelAndOptimizer(session, config));
  t.model = std::move(m.model);
  t.optimizer_entry = m.optimizer_entry;
  t.optimizer = std::move(m.optimizer);
  TRAINLAB_ASSIGN_OR_RETURN(t.step, ResolveStrategies(config.strategy, config.device));
  t.step.label_smoothing = config.label_smoothing;
  const data::LoaderOptions lo = TrainLoaderOptions(session, config);
  TRAINLAB_ASSIGN_OR_RETURN(t.loader, data::BatchLoader::Create(session.train, lo));
  TRAINLAB_ASSIGN_OR_RETURN(
      t.schedule, LrSchedule::Make(ScheduleOptions(config, t.loader->batches_per_epoch())));
  if (config.evaluate) {
    TRAINLAB_ASSIGN_OR_RETURN(t.test_loader,
                              data::BatchLoader::Create(session.test, TestLoaderOptions(lo)));
  }
  return t;
}

// The run's settings as TensorBoard's HParams dashboard lists them: what an experiment varies
// (optimizer, strategy, workers, model, schedule) and what it holds fixed.
std::map<std::string, tensorboard::HParamValue> BoardHParams(const Session& session,
                                                             const RunConfig& c) {
  std::map<std::string, tensorboard::HParamValue> h = {
      {"experiment", session.options.experiment},
      {"variant", c.label},
      {"optimizer", c.optimizer},
      {"strategy", c.strategy},
      {"model", c.model},
      {"device", c.device.str()},
      {"dataset", session.train ? session.train->name : std::string("none")},
      {"batch_size", static_cast<double>(c.batch_size)},
      {"num_workers", static_cast<double>(c.num_workers)},
      {"epochs", static_cast<double>(c.epochs)},
      {"lr", c.optimizer_settings.lr},
      {"momentum", c.optimizer_settings.momentum},
      {"weight_decay", c.optimizer_settings.weight_decay},
      {"lr_schedule", c.lr_schedule},
      {"warmup_epochs", c.warmup_epochs},
      {"label_smoothing", c.label_smoothing},
      {"tta_flip", c.tta_flip},
      {"seed", static_cast<double>(c.seed)},
      {"max_batches_per_epoch", static_cast<double>(c.max_batches_per_epoch)}};
  if (session.comm) h["world_size"] = static_cast<double>(session.comm->world_size());
  return h;
}

// --- What a run prints -------------------------------------------------------------------------

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

}  // namespace

absl::StatusOr<ModelAndOptimizer> BuildModelAndOptimizer(const Session& session,
                                                         const RunConfig& config) {
  ModelAndOptimizer m;
  torch::manual_seed(config.seed);
  // A loaded model (TorchScript) starts from its file's weights; a built one from the seed.
  TRAINLAB_ASSIGN_OR_RETURN(m.model, MakeModel(config.model, {.path = config.model_path}));
  TRAINLAB_RETURN_IF_ERROR(
      CheckMemory(config, CountTrainableParameters(*m.model), TrainLoaderOptions(session, config)));
  m.model->to(config.device);
  TRAINLAB_ASSIGN_OR_RETURN(m.optimizer_entry, OptimizerRegistry::Global().Find(config.optimizer));
  TRAINLAB_ASSIGN_OR_RETURN(
      m.optimizer, m.optimizer_entry->make(m.model->parameters(), config.optimizer_settings));
  return m;
}

absl::StatusOr<RunResult> RunTraining(const Session& session, const RunConfig& config, int repeat) {
  Checkpointer* ckpt = session.checkpointer.get();
  const RunKey key{config.label, repeat};
  if (ckpt != nullptr) {
    if (const RunResult* done = ckpt->Finished(key, config.epochs)) {
      return Restored(session, config, key, *done);
    }
  }
  TRAINLAB_ASSIGN_OR_RETURN(Training t, BuildTraining(session, config));
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
  if (session.board) {
    // The global step of the first batch this process trains: 1, or a resumed run's next.
    const int64_t first_step = first_epoch * t.loader->batches_per_epoch() +
                               static_cast<int64_t>(partial ? partial->batches.size() : 0) + 1;
    t.board =
        session.board->OpenRun(config.label, repeat, BoardHParams(session, config), first_step);
  }
  TRAINLAB_RETURN_IF_ERROR(
      TrainEpochs(session, config, key, t, result, first_epoch, std::move(partial)));
  if (t.board) t.board->End(result.diverged.has_value());
  if (!config.keep_best) TRAINLAB_RETURN_IF_ERROR(SaveModel(config, *t.model));
  if (ckpt != nullptr) {
    TRAINLAB_RETURN_IF_ERROR(ckpt->Finish(key, result, *t.model, *t.optimizer));
    std::printf("Final state digest (%s): %s\n", key.str().c_str(),
                StateDigest(*t.model, *t.optimizer).c_str());
    std::fflush(stdout);
  }
  return result;
}

namespace {

// A variant's result before it runs: its label, what distinguishes it, what it trains with.
VariantResult Unrun(const Variant& variant) {
  const RunConfig& c = variant.config;
  return {.label = variant.label,
          .params = variant.params,
          .setup = {c.optimizer, c.strategy, c.model, c.device.str(), c.num_workers}};
}

}  // namespace

VariantResult SkippedVariant(const Variant& variant, std::string reason) {
  VariantResult out = Unrun(variant);
  out.skipped = std::move(reason);
  return out;
}

absl::StatusOr<VariantResult> RunVariant(const Session& session, const Variant& variant,
                                         bool can_skip) {
  VariantResult out = Unrun(variant);
  const RunConfig& c = variant.config;
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
