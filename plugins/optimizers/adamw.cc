// Linking this library registers the optimizer `adamw`: AdamW, betas 0.9/0.999, eps 1e-8, decoupled
// weight decay.
#include <torch/optim/adamw.h>

#include "core/optimizer.h"

namespace trainlab::optim {
namespace {

const bool kRegistered = OptimizerRegistry::Global().Register(
    "adamw", TorchOptimizer<torch::optim::AdamW>(
                 "AdamW, betas 0.9/0.999, eps 1e-8, decoupled weight decay",
                 /*capturable=*/false, [](const OptimizerSettings& s) {
                   return torch::optim::AdamWOptions(s.lr).weight_decay(s.weight_decay);
                 }));

}  // namespace
}  // namespace trainlab::optim
