// Trainer: trains a Model with an Optimizer on batches from a Loader, and measures what the lab
// measures (see stats.h for the definitions).
//
// One batch (TrainBatch):  wait ── copy ── step (forward, loss, backward, optimizer) ── sync
//   wait: time blocked in loader.next()          -> load_s
//   copy: batch to the device, non_blocking       -> copy_s (not part of load_s)
//   step: through a StepRunner (eager or a strategy's), ended by a device synchronize -> train_s
// The loss and hit count are read from the device after that synchronize, outside train_s. An
// exception thrown by the step (a TorchScript model's shape error) comes back as a Status that
// names the epoch and batch. With --nvtx, each of these is an NVTX range (core/nvtx.h: epoch,
// wait, copy, step and its parts, sync, evaluation); with a `layers` tracer, every layer too.
//
// An epoch is BeginEpoch, TrainBatch until it returns no batch, EndEpoch. A caller that does its
// own work between batches (the run's schedule, agreement across ranks, checkpoints and stops:
// experiments/training/epoch.cc) drives these itself; TrainEpoch is the plain loop, which ends
// the epoch at a NaN or infinite loss.
//
// Example:
//   Trainer trainer(*model, optimizer, loader, {.device = torch::kCPU});
//   absl::StatusOr<EpochStats> s = trainer.TrainEpoch(0);
//   absl::StatusOr<EvalStats> test = trainer.Evaluate(test_loader);
#ifndef TRAINLAB_CORE_TRAINER_H_
#define TRAINLAB_CORE_TRAINER_H_

#include <ATen/Context.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>
#include <torch/utils.h>

#include <cmath>
#include <functional>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/concepts.h"
#include "core/nvtx.h"
#include "core/profiling/layer_tracer.h"
#include "core/stats.h"
#include "core/step.h"
#include "core/timer.h"
#include "core/torch_error.h"
#include "core/trace.h"

namespace trainlab {

struct TrainerOptions {
  c10::Device device = c10::kCPU;
  StepOptions step;                   // from ResolveStrategies(); default: eager
  bool optimizer_capturable = false;  // see OptimizerEntry::capturable
  GradientHooks gradients;            // data-parallel averaging (plugins/distributed); or none
  TraceRecorder* trace = nullptr;     // spans per batch when set
  bool record_phases = false;         // forward/backward/step times per batch (syncs on CUDA)
  // Evaluate() averages the logits of each image and its mirror (test-time augmentation, as
  // airbench does): the horizontal flip the training augmentation also uses.
  bool tta_flip = false;
  // When set, each training step and each test batch is one recording of it (the layers of one
  // pass): --nvtx=layers gives it a listener that draws every layer (core/profiling/nvtx_layers.h).
  LayerTracer* layers = nullptr;
};

// Applies `step` to `model` (cuDNN mode, weight memory format) and builds the step runner over
// `model` and `optimizer`, which must outlive it. The Trainer does this before its first epoch;
// benchmarks call it directly to time bare steps.
template <Model M, Optimizer O>
absl::StatusOr<std::unique_ptr<StepRunner>> PrepareStepRunner(M& model, O& optimizer,
                                                              c10::Device device,
                                                              bool optimizer_capturable,
                                                              const StepOptions& step,
                                                              GradientHooks gradients = {}) {
  at::globalContext().setBenchmarkCuDNN(step.cudnn_benchmark);
  if (step.memory_format != c10::MemoryFormat::Contiguous) {
    // Module::to() has no memory-format overload in LibTorch; convert each 4-D weight.
    torch::NoGradGuard no_grad;
    for (at::Tensor& p : model.parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(step.memory_format));
    }
  }
  StepFunctions fns;
  fns.module = &model;
  fns.forward = [&model](const at::Tensor& x) -> at::Tensor { return model.forward(x); };
  fns.zero_grad = [&optimizer] { optimizer.zero_grad(); };
  fns.optimizer_step = [&optimizer] { optimizer.step(); };
  fns.device = device;
  fns.optimizer_capturable = optimizer_capturable;
  fns.gradients = std::move(gradients);
  return MakeStepRunner(fns, step);
}

