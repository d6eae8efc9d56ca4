// Linking this library registers the compile strategy `amp_bf16`: forward and loss under
// autocast to bfloat16 (LibTorch's autocast on CPU and GPU); backward and the weights stay fp32.
#include "core/strategy.h"

namespace trainlab::compile {
namespace {

const bool kRegistered = StrategyRegistry::Global().Register(
    "amp_bf16", {.description = "autocast forward and loss to bfloat16 (mixed precision)",
                 .can_run = nullptr,
                 .apply = [](StepOptions& o) { o.autocast_dtype = c10::ScalarType::BFloat16; }});

}  // namespace
}  // namespace trainlab::compile
