// The optimizer registry: plugins under plugins/optimizers/ register a factory by name.
//
// Example:
//   OptimizerSettings s;  // the lab's: lr 0.1, weight decay 5e-4, momentum 0.9
//   absl::StatusOr<const OptimizerEntry*> e = OptimizerRegistry::Global().Find("adam");
//   absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> opt = (*e)->make(params, s);
#ifndef TRAINLAB_CORE_OPTIMIZER_H_
#define TRAINLAB_CORE_OPTIMIZER_H_

#include <torch/optim/optimizer.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/registry.h"

namespace trainlab {

// The hyper-parameters the experiments' flags can override; the rest are each optimizer's
// PyTorch defaults, set by its plugin.
struct OptimizerSettings {
  double lr = 0.1;             // the lab's learning rate for every optimizer
  double weight_decay = 5e-4;  // the lab's weight decay for every optimizer
  double momentum = 0.9;       // used by the optimizers that have momentum (SGD, Nesterov)
};

inline absl::Status ValidateOptimizerSettings(const OptimizerSettings& s) {
  if (!(s.lr > 0) || !std::isfinite(s.lr)) {
    return absl::InvalidArgumentError(absl::StrCat("learning rate must be positive, got ", s.lr));
  }
  if (!(s.weight_decay >= 0) || !std::isfinite(s.weight_decay)) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight decay must be >= 0, got ", s.weight_decay));
  }
  if (!(s.momentum >= 0 && s.momentum < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("momentum must be in [0, 1), got ", s.momentum));
  }
  return absl::OkStatus();
}

struct OptimizerEntry {
  static constexpr std::string_view kKind = "optimizer";

  std::string description;
  // True when step() reads no host-side value that changes from step to step (Adam's step
  // count does), so a CUDA graph may capture it and replay it correctly.
  bool capturable = false;
  std::function<absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>>(
      std::vector<at::Tensor> params, const OptimizerSettings& settings)>
      make;
};

using OptimizerRegistry = Registry<OptimizerEntry>;

// The entry of a plugin that wraps a LibTorch optimizer `Opt`, built from the options that
// `options(settings)` returns. Example (plugins/optimizers/sgd.cc):
//   OptimizerRegistry::Global().Register("sgd", TorchOptimizer<torch::optim::SGD>(
//       "SGD with momentum", /*capturable=*/true,
//       [](const OptimizerSettings& s) { return
//       torch::optim::SGDOptions(s.lr).momentum(s.momentum); }));
template <class Opt, class MakeOptions>
OptimizerEntry TorchOptimizer(std::string description, bool capturable, MakeOptions options) {
  return {.description = std::move(description),
          .capturable = capturable,
          .make = [options](std::vector<at::Tensor> params, const OptimizerSettings& s)
              -> absl::StatusOr<std::unique_ptr<torch::optim::Optimizer>> {
            return std::make_unique<Opt>(std::move(params), options(s));
          }};
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_OPTIMIZER_H_