template <Model M, Optimizer O, Loader L>
class Trainer {
 public:
  // The model must already be on `options.device`, and the optimizer built over its parameters.
  Trainer(M& model, O& optimizer, L& loader, TrainerOptions options)
      : model_(model), optimizer_(optimizer), loader_(loader), options_(std::move(options)) {}

  // Starts epoch `epoch` (0-based; EpochStats::epoch is 1-based as the lab prints it).
  // `resume`: the batches of this epoch trained before a stop (from a checkpoint); the epoch goes
  // on after them, and its stats cover the whole epoch, as if it had not stopped.
  absl::Status BeginEpoch(int64_t epoch, std::optional<EpochStats> resume = {}) {
    if (!runner_) {
      if (absl::Status s = Prepare(); !s.ok()) return s;
    }
    if (options_.trace) options_.trace->NameThisThread("trainer");
    model_.train();
    stats_ = EpochStats{};
    loss_sum_ = 0;
    correct_ = 0;
    earlier_s_ = 0;
    if (resume) {
      stats_ = std::move(*resume);
      earlier_s_ = stats_.epoch_s;
      for (const BatchRecord& r : stats_.batches) {
        loss_sum_ += r.loss;
        correct_ += r.correct;
      }
    }
    stats_.epoch = epoch + 1;
    epoch_range_.Start(nvtx::Phase::kEpoch, static_cast<uint64_t>(stats_.epoch));
    loader_.start_epoch(epoch, static_cast<int64_t>(stats_.batches.size()));
    epoch_start_ = Clock::now();
    return absl::OkStatus();
  }

