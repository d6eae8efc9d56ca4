// Counting a model's layers, parameters, gradients and optimizer state from the live objects
// (the lab's Q1-Q4). Nothing here knows a particular architecture.
//
// Example:
//   int64_t convs = CountConv2d(*model);                       // every Conv2d module
//   int64_t no_1x1 = CountConv2d(*model, /*min_kernel=*/3);   // without the 1x1 shortcuts
#ifndef TRAINLAB_CORE_INTROSPECT_H_
#define TRAINLAB_CORE_INTROSPECT_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <optional>

namespace trainlab {

// Conv2d modules whose smallest kernel side is at least `min_kernel`.
inline int64_t CountConv2d(const torch::nn::Module& model, int64_t min_kernel = 1) {
  int64_t n = 0;
  for (const auto& m : model.modules(/*include_self=*/true)) {
    if (const auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      const auto& k = conv->options.kernel_size();
      if (std::min(k->at(0), k->at(1)) >= min_kernel) ++n;
    }
  }
  return n;
}

// in_features of the last Linear module in registration order, if there is one.
inline std::optional<int64_t> LastLinearInFeatures(const torch::nn::Module& model) {
  std::optional<int64_t> in;
  for (const auto& m : model.modules(/*include_self=*/true)) {
    if (const auto* linear = m->as<torch::nn::LinearImpl>()) in = linear->options.in_features();
  }
  return in;
}

// Elements of the parameters that require a gradient.
inline int64_t CountTrainableParameters(const torch::nn::Module& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

// Elements of the gradients that exist now (after a backward pass).
inline int64_t CountGradientElements(const torch::nn::Module& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) {
    if (p.grad().defined()) n += p.grad().numel();
  }
  return n;
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_INTROSPECT_H_
