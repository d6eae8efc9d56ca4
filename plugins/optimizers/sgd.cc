// Linking this library registers the optimizer `sgd`: SGD with momentum (lab: 0.9) and weight
// decay.
#include <torch/optim/sgd.h>

#include "core/optimizer.h"

namespace trainlab::optim {
namespace {

const bool kRegistered = OptimizerRegistry::Global().Register(
    "sgd",
    TorchOptimizer<torch::optim::SGD>(
        "SGD with momentum (lab: 0.9) and weight decay", /*capturable=*/true,
        [](const OptimizerSettings& s) {
          return torch::optim::SGDOptions(s.lr).momentum(s.momentum).weight_decay(s.weight_decay);
        }));

}  // namespace
}  // namespace trainlab::optim