  // Trains the epoch's next batch and records it (`lr`: the rate it trained at, for its record);
  // nullptr when the epoch has no batch left.
  absl::StatusOr<const BatchRecord*> TrainBatch(double lr = 0) {
    const c10::Device device = options_.device;
    TraceRecorder* trace = options_.trace;
    const uint64_t number = stats_.batches.size() + 1;  // the NVTX ranges' payload
    std::optional<nvtx::PhaseRange> wait(std::in_place, nvtx::Phase::kWait, number);
    const Clock::time_point t0 = Clock::now();
    std::optional<Batch> batch = loader_.next();
    const Clock::time_point t1 = Clock::now();
    wait.reset();
    if (!batch) return nullptr;
    if (trace) trace->Span("wait for batch", "data", t0, t1);

    std::optional<nvtx::PhaseRange> copy(std::in_place, nvtx::Phase::kCopy, number);
    const bool non_blocking = device.is_cuda();
    at::Tensor x =
        batch->images.to(device, at::kFloat, non_blocking).contiguous(options_.step.memory_format);
    at::Tensor y = batch->labels.to(device, at::kLong, non_blocking);
    const Clock::time_point t2 = SyncAndNow(device);
    copy.reset();
    if (trace) trace->Span("host to device", "copy", t1, t2);

    const bool want_phases = options_.record_phases || trace != nullptr;
    PhaseTimes phases;
    absl::StatusOr<StepOutput> step;
    std::optional<nvtx::PhaseRange> step_range(std::in_place, nvtx::Phase::kStep, number);
    try {
      std::optional<LayerTracer::Recording> layers;
      if (options_.layers != nullptr) layers.emplace(*options_.layers);
      step = runner_->Run(x, y, want_phases ? &phases : nullptr);
    } catch (const std::exception& e) {
      step = StepException(TorchErrorLine(e));
    }
    Clock::time_point t3;
    {
      nvtx::PhaseRange sync(nvtx::Phase::kSync);
      t3 = SyncAndNow(device);
    }
    step_range.reset();
    if (!step.ok()) {
      absl::Status named(step.status().code(),
                         absl::StrCat("epoch ", stats_.epoch, ", batch ", batch->index + 1, ": ",
                                      step.status().message()));
      step.status().ForEachPayload(
          [&named](absl::string_view url, const absl::Cord& p) { named.SetPayload(url, p); });
      // A strategy's own runner failing (a capture) is that strategy not running here; an
      // exception is a failure, wherever it came from.
      return options_.step.make_runner && !IsStepException(named) ? StrategyCannotRun(named)
                                                                  : named;
    }
    const StepOutput& out = *step;
    if (trace) {
      if (want_phases && !options_.step.make_runner) {
        auto f_end = t2 + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(phases.forward_s));
        auto b_end = f_end + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(phases.backward_s));
        trace->Span("forward", "train", t2, f_end);
        trace->Span("backward", "train", f_end, b_end);
        trace->Span("optimizer step", "train", b_end, t3);
      }
      trace->Span("train step", "train", t2, t3);
    }

    BatchRecord rec;
    rec.index = batch->index;
    rec.size = x.size(0);
    rec.wait_s = Seconds(t1 - t0);
    rec.copy_s = Seconds(t2 - t1);
    rec.train_s = Seconds(t3 - t2);
    rec.loss = out.loss.template item<double>();
    rec.correct = out.correct.template item<int64_t>();
    if (want_phases && !options_.step.make_runner) rec.phases = phases;
    rec.lr = lr;

    stats_.load_s += rec.wait_s;
    stats_.copy_s += rec.copy_s;
    stats_.train_s += rec.train_s;
    stats_.samples += rec.size;
    loss_sum_ += rec.loss;
    correct_ += rec.correct;
    stats_.batches.push_back(rec);
    return &stats_.batches.back();
  }

  // The epoch so far: its batches and times, epoch_s up to now.
  const EpochStats& SoFar() {
    stats_.epoch_s = earlier_s_ + Seconds(Clock::now() - epoch_start_);
    return stats_;
  }
  // The epoch's progress, for a progress line.
  EpochProgress Progress() const {
    return EpochProgress{
        .epoch = stats_.epoch,
        .batches_done = static_cast<int64_t>(stats_.batches.size()),
        .batches_total = loader_.batches_per_epoch(),
        .samples = stats_.samples,
        .elapsed_s = Seconds(Clock::now() - epoch_start_),
        .running_loss =
            stats_.batches.empty() ? 0.0 : loss_sum_ / static_cast<double>(stats_.batches.size())};
  }
  // The global step of the next batch: epoch x batches per epoch + batches done (from 0), the
  // count a learning-rate schedule runs on.
  int64_t NextStep() const {
    return (stats_.epoch - 1) * loader_.batches_per_epoch() +
           static_cast<int64_t>(stats_.batches.size());
  }
  // Ends the epoch after the batch just trained: its loss (or another rank's) is not finite.
  // `loss`: this rank's loss when it is the one that diverged; NaN when another rank's did.
  void Diverged(double loss) {
    stats_.diverged = Divergence{stats_.epoch, static_cast<int64_t>(stats_.batches.size()), loss};
  }

  // The epoch's figures: loss and top-1 over its batches, its times.
  absl::StatusOr<EpochStats> EndEpoch() {
    stats_.epoch_s = earlier_s_ + Seconds(Clock::now() - epoch_start_);
    epoch_range_.End();
    if (absl::Status s = loader_.status(); !s.ok()) return s;
    if (stats_.batches.empty()) {
      return absl::FailedPreconditionError("the loader gave no batch for this epoch");
    }
    stats_.loss = loss_sum_ / static_cast<double>(stats_.batches.size());
    stats_.top1 = 100.0 * static_cast<double>(correct_) / static_cast<double>(stats_.samples);
    return std::move(stats_);
  }

  // One whole epoch with nothing between batches; a NaN or infinite loss ends it
  // (EpochStats::diverged).
  absl::StatusOr<EpochStats> TrainEpoch(int64_t epoch, std::optional<EpochStats> resume = {}) {
    if (absl::Status s = BeginEpoch(epoch, std::move(resume)); !s.ok()) return s;
    for (;;) {
      absl::StatusOr<const BatchRecord*> b = TrainBatch();
      if (!b.ok()) return b.status();
      if (*b == nullptr) break;
      if (!std::isfinite((*b)->loss)) {
        Diverged((*b)->loss);
        break;
      }
    }
    return EndEpoch();
  }

  // Loss and top-1 over every batch of `test_loader` (no augmentation is the loader's business),
  // in eval mode without gradients. Leaves the model in train mode.
  template <Loader TL>
  absl::StatusOr<EvalStats> Evaluate(TL& test_loader, int64_t epoch = 0) {
    torch::NoGradGuard no_grad;
    model_.eval();
    nvtx::PhaseRange range(nvtx::Phase::kEvaluation, static_cast<uint64_t>(epoch + 1));
    const Clock::time_point start = SyncAndNow(options_.device);
    EvalStats stats;
    double loss_sum = 0;
    int64_t correct = 0;
    test_loader.start_epoch(epoch);
    while (std::optional<Batch> batch = test_loader.next()) {
      at::Tensor x = batch->images.to(options_.device, at::kFloat, options_.device.is_cuda())
                         .contiguous(options_.step.memory_format);
      at::Tensor y = batch->labels.to(options_.device, at::kLong, options_.device.is_cuda());
      std::optional<AutocastGuard> autocast;
      if (options_.step.autocast_dtype)
        autocast.emplace(options_.device.type(), *options_.step.autocast_dtype);
      ScopedConvolutionOverride convolutions(options_.step.convolution.get());
      ScopedNormalizationOverride normalizations(options_.step.normalization.get());
      // One pass of the model: with a layers tracer, one recording (its layers named as in a step).
      auto forward = [this](const at::Tensor& images) {
        std::optional<LayerTracer::Recording> layers;
        if (options_.layers != nullptr) layers.emplace(*options_.layers);
        return model_.forward(images).to(at::kFloat);
      };
      at::Tensor logits = forward(x);
      if (options_.tta_flip) logits = (logits + forward(x.flip({3}))) / 2;
      // Sum, not mean, so a smaller last batch weighs by its size.
      loss_sum +=
          torch::nn::functional::cross_entropy(
              logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
              .template item<double>();
      correct += logits.argmax(1).eq(y).sum().template item<int64_t>();
      stats.samples += x.size(0);
    }
    model_.train();
    stats.seconds = Seconds(SyncAndNow(options_.device) - start);
    if (absl::Status s = test_loader.status(); !s.ok()) return s;
    if (stats.samples > 0) {
      stats.loss = loss_sum / static_cast<double>(stats.samples);
      stats.top1 = 100.0 * static_cast<double>(correct) / static_cast<double>(stats.samples);
    }
    return stats;
  }

 private:
  // Applies the step options to the model and builds the runner (once, before the first epoch).
  absl::Status Prepare() {
    absl::StatusOr<std::unique_ptr<StepRunner>> runner =
        PrepareStepRunner(model_, optimizer_, options_.device, options_.optimizer_capturable,
                          options_.step, options_.gradients);
    if (!runner.ok()) return StrategyCannotRun(runner.status());
    runner_ = std::move(*runner);
    return absl::OkStatus();
  }

  M& model_;
  O& optimizer_;
  L& loader_;
  TrainerOptions options_;
  std::unique_ptr<StepRunner> runner_;
  // The epoch under way.
  EpochStats stats_;
  double loss_sum_ = 0;
  int64_t correct_ = 0;
  double earlier_s_ = 0;  // epoch time spent before a resume
  Clock::time_point epoch_start_;
  nvtx::SpanRange epoch_range_;  // the epoch's NVTX range, BeginEpoch to EndEpoch
};

}  // namespace trainlab

#endif  // TRAINLAB_CORE_TRAINER_H_
