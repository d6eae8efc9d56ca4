// The cuda_graph strategy's runner. Defined only in a --config=cuda build
// (cuda_graph_runner.cc); the CPU build registers the name and explains why it cannot run.
#ifndef TRAINLAB_PLUGINS_COMPILE_CUDA_GRAPH_H_
#define TRAINLAB_PLUGINS_COMPILE_CUDA_GRAPH_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/step.h"

namespace trainlab::compile {

// Eager steps run for this many batches (on a side stream) before the capture, so that lazily
// created state (optimizer buffers, cuDNN plans, allocator pools) exists and stays put.
inline constexpr int kCudaGraphWarmupSteps = 3;

absl::StatusOr<std::unique_ptr<StepRunner>> MakeCudaGraphRunner(const StepFunctions& fns,
                                                                const StepOptions& options);

}  // namespace trainlab::compile

#endif  // TRAINLAB_PLUGINS_COMPILE_CUDA_GRAPH_H_
