// One training step, and the knobs a compile strategy turns on it.
//
// The Trainer hands the step type-erased functions (forward, zero_grad, optimizer step) so that
// strategies know nothing of the concrete model or optimizer. `StepOptions` is what strategies
// (plugins/compile/) edit: memory format, autocast dtype, cuDNN autotuning, and, for
// cuda_graph, a replacement for the eager runner.
//
//   x: (B, 3, 32, 32) on the device -> logits (B, 10) -> loss () and correct-count ()
//
// Example:
//   StepOptions options;                    // eager
//   auto runner = MakeStepRunner(fns, options);
//   absl::StatusOr<StepOutput> out = (*runner)->Run(x, y, /*phases=*/nullptr);
#ifndef TRAINLAB_CORE_STEP_H_
#define TRAINLAB_CORE_STEP_H_

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/autocast.h"
#include "core/convolution.h"
#include "core/module_scope.h"
#include "core/normalization.h"
#include "core/nvtx.h"
#include "core/stats.h"
#include "core/timer.h"

namespace trainlab {

// Data-parallel gradient averaging around a step (plugins/distributed: c10d's Reducer), empty
// when one process trains: `before_forward` at the start of the step, `before_backward` with
// the loss, after which backward() returns with the gradients averaged over every rank.
struct GradientHooks {
  std::function<void()> before_forward;
  std::function<void(const at::Tensor& loss)> before_backward;
  bool active() const { return static_cast<bool>(before_backward); }
};

// What a step needs from the model and optimizer, type-erased.
struct StepFunctions {
  torch::nn::Module* module = nullptr;                   // parameters, train()/eval(), to()
  std::function<at::Tensor(const at::Tensor&)> forward;  // images -> logits
  std::function<void()> zero_grad;                       // the optimizer's zero_grad()
  std::function<void()> optimizer_step;                  // the optimizer's step()
  c10::Device device = c10::kCPU;
  bool optimizer_capturable = false;  // see OptimizerEntry::capturable
  GradientHooks gradients;            // data-parallel averaging; empty for one process
};

// Device scalars; read them after the step's synchronize.
struct StepOutput {
  at::Tensor loss;     // () float: mean cross-entropy of the batch
  at::Tensor correct;  // () int64: number of top-1 hits
};

// Runs steps. The eager runner is below; cuda_graph brings its own.
class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // `phases`, when not null, receives forward/backward/step times; measuring them costs a
  // device synchronize between phases, so the trainer asks only when tracing.
  // An error (a CUDA graph capture that failed) ends the run: the caller reports it.
  virtual absl::StatusOr<StepOutput> Run(const at::Tensor& x, const at::Tensor& y,
                                         PhaseTimes* phases) = 0;
};

struct StepOptions;
using RunnerFactory = std::function<absl::StatusOr<std::unique_ptr<StepRunner>>(
    const StepFunctions&, const StepOptions&)>;

struct StepOptions {
  // Layout of the model's weights and of every input batch (ChannelsLast = NHWC).
  c10::MemoryFormat memory_format = c10::MemoryFormat::Contiguous;
  // When set, forward and loss run under autocast to this dtype (backward never does).
  std::optional<c10::ScalarType> autocast_dtype;
  // cuDNN benchmark mode: time every algorithm once per new shape and keep the fastest.
  bool cudnn_benchmark = false;
  // Cross-entropy's label smoothing (PyTorch's definition): the target is (1 - e) one-hot plus
  // e / classes everywhere. A training setting, not a strategy's: the run sets it.
  double label_smoothing = 0;
  // Runs the model's convolutions (those it calls through core/convolution.h's Conv2d) its own
  // way during the forward pass and evaluation (conv_autotune sets it); null: the library's.
  std::shared_ptr<ConvolutionOverride> convolution;
  // Runs the model's batch norms (those it calls through core/normalization.h's BatchNorm2d, with
  // the ReLU after one) its own way, as `convolution` does (fused_bn_relu sets it).
  std::shared_ptr<NormalizationOverride> normalization;
  // Replaces the eager runner (cuda_graph sets it).
  RunnerFactory make_runner;
  // Names of the strategies that made these options, in order ("eager" when none).
  std::vector<std::string> names;
};

// Forward + loss under the options' autocast. Returns {loss, logits}.
inline std::pair<at::Tensor, at::Tensor> ForwardAndLoss(const StepFunctions& fns,
                                                        const StepOptions& options,
                                                        const at::Tensor& x, const at::Tensor& y) {
  std::optional<AutocastGuard> autocast;
  if (options.autocast_dtype) autocast.emplace(fns.device.type(), *options.autocast_dtype);
  at::Tensor logits;
  {
    nvtx::PhaseRange range(nvtx::Phase::kForward);
    ScopedConvolutionOverride convolutions(options.convolution.get());
    ScopedNormalizationOverride normalizations(options.normalization.get());
    logits = fns.forward(x);
  }
  // Cross-entropy in float32 whatever the autocast dtype (autocast does the same for it).
  nvtx::PhaseRange range(nvtx::Phase::kLoss);
  at::Tensor loss = torch::nn::functional::cross_entropy(
      logits.to(at::kFloat), y,
      torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options.label_smoothing));
  return {loss, logits};
}

