// Linking this library registers the optimizer `sgd_nesterov`: SGD with Nesterov momentum (lab:
// 0.9). Nesterov needs momentum > 0: --momentum=0 is refused.
#include <torch/optim/sgd.h>

#include "core/optimizer.h"

namespace trainlab::optim {
namespace {

const bool kRegistered = OptimizerRegistry::Global().Register(
    "sgd_nesterov",
    {.description = "SGD with Nesterov momentum (lab: 0.9)",
     .capturable = true,
     .make = [](std::vector<at::Tensor> params, const OptimizerSettings& s)
         -> absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> {
       if (s.momentum <= 0) {
         return absl::InvalidArgumentError(
             "sgd_nesterov needs momentum > 0 (PyTorch refuses Nesterov without it)");
       }
       return std::make_unique<torch::optim::SGD>(std::move(params),
                                                  torch::optim::SGDOptions(s.lr)
                                                      .momentum(s.momentum)
                                                      .weight_decay(s.weight_decay)
                                                      .nesterov(true));
     }});

}  // namespace
}  // namespace trainlab::optim
