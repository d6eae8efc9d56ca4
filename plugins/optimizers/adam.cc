// Linking this library registers the optimizer `adam`: Adam, betas 0.9/0.999, eps 1e-8, L2 weight
// decay.
#include <torch/optim/adam.h>

#include "core/optimizer.h"

namespace trainlab::optim {
namespace {

const bool kRegistered = OptimizerRegistry::Global().Register(
    "adam", TorchOptimizer<torch::optim::Adam>(
                "Adam, betas 0.9/0.999, eps 1e-8, L2 weight decay",
                /*capturable=*/false, [](const OptimizerSettings& s) {
                  return torch::optim::AdamOptions(s.lr).weight_decay(s.weight_decay);
                }));

}  // namespace
}  // namespace trainlab::optim