// zero_grad, forward, loss, backward, optimizer step: the plain step every strategy builds on.
// Each part is an NVTX range when --nvtx is on (core/nvtx.h).
inline StepOutput EagerStep(const StepFunctions& fns, const StepOptions& options,
                            const at::Tensor& x, const at::Tensor& y, PhaseTimes* phases) {
  Clock::time_point t0 = phases ? Clock::now() : Clock::time_point{};
  {
    nvtx::PhaseRange range(nvtx::Phase::kZeroGrad);
    fns.zero_grad();
  }
  if (fns.gradients.before_forward) fns.gradients.before_forward();
  auto [loss, logits] = ForwardAndLoss(fns, options, x, y);
  Clock::time_point t1 = phases ? SyncAndNow(fns.device) : t0;
  {
    nvtx::PhaseRange range(nvtx::Phase::kBackward);
    if (fns.gradients.before_backward) fns.gradients.before_backward(loss);
    loss.backward();
  }
  Clock::time_point t2 = phases ? SyncAndNow(fns.device) : t0;
  {
    nvtx::PhaseRange range(nvtx::Phase::kOptimizerStep);
    // A user scope (free when no profile listens) gives the optimizer its own row in one.
    RECORD_USER_SCOPE(kOptimizerStepScope);
    fns.optimizer_step();
  }
  if (phases) {
    Clock::time_point t3 = SyncAndNow(fns.device);
    *phases = {Seconds(t1 - t0), Seconds(t2 - t1), Seconds(t3 - t2)};
  }
  at::Tensor correct = logits.detach().argmax(1).eq(y).sum();
  return {loss.detach(), correct};
}

class EagerRunner final : public StepRunner {
 public:
  EagerRunner(StepFunctions fns, StepOptions options)
      : fns_(std::move(fns)), options_(std::move(options)) {}
  absl::StatusOr<StepOutput> Run(const at::Tensor& x, const at::Tensor& y,
                                 PhaseTimes* phases) override {
    return EagerStep(fns_, options_, x, y, phases);
  }

 private:
  StepFunctions fns_;
  StepOptions options_;
};

// A compile strategy that cannot run here (on this device, with this optimizer, in this build, or
// whose graph capture failed) says so with this payload on its Status: c8 lists such a strategy
// as skipped and runs the others; any other error (a loader failure, a full disk) stops c8.
inline constexpr char kStrategyCannotRun[] = "trainlab/strategy-cannot-run";
inline absl::Status StrategyCannotRun(absl::Status s) {
  if (!s.ok()) s.SetPayload(kStrategyCannotRun, absl::Cord("1"));
  return s;
}
inline bool IsStrategyCannotRun(const absl::Status& s) {
  return !s.ok() && s.GetPayload(kStrategyCannotRun).has_value();
}

// An exception thrown inside a step (LibTorch's: a TorchScript model's shape error; data-parallel,
// an all-reduce that failed inside backward), as an Internal Status with this payload: the
// Trainer adds the epoch and batch, and a data-parallel run says which peer may be to blame.
inline constexpr char kStepException[] = "trainlab/step-exception";
inline absl::Status StepException(const std::string& message) {
  absl::Status s = absl::InternalError(message);
  s.SetPayload(kStepException, absl::Cord("1"));
  return s;
}
inline bool IsStepException(const absl::Status& s) {
  return !s.ok() && s.GetPayload(kStepException).has_value();
}

// The runner the options ask for: the strategy's own, or eager.
inline absl::StatusOr<std::unique_ptr<StepRunner>> MakeStepRunner(const StepFunctions& fns,
                                                                  const StepOptions& options) {
  if (options.make_runner) {
    // A captured step would have to hold DDP's work around it too: the Reducer's bucket rebuild
    // and bookkeeping, and rank 0's batch-norm buffers broadcast before each forward
    // (docs/distributed.md: why cuda_graph with several ranks stays refused).
    if (fns.gradients.active()) {
      return absl::UnimplementedError(absl::StrCat(
          "strategy ", absl::StrJoin(options.names, "+"),
          " brings its own step, which does not average gradients across ranks (a captured step "
          "cannot hold DDP's bucket rebuild and buffer broadcasts: docs/distributed.md)"));
    }
    return options.make_runner(fns, options);
  }
  return std::unique_ptr<StepRunner>(std::make_unique<EagerRunner>(fns, options));
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_STEP_H_
