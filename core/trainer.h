// Trainer: runs epochs of a Model with an Optimizer on batches from a Loader, and measures what
// the lab measures (see stats.h for the definitions).
//
// One epoch, per batch:   wait ── copy ── step (forward, loss, backward, optimizer) ── sync
//   wait: time blocked in loader.next()          -> load_s
//   copy: batch to the device, non_blocking       -> copy_s (not part of load_s)
//   step: through a StepRunner (eager or a strategy's), ended by a device synchronize -> train_s
// The loss and hit count are read from the device after that synchronize, outside train_s.
// A NaN or infinite loss ends the epoch and is reported in EpochStats::diverged.
// Data-parallel, every rank must leave an epoch after the same batch: `agree` combines the ranks'
// verdicts on each batch (diverged? stop asked for?) into the job's, one small all-reduce, timed
// in the epoch's time but in none of load, copy or train.
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
#include "core/stats.h"
#include "core/step.h"
#include "core/timer.h"
#include "core/trace.h"

namespace trainlab {

// What a batch decides about the rest of the epoch; data-parallel, the same on every rank.
struct BatchVerdict {
  bool diverged = false;  // a NaN or infinite loss (on some rank)
  int stop_signal = 0;    // a signal asked for a stop after this batch (on some rank), or 0
};

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
  // Sets the learning rate of global step `step` (epoch x batches per epoch + batch, from 0)
  // before the batch is fetched, outside every timed interval, and returns it for the batch's
  // record (core/lr_schedule.h). Unset: the optimizer's rate is left as it is.
  std::function<double(int64_t step)> set_learning_rate;
  // Called after every batch with the epoch's progress (a progress line); nothing is timed in it
  // that the lab's figures count, except the few microseconds it takes.
  std::function<void(const EpochProgress&)> on_batch;
  // This process's request to stop after the batch under way: a signal number, or 0 (Ctrl-C).
  std::function<int()> stop_requested;
  // Data-parallel: every rank's verdict on the batch in, the job's out (any rank's divergence or
  // stop is every rank's). Unset: this process's verdict stands.
  std::function<absl::StatusOr<BatchVerdict>(const BatchVerdict& mine)> agree;
  // Called after every batch that did not diverge with the epoch so far (its batches, times, and
  // epoch_s = the time elapsed) and the agreed stop signal (0: go on): where checkpoints are
  // written and a stop takes effect. A non-OK Status ends the epoch and TrainEpoch returns it.
  std::function<absl::Status(const EpochStats& so_far, int stop_signal)> after_batch;
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

