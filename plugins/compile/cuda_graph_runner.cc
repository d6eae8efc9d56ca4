// The cuda_graph runner (compiled only with --config=cuda).
//
//   batches 1..3      eager steps on a side stream (warm-up: optimizer state, cuDNN plans and
//                     the caching allocator settle; these are ordinary training steps)
//   batch 4           capture: gradients set to None, then forward + loss + backward +
//                     optimizer step recorded into one at::cuda::CUDAGraph on static buffers
//                     (backward allocates the gradients inside the graph's private pool), then
//                     one replay to actually train on the batch
//   batches 5..       copy the batch into the static buffers, replay
//   a smaller batch   (the epoch's last) runs eagerly: a graph is shape-specialised
// Nothing in the captured region reads a value back to the host. Optimizers whose step reads a
// host-side counter (Adam's bias correction) would be frozen at the captured step, so they are
// refused (OptimizerEntry::capturable).
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "plugins/compile/cuda_graph.h"

namespace trainlab::compile {
namespace {

class CudaGraphRunner final : public StepRunner {
 public:
  CudaGraphRunner(StepFunctions fns, StepOptions options)
      : fns_(std::move(fns)), options_(std::move(options)) {}

  StepOutput Run(const at::Tensor& x, const at::Tensor& y, PhaseTimes* phases) override {
    if (graph_ && x.size(0) != static_x_.size(0)) return EagerStep(fns_, options_, x, y, phases);
    if (!graph_ && warmup_done_ < kCudaGraphWarmupSteps) {
      ++warmup_done_;
      return OnSideStream([&] { return EagerStep(fns_, options_, x, y, phases); });
    }
    if (!graph_) Capture(x, y);
    static_x_.copy_(x, /*non_blocking=*/true);
    static_y_.copy_(y, /*non_blocking=*/true);
    graph_->replay();
    // Copies, so that a caller holding the output across the next replay sees this batch's.
    return {static_out_.loss.clone(), static_out_.correct.clone()};
  }

 private:
  template <class F>
  StepOutput OnSideStream(F&& f) {
    SyncDevice(fns_.device);
    StepOutput out;
    {
      c10::cuda::CUDAStreamGuard guard(side_);
      out = f();
    }
    SyncDevice(fns_.device);
    return out;
  }

  void Capture(const at::Tensor& x, const at::Tensor& y) {
    static_x_ = x.clone();
    static_y_ = y.clone();
    for (auto& p : fns_.module->parameters()) p.mutable_grad().reset();
    OnSideStream([&] {
      // Autocast's weight-cast cache must not outlive the capture (as torch.cuda.graphs advises).
      const bool cache = at::autocast::is_autocast_cache_enabled();
      at::autocast::set_autocast_cache_enabled(false);
      graph_.emplace();
      graph_->capture_begin();
      auto [loss, logits] = ForwardAndLoss(fns_, options_, static_x_, static_y_);
      loss.backward();
      fns_.optimizer_step();
      static_out_ = {loss.detach(), logits.detach().argmax(1).eq(static_y_).sum()};
      graph_->capture_end();
      at::autocast::set_autocast_cache_enabled(cache);
      return StepOutput{};
    });
  }

  StepFunctions fns_;
  StepOptions options_;
  c10::cuda::CUDAStream side_ = c10::cuda::getStreamFromPool();
  int warmup_done_ = 0;
  std::optional<at::cuda::CUDAGraph> graph_;
  at::Tensor static_x_, static_y_;
  StepOutput static_out_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<StepRunner>> MakeCudaGraphRunner(const StepFunctions& fns,
                                                                const StepOptions& options) {
  if (!fns.device.is_cuda()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda_graph needs a CUDA device, not ", fns.device.str()));
  }
  if (!fns.optimizer_capturable) {
    return absl::FailedPreconditionError(
        "cuda_graph cannot capture this optimizer: its step reads a host-side step counter "
        "(Adam-style bias correction) that a replayed graph would freeze");
  }
  return std::unique_ptr<StepRunner>(std::make_unique<CudaGraphRunner>(fns, options));
}

}  // namespace trainlab::compile
