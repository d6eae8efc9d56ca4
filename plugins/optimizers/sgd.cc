// Linking this library registers the optimizer `sgd`: SGD with momentum (lab: 0.9) and weight decay.
#include <torch/optim/sgd.h>

#include "core/optimizer.h"

namespace trainlab::optim {
namespace {

const bool kRegistered = OptimizerRegistry::Global().Register(
    "sgd",
    {.description = "SGD with momentum (lab: 0.9) and weight decay",
     .capturable = true,
     .make = [](std::vector<at::Tensor> params, const OptimizerSettings& s)
         -> absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> {
       return std::make_unique<torch::optim::SGD>(std::move(params), torch::optim::SGDOptions(s.lr).momentum(s.momentum).weight_decay(s.weight_decay));
     }});

}  // namespace
}  // namespace trainlab::optim