  // Trains one epoch (`epoch` is 0-based; EpochStats::epoch is 1-based as the lab prints it).
  // `resume`: the batches of this epoch trained before a stop (from a checkpoint); the epoch goes
  // on after them, and the returned stats cover the whole epoch, as if it had not stopped.
  absl::StatusOr<EpochStats> TrainEpoch(int64_t epoch, std::optional<EpochStats> resume = {}) {
    if (!runner_) {
      if (absl::Status s = Prepare(); !s.ok()) return s;
    }
    const c10::Device device = options_.device;
    TraceRecorder* trace = options_.trace;
    if (trace) trace->NameThisThread("trainer");
    model_.train();
    EpochStats stats;
    stats.epoch = epoch + 1;
    double loss_sum = 0;
    int64_t correct = 0;
    double earlier_s = 0;  // epoch time spent before a resume
    if (resume) {
      stats = std::move(*resume);
      stats.epoch = epoch + 1;
      earlier_s = stats.epoch_s;
      for (const BatchRecord& r : stats.batches) {
        loss_sum += r.loss;
        correct += r.correct;
      }
    }

    loader_.start_epoch(epoch, static_cast<int64_t>(stats.batches.size()));
    const Clock::time_point epoch_start = Clock::now();
    for (;;) {
      double lr = 0;
      if (options_.set_learning_rate) {
        lr = options_.set_learning_rate(epoch * loader_.batches_per_epoch() +
                                        static_cast<int64_t>(stats.batches.size()));
      }
      const Clock::time_point t0 = Clock::now();
      std::optional<Batch> batch = loader_.next();
      const Clock::time_point t1 = Clock::now();
      if (!batch) break;
      if (trace) trace->Span("wait for batch", "data", t0, t1);

      const bool non_blocking = device.is_cuda();
      at::Tensor x = batch->images.to(device, at::kFloat, non_blocking)
                         .contiguous(options_.step.memory_format);
      at::Tensor y = batch->labels.to(device, at::kLong, non_blocking);
      const Clock::time_point t2 = SyncAndNow(device);
      if (trace) trace->Span("host to device", "copy", t1, t2);

      const bool want_phases = options_.record_phases || trace != nullptr;
      PhaseTimes phases;
      absl::StatusOr<StepOutput> step = runner_->Run(x, y, want_phases ? &phases : nullptr);
      const Clock::time_point t3 = SyncAndNow(device);
      if (!step.ok()) {
        absl::Status named(step.status().code(),
                           absl::StrCat("epoch ", stats.epoch, ", batch ", batch->index + 1, ": ",
                                        step.status().message()));
        // A strategy's own runner failing (a capture) is that strategy not running here.
        return options_.step.make_runner ? StrategyCannotRun(named) : named;
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

      stats.load_s += rec.wait_s;
      stats.copy_s += rec.copy_s;
      stats.train_s += rec.train_s;
      stats.samples += rec.size;
      loss_sum += rec.loss;
      correct += rec.correct;
      stats.batches.push_back(rec);
      if (options_.on_batch) {
        options_.on_batch(
            EpochProgress{.epoch = stats.epoch,
                          .batches_done = static_cast<int64_t>(stats.batches.size()),
                          .batches_total = loader_.batches_per_epoch(),
                          .samples = stats.samples,
                          .elapsed_s = Seconds(Clock::now() - epoch_start),
                          .running_loss = loss_sum / static_cast<double>(stats.batches.size())});
      }
      BatchVerdict verdict{.diverged = !std::isfinite(rec.loss),
                           .stop_signal = options_.stop_requested ? options_.stop_requested() : 0};
      if (options_.agree) {
        absl::StatusOr<BatchVerdict> agreed = options_.agree(verdict);
        if (!agreed.ok()) return agreed.status();
        verdict = *agreed;
      }
      if (verdict.diverged) {
        // This rank's loss when it is the one that diverged; NaN when another rank's did.
        stats.diverged = Divergence{stats.epoch, static_cast<int64_t>(stats.batches.size()),
                                    std::isfinite(rec.loss) ? std::nan("") : rec.loss};
        break;
      }
      if (options_.after_batch) {
        stats.epoch_s = earlier_s + Seconds(Clock::now() - epoch_start);
        if (absl::Status s = options_.after_batch(stats, verdict.stop_signal); !s.ok()) return s;
      }
    }
    stats.epoch_s = earlier_s + Seconds(Clock::now() - epoch_start);
    if (absl::Status s = loader_.status(); !s.ok()) return s;
    if (stats.batches.empty()) {
      return absl::FailedPreconditionError("the loader gave no batch for this epoch");
    }
    stats.loss = loss_sum / static_cast<double>(stats.batches.size());
    stats.top1 = 100.0 * static_cast<double>(correct) / static_cast<double>(stats.samples);
    return stats;
  }

  // Loss and top-1 over every batch of `test_loader` (no augmentation is the loader's business),
  // in eval mode without gradients. Leaves the model in train mode.
  template <Loader TL>
  absl::StatusOr<EvalStats> Evaluate(TL& test_loader, int64_t epoch = 0) {
    torch::NoGradGuard no_grad;
    model_.eval();
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
      at::Tensor logits = model_.forward(x).to(at::kFloat);
      if (options_.tta_flip) logits = (logits + model_.forward(x.flip({3})).to(at::kFloat)) / 2;
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
};

}  // namespace trainlab

#endif  // TRAINLAB_CORE_TRAINER_H_
