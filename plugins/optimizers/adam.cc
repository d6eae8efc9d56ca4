// Linking this library registers the optimizer `adam`: Adam, betas 0.9/0.999, eps 1e-8, L2 weight decay.
#include <torch/optim/adam.h>

#include "core/optimizer.h"

namespace trainlab::optim {
namespace {

const bool kRegistered = OptimizerRegistry::Global().Register(
    "adam",
    {.description = "Adam, betas 0.9/0.999, eps 1e-8, L2 weight decay",
     .capturable = false,
     .make = [](std::vector<at::Tensor> params, const OptimizerSettings& s)
         -> absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> {
       return std::make_unique<torch::optim::Adam>(std::move(params), torch::optim::AdamOptions(s.lr).weight_decay(s.weight_decay));
     }});

}  // namespace
}  // namespace trainlab::optim
