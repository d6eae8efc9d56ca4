// Linking this library registers the optimizer `rmsprop`: RMSprop, alpha 0.99, eps 1e-8, no
// momentum.
#include <torch/optim/rmsprop.h>

#include "core/optimizer.h"

namespace trainlab::optim {
namespace {

const bool kRegistered = OptimizerRegistry::Global().Register(
    "rmsprop", TorchOptimizer<torch::optim::RMSprop>(
                   "RMSprop, alpha 0.99, eps 1e-8, no momentum", /*capturable=*/true,
                   [](const OptimizerSettings& s) {
                     return torch::optim::RMSpropOptions(s.lr).weight_decay(s.weight_decay);
                   }));

}  // namespace
}  // namespace trainlab::optim
