// The cuda_graph runner (compiled only with --config=cuda): GraphStepRunner's decisions
// (graph_step.h) over a CUDA backend.
//
// Capture: gradients set to None, then forward + loss + backward + optimizer step recorded into
// one at::cuda::CUDAGraph on static input buffers, on a side stream of the training device
// (backward allocates the gradients inside the graph's private pool, so later replays write
// them there). Nothing in the captured region reads a value back to the host. Optimizers whose
// step reads a host-side counter (Adam's bias correction) would be frozen at the captured step,
// so they are refused (OptimizerEntry::capturable); so is any optimizer under a learning-rate
// schedule (the lr is a host scalar baked into the captured kernels: experiments/run.cc).
#include <ATen/core/CachingHostAllocator.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <exception>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/torch_error.h"
#include "plugins/compile/cuda_graph.h"
#include "plugins/compile/graph_step.h"

namespace trainlab::compile {
namespace {

// A CUDAGraph that can be abandoned after a capture that threw. When cudaStreamEndCapture fails
// (an invalidated capture), CUDAGraph::capture_end throws before it tells the device and host
// caching allocators that the capture is over, and its destructor then leaves the private pool
// alone: later allocations would keep checking a dead capture and the pool would never be
// freed. Abandon() does what capture_end and reset() would have done.
class AbandonableGraph final : public at::cuda::CUDAGraph {
 public:
  // Call once the capture has ended or failed; `drop_tensors` must free every tensor allocated
  // during the capture (they live in the pool being released).
  template <class F>
  void Abandon(F&& drop_tensors) {
    const bool pool_owned = !capture_ended_ && capture_dev_ >= 0;
    const auto dev = capture_dev_;
    const auto pool = mempool_id_;
    if (pool_owned) {
      Quietly([&] { c10::cuda::CUDACachingAllocator::endAllocateToPool(dev, pool); });
      Quietly([&] { at::getHostAllocator(at::kCUDA)->end_allocate_to_pool(pool); });
    }
    drop_tensors();
    if (pool_owned) {
      Quietly([&] { c10::cuda::CUDACachingAllocator::releasePool(dev, pool); });
      Quietly([&] { at::getHostAllocator(at::kCUDA)->release_pool(pool); });
    }
  }

 private:
  // Cleanup after a failure: a second error would only hide the first, which is reported.
  template <class F>
  static void Quietly(F&& f) {
    try {
      f();
    } catch (const std::exception&) {
    }
  }
};

class CudaGraphBackend final : public GraphBackend {
 public:
  CudaGraphBackend(StepFunctions fns, StepOptions options)
      : fns_(std::move(fns)),
        options_(std::move(options)),
        // On the training device, whichever device happens to be current.
        side_(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, fns_.device.index())) {}

  StepOutput WarmupStep(const at::Tensor& x, const at::Tensor& y) override {
    SyncDevice(fns_.device);
    StepOutput out;
    {
      c10::cuda::CUDAStreamGuard guard(side_);
      out = EagerStep(fns_, options_, x, y, /*phases=*/nullptr);
    }
    SyncDevice(fns_.device);
    return out;
  }

  absl::Status Capture(const at::Tensor& x, const at::Tensor& y) override {
    static_x_ = x.clone();
    static_y_ = y.clone();
    for (auto& p : fns_.module->parameters()) p.mutable_grad().reset();
    SyncDevice(fns_.device);
    // Autocast's weight-cast cache must not outlive the capture (as torch.cuda.graphs advises).
    const bool cache = at::autocast::is_autocast_cache_enabled();
    at::autocast::set_autocast_cache_enabled(false);
    absl::Status status;
    {
      c10::cuda::CUDAStreamGuard guard(side_);  // restores the current stream on any exit
      graph_.emplace();
      bool capturing = false;
      try {
        // Thread-local mode: the loader's workers may query CUDA events (pinned-slot fences)
        // while this thread captures; global mode would invalidate the capture for that.
        graph_->capture_begin(/*pool=*/{0, 0}, cudaStreamCaptureModeThreadLocal);
        capturing = true;
        auto [loss, logits] = ForwardAndLoss(fns_, options_, static_x_, static_y_);
        loss.backward();
        fns_.optimizer_step();
        static_out_ = {loss.detach(), logits.detach().argmax(1).eq(static_y_).sum()};
        capturing = false;
        graph_->capture_end();
      } catch (const std::exception& e) {
        status = absl::InternalError(TorchErrorLine(e));
        if (capturing) {
          try {
            graph_->capture_end();  // ends the stream's capture even when it was invalidated
          } catch (const std::exception&) {
          }
        }
        (void)cudaGetLastError();  // an invalidated capture leaves its error pending
        // Tensors made during the capture (gradients included) hold no values: drop them, and
        // with them the graph's memory pool.
        graph_->Abandon([&] {
          static_out_ = {};
          for (auto& p : fns_.module->parameters()) p.mutable_grad().reset();
          static_x_ = at::Tensor();
          static_y_ = at::Tensor();
        });
        graph_.reset();
      }
    }
    at::autocast::set_autocast_cache_enabled(cache);
    SyncDevice(fns_.device);
    return status;
  }

  StepOutput Replay(const at::Tensor& x, const at::Tensor& y) override {
    static_x_.copy_(x, /*non_blocking=*/true);
    static_y_.copy_(y, /*non_blocking=*/true);
    graph_->replay();
    // Copies, so that a caller holding the output across the next replay sees this batch's.
    return {static_out_.loss.clone(), static_out_.correct.clone()};
  }

  StepOutput EagerStepKeepingGradients(const at::Tensor& x, const at::Tensor& y,
                                       PhaseTimes* phases) override {
    return compile::EagerStepKeepingGradients(fns_, options_, x, y, phases);
  }

  void Discard() override {
    SyncDevice(fns_.device);
    graph_.reset();
    static_out_ = {};
  }

 private:
  StepFunctions fns_;
  StepOptions options_;
  c10::cuda::CUDAStream side_;
  std::optional<AbandonableGraph> graph_;
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
        "cuda_graph cannot capture this optimizer step: it reads a host-side value that changes "
        "from step to step (Adam-style bias correction, or a learning rate set per batch by "
        "--lr_schedule/--warmup_epochs) that a replayed graph would freeze");
  }
  c10::Device device = fns.device;
  if (!device.has_index()) device = c10::Device(c10::kCUDA, c10::cuda::current_device());
  StepFunctions on_device = fns;
  on_device.device = device;
  return std::unique_ptr<StepRunner>(std::make_unique<GraphStepRunner>(
      "cuda_graph", std::make_unique<CudaGraphBackend>(on_device, options), kCudaGraphWarmupSteps));
}

}  // namespace trainlab::compile
