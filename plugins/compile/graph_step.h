// The decisions of a graph-replaying step runner, apart from the device that does the work.
//
// `GraphStepRunner` decides, batch by batch, whether to warm up, capture, replay or run an
// eager step; a `GraphBackend` does each of those on a device. The CUDA backend is in
// cuda_graph_runner.cc (--config=cuda only); graph_step_test.cc drives the same decisions with
// a fake backend on the CPU, so they are tested where CI runs.
//
//   batches 1..warmup   eager steps on the backend's capture stream (optimizer state, cuDNN
//                       plans and the caching allocator settle; ordinary training steps)
//   next full batch     capture forward + loss + backward + optimizer step once, then replay it
//                       to train on that batch. "Full" = the largest batch seen so far: a short
//                       batch (an epoch's last) is never captured, since a graph is specialised
//                       to its shapes and every later full batch would otherwise run eagerly
//   full batches        copy into the graph's static inputs, replay
//   a shorter batch     eager step that zeroes the gradients in place, so that they stay in the
//                       graph's static buffers (the captured optimizer step reads those)
//   a larger batch      (a loader whose first batches were short) the graph is dropped, one
//                       warm-up step runs at the new size (cuDNN plans, allocator) and the next
//                       batch of that size is captured
//   capture fails       the Status names the batch and the error; the run ends there. A broken
//                       graph is never replayed, and the backend leaves the device usable for
//                       whatever runs next (c8 reports the strategy as failed and goes on).
#ifndef TRAINLAB_PLUGINS_COMPILE_GRAPH_STEP_H_
#define TRAINLAB_PLUGINS_COMPILE_GRAPH_STEP_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/step.h"

namespace trainlab::compile {

// What a device must do for GraphStepRunner.
class GraphBackend {
 public:
  virtual ~GraphBackend() = default;
  // An ordinary eager step on the stream that captures will use, fenced on both sides.
  virtual StepOutput WarmupStep(const at::Tensor& x, const at::Tensor& y) = 0;
  // Records the whole step on static copies of x and y. On failure nothing is left capturing,
  // the graph is discarded and the error is returned; gradients are then undefined (None).
  virtual absl::Status Capture(const at::Tensor& x, const at::Tensor& y) = 0;
  // Copies x and y into the static inputs and replays the captured step.
  virtual StepOutput Replay(const at::Tensor& x, const at::Tensor& y) = 0;
  // An eager step that keeps the gradient tensors (zeroed in place, not set to None).
  virtual StepOutput EagerStepKeepingGradients(const at::Tensor& x, const at::Tensor& y,
                                               PhaseTimes* phases) = 0;
  // Drops the captured graph (before capturing again at another size).
  virtual void Discard() = 0;
};

// zero_grad with set_to_none=false: every defined gradient is zeroed where it lives.
inline void ZeroGradientsInPlace(torch::nn::Module& module) {
  for (at::Tensor& p : module.parameters()) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
}

// EagerStep, except that gradients are zeroed in place: backward then accumulates into the
// existing gradient tensors (the graph's static buffers) instead of allocating new ones.
inline StepOutput EagerStepKeepingGradients(const StepFunctions& fns, const StepOptions& options,
                                            const at::Tensor& x, const at::Tensor& y,
                                            PhaseTimes* phases) {
  StepFunctions in_place = fns;
  torch::nn::Module* module = fns.module;
  in_place.zero_grad = [module] { ZeroGradientsInPlace(*module); };
  return EagerStep(in_place, options, x, y, phases);
}

// How many steps of each kind a GraphStepRunner has taken.
struct GraphStepCounts {
  int64_t warmup = 0, captures = 0, replays = 0, eager = 0;
};

class GraphStepRunner final : public StepRunner {
 public:
  // `name` prefixes errors ("cuda_graph"); `warmup_steps` eager steps precede the capture.
  GraphStepRunner(std::string name, std::unique_ptr<GraphBackend> backend, int warmup_steps)
      : name_(std::move(name)), backend_(std::move(backend)), warmups_needed_(warmup_steps) {}

  absl::StatusOr<StepOutput> Run(const at::Tensor& x, const at::Tensor& y,
                                 PhaseTimes* phases) override {
    if (!failed_.ok()) return failed_;  // never replay after a failed capture
    const int64_t size = x.size(0);
    largest_ = std::max(largest_, size);
    if (graph_size_ != 0) {
      if (size == graph_size_) {
        ++counts_.replays;
        return backend_->Replay(x, y);
      }
      if (size < graph_size_) {
        ++counts_.eager;
        return backend_->EagerStepKeepingGradients(x, y, phases);
      }
      backend_->Discard();  // larger than the graph: warm up and capture again at this size
      graph_size_ = 0;
      warmups_needed_ = counts_.warmup + 1;
    }
    if (counts_.warmup < warmups_needed_) {
      ++counts_.warmup;
      return backend_->WarmupStep(x, y);
    }
    if (size < largest_) {  // a short batch: not worth a graph that full batches cannot use
      ++counts_.eager;
      return backend_->EagerStepKeepingGradients(x, y, phases);
    }
    if (absl::Status s = backend_->Capture(x, y); !s.ok()) {
      failed_ = absl::Status(s.code(), absl::StrCat(name_, ": capturing the step (batch of ", size,
                                                    ") failed: ", s.message()));
      return failed_;
    }
    ++counts_.captures;
    graph_size_ = size;
    ++counts_.replays;
    return backend_->Replay(x, y);
  }

  const GraphStepCounts& counts() const { return counts_; }

 private:
  std::string name_;
  std::unique_ptr<GraphBackend> backend_;
  int64_t warmups_needed_;  // warm-up steps to have taken before the next capture
  int64_t largest_ = 0;     // the full batch size, as far as the batches so far tell
  int64_t graph_size_ = 0;  // batch size of the captured graph; 0 when there is none
  GraphStepCounts counts_;
  absl::Status failed_;
};

}  // namespace trainlab::compile

#endif  // TRAINLAB_PLUGINS_COMPILE_GRAPH_STEP_H_
