// Linking this library registers the compile strategy `cuda_graph`: the whole training step
// (forward, loss, backward, optimizer step) captured once into a CUDA graph on static input
// buffers and replayed per batch, as torch.compile's "reduce-overhead" mode does. See
// cuda_graph_runner.cc for the mechanics.
#include "plugins/compile/cuda_graph.h"
#include "absl/strings/str_cat.h"
#include "core/strategy.h"

namespace trainlab::compile {
namespace {

const bool kRegistered = StrategyRegistry::Global().Register(
    "cuda_graph",
    {.description = "capture the whole step into a CUDA graph once, replay it per batch",
     .can_run = [](const c10::Device& d) -> absl::Status {
#ifndef TRAINLAB_WITH_CUDA_GRAPH
       return absl::FailedPreconditionError(
           "cuda_graph needs a CUDA device and a CUDA build (bazel build --config=cuda with a "
           "CUDA-enabled LibTorch); this binary was built without it");
#else
       if (!d.is_cuda()) {
         return absl::FailedPreconditionError(
             absl::StrCat("cuda_graph needs a CUDA device, not ", d.str()));
       }
       return absl::OkStatus();
#endif
     },
     .apply =
         [](StepOptions& o) {
#ifdef TRAINLAB_WITH_CUDA_GRAPH
           o.make_runner = MakeCudaGraphRunner;
#endif
         }});

}  // namespace
}  // namespace trainlab::compile
