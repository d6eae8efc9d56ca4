// Linking this library registers the optimizer `adagrad`: Adagrad, eps 1e-10, no lr decay.
#include <torch/optim/adagrad.h>

#include "core/optimizer.h"

namespace trainlab::optim {
namespace {

const bool kRegistered = OptimizerRegistry::Global().Register(
    "adagrad",
    TorchOptimizer<torch::optim::Adagrad>(
        "Adagrad, eps 1e-10, no lr decay", /*capturable=*/true, [](const OptimizerSettings& s) {
          return torch::optim::AdagradOptions(s.lr).weight_decay(s.weight_decay);
        }));

}  // namespace
}  // namespace trainlab::optim
