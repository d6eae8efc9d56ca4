// Linking this library registers the compile strategy `eager`: the plain step, the baseline.
#include "core/strategy.h"

namespace trainlab::compile {
namespace {

const bool kRegistered = StrategyRegistry::Global().Register(
    "eager", {.description = "the plain step: forward, loss, backward, optimizer step",
              .can_run = nullptr,
              .apply = [](StepOptions&) {}});

}  // namespace
}  // namespace trainlab::compile
