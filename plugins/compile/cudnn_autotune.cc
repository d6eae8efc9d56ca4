// Linking this library registers the compile strategy `cudnn_autotune`: cuDNN benchmark mode,
// which times the candidate convolution algorithms once per new input shape and keeps the
// fastest (the closest thing to torch.compile's max-autotune for convolutions).
#include "absl/strings/str_cat.h"
#include "core/strategy.h"

namespace trainlab::compile {
namespace {

const bool kRegistered = StrategyRegistry::Global().Register(
    "cudnn_autotune",
    {.description = "cuDNN benchmark mode: fastest convolution algorithm per shape",
     .can_run = [](const c10::Device& d) -> absl::Status {
       if (d.is_cuda()) return absl::OkStatus();
       return absl::FailedPreconditionError(
           absl::StrCat("cudnn_autotune needs a CUDA device (cuDNN), not ", d.str()));
     },
     .apply = [](StepOptions& o) { o.cudnn_benchmark = true; }});

}  // namespace
}  // namespace trainlab::compile
