// Linking this library registers the optimizer `rmsprop`: RMSprop, alpha 0.99, eps 1e-8, no momentum.
#include <torch/optim/rmsprop.h>

#include "core/optimizer.h"

namespace trainlab::optim {
namespace {

const bool kRegistered = OptimizerRegistry::Global().Register(
    "rmsprop",
    {.description = "RMSprop, alpha 0.99, eps 1e-8, no momentum",
     .capturable = true,
     .make = [](std::vector<at::Tensor> params, const OptimizerSettings& s)
         -> absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> {
       return std::make_unique<torch::optim::RMSprop>(std::move(params), torch::optim::RMSpropOptions(s.lr).weight_decay(s.weight_decay));
     }});

}  // namespace
}  // namespace trainlab::optim
