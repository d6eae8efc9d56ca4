// Batch norms (and the ReLU after one) a compute strategy may run its own way.
//
// A model that calls `BatchNorm2d(bn, x, /*relu=*/true)` instead of `at::relu(bn->forward(x))`
// lets a strategy (plugins/compile/fused_bn_relu.cc: oneDNN's batch normalization with the ReLU
// fused into it, forward and backward) take its batch norms over while the step holds a
// `ScopedNormalizationOverride`; with none installed, `BatchNorm2d` is `bn.forward(x)` (then
// `at::relu`), bit for bit. The step (core/step.h) installs the strategy's override around the
// forward pass and the trainer around evaluation, as it does core/convolution.h's.
//
// Example (a model's forward):
//   out = trainlab::BatchNorm2d(*bn1_, trainlab::Conv2d(*conv1_, x), /*relu=*/true);
#ifndef TRAINLAB_CORE_NORMALIZATION_H_
#define TRAINLAB_CORE_NORMALIZATION_H_

#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>

#include <string>
#include <vector>

namespace trainlab {

class NormalizationOverride {
 public:
  virtual ~NormalizationOverride() = default;
  // What `bn.forward(x)` returns (then `at::relu` of it when `relu`), with its autograd graph
  // and the module's side effects (running statistics, num_batches_tracked) in training mode.
  virtual at::Tensor BatchNorm(torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x, bool relu) = 0;
  // What it did with each shape met, and why where it left one to the module (the profile
  // prints them).
  virtual std::vector<std::string> Choices() const = 0;
  // A name for the logs ("fused_bn_relu").
  virtual std::string name() const = 0;
};

// The override installed on this thread, or null.
inline NormalizationOverride*& CurrentNormalizationOverride() {
  static thread_local NormalizationOverride* current = nullptr;
  return current;
}

// Installs `o` (may be null: nothing changes) on this thread for the guard's lifetime.
class ScopedNormalizationOverride {
 public:
  explicit ScopedNormalizationOverride(NormalizationOverride* o)
      : previous_(CurrentNormalizationOverride()) {
    if (o != nullptr) CurrentNormalizationOverride() = o;
  }
  ~ScopedNormalizationOverride() { CurrentNormalizationOverride() = previous_; }
  ScopedNormalizationOverride(const ScopedNormalizationOverride&) = delete;
  ScopedNormalizationOverride& operator=(const ScopedNormalizationOverride&) = delete;

 private:
  NormalizationOverride* previous_;
};

// `bn.forward(x)`, then `at::relu` when `relu`; or the installed override's.
inline at::Tensor BatchNorm2d(torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x, bool relu) {
  if (NormalizationOverride* o = CurrentNormalizationOverride()) return o->BatchNorm(bn, x, relu);
  at::Tensor y = bn.forward(x);
  return relu ? at::relu(y) : y;
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_NORMALIZATION_H_
