// Linking this library registers the compile strategy `channels_last`: weights and batches in
// NHWC memory format, which oneDNN's CPU convolutions and Tensor Core kernels prefer.
#include "core/strategy.h"

namespace trainlab::compile {
namespace {

const bool kRegistered = StrategyRegistry::Global().Register(
    "channels_last",
    {.description = "model weights and input batches in NHWC (channels-last) memory format",
     .can_run = nullptr,
     .apply = [](StepOptions& o) { o.memory_format = c10::MemoryFormat::ChannelsLast; }});

}  // namespace
}  // namespace trainlab::compile
