// Linking this library registers the optimizer `adagrad`: Adagrad, eps 1e-10, no lr decay.
#include <torch/optim/adagrad.h>

#include "core/optimizer.h"

namespace trainlab::optim {
namespace {

const bool kRegistered = OptimizerRegistry::Global().Register(
    "adagrad",
    {.description = "Adagrad, eps 1e-10, no lr decay",
     .capturable = true,
     .make = [](std::vector<at::Tensor> params, const OptimizerSettings& s)
         -> absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> {
       return std::make_unique<torch::optim::Adagrad>(std::move(params), torch::optim::AdagradOptions(s.lr).weight_decay(s.weight_decay));
     }});

}  // namespace
}  // namespace trainlab::optim
