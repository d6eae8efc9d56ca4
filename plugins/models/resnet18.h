// The CIFAR ResNet-18 of the lab (He et al. 2016, in the common CIFAR form):
//   3x3 stem conv 3->64 (stride 1, pad 1, no max-pool) -> BN -> ReLU
//   4 groups of 2 BasicBlocks, widths 64/128/256/512, stride 2 at the first block of groups 2-4
//   1x1 conv + BN shortcut where stride or width changes; conv bias off throughout
//   global average pool -> linear 512 -> num_classes
// Weights start as PyTorch's defaults (LibTorch's modules initialise themselves the same way):
// with the same seed, the same initial weights as the lab's Python model (tools/lab/resnet18.py;
// checked by resnet18_golden_test). Parameter names are the Python model's too.
// With `batch_norm(false)` every BN is left out (the lab's C7).
// Registered as models "resnet18" and "resnet18_no_bn" (alwayslink).
//
//   x: (B, 3, 32, 32) -> logits (B, num_classes)
//
// Example:
//   trainlab::models::ResNet18 net(trainlab::models::ResNet18Options().batch_norm(false));
#ifndef TRAINLAB_PLUGINS_MODELS_RESNET18_H_
#define TRAINLAB_PLUGINS_MODELS_RESNET18_H_

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>

#include "core/model.h"
#include "core/module_scope.h"

namespace trainlab::models {

struct ResNet18Options {
  TORCH_ARG(int64_t, num_classes) = 10;
  TORCH_ARG(bool, batch_norm) = true;
};

class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, bool batch_norm);
  // x: (B, in_planes, H, W) -> (B, planes, H/stride, W/stride)
  at::Tensor forward(const at::Tensor& x);
  // Its name in the model ("layer2.0"): the scope its forward opens for profilers
  // (core/module_scope.h's ModuleScope, read by core/profiling/layer_tracer.h), so its ReLUs and
  // residual add are named after it.
  void set_scope(const std::string& name) { scope_ = ModuleScopeName(name); }

 private:
  std::string scope_ = ModuleScopeName("");
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential shortcut_{nullptr};  // empty when identity
  // The shortcut's modules (registered through shortcut_ as "shortcut.0", "shortcut.1").
  torch::nn::Conv2d shortcut_conv_{nullptr};
  torch::nn::BatchNorm2d shortcut_bn_{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNet18Impl : public ClassifierImpl {
 public:
  explicit ResNet18Impl(ResNet18Options options = {});
  // x: (B, 3, 32, 32) -> logits (B, num_classes)
  at::Tensor forward(const at::Tensor& x) override;

  const ResNet18Options& options() const { return options_; }

 private:
  torch::nn::Sequential MakeGroup(const std::string& name, int64_t planes, int64_t stride);

  ResNet18Options options_;
  std::string top_scope_ = ModuleScopeName("");
  int64_t in_planes_ = 64;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr}, layer4_{nullptr};
  torch::nn::Linear linear_{nullptr};
};
TORCH_MODULE(ResNet18);

}  // namespace trainlab::models

#endif  // TRAINLAB_PLUGINS_MODELS_RESNET18_H_
