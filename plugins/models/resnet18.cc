#include "plugins/models/resnet18.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include <memory>
#include <string>
#include <utility>

#include "core/convolution.h"
#include "core/normalization.h"

namespace trainlab::models {
namespace {

torch::nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(pad).bias(false));
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride, bool batch_norm) {
  // Registered in the Python model's order, so parameters, optimizer state and state_dict
  // entries come in PyTorch's order too (BatchNorm draws no random numbers: the order does not
  // change the initial weights).
  conv1_ = register_module("conv1", Conv(in_planes, planes, 3, stride, 1));
  if (batch_norm) bn1_ = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2_ = register_module("conv2", Conv(planes, planes, 3, 1, 1));
  if (batch_norm) bn2_ = register_module("bn2", torch::nn::BatchNorm2d(planes));
  if (stride != 1 || in_planes != planes) {
    torch::nn::Sequential s;
    shortcut_conv_ = Conv(in_planes, planes, 1, stride, 0);
    s->push_back(shortcut_conv_);
    if (batch_norm) {
      shortcut_bn_ = torch::nn::BatchNorm2d(planes);
      s->push_back(shortcut_bn_);
    }
    shortcut_ = register_module("shortcut", s);
  }
}

at::Tensor BasicBlockImpl::forward(const at::Tensor& x) {
  RECORD_USER_SCOPE(scope_.c_str());
  // Convolutions through core/convolution.h's Conv2d, batch norms (with the ReLU after one)
  // through core/normalization.h's BatchNorm2d: a strategy may run them its own way.
  at::Tensor out = Conv2d(*conv1_, x);
  out = bn1_ ? BatchNorm2d(*bn1_, out, /*relu=*/true) : at::relu(out);
  out = Conv2d(*conv2_, out);
  if (bn2_) out = BatchNorm2d(*bn2_, out, /*relu=*/false);
  at::Tensor shortcut = x;
  if (shortcut_conv_) {
    shortcut = Conv2d(*shortcut_conv_, x);
    if (shortcut_bn_) shortcut = BatchNorm2d(*shortcut_bn_, shortcut, /*relu=*/false);
  }
  out = out + shortcut;
  return at::relu(out);
}

ResNet18Impl::ResNet18Impl(ResNet18Options options) : options_(options) {
  conv1_ = register_module("conv1", Conv(3, 64, 3, 1, 1));
  if (options_.batch_norm()) bn1_ = register_module("bn1", torch::nn::BatchNorm2d(64));
  layer1_ = register_module("layer1", MakeGroup("layer1", 64, 1));
  layer2_ = register_module("layer2", MakeGroup("layer2", 128, 2));
  layer3_ = register_module("layer3", MakeGroup("layer3", 256, 2));
  layer4_ = register_module("layer4", MakeGroup("layer4", 512, 2));
  linear_ = register_module("linear", torch::nn::Linear(512, options_.num_classes()));
}

torch::nn::Sequential ResNet18Impl::MakeGroup(const std::string& name, int64_t planes,
                                              int64_t stride) {
  torch::nn::Sequential group;
  BasicBlock first(in_planes_, planes, stride, options_.batch_norm());
  first->set_scope(name + ".0");
  BasicBlock second(planes, planes, 1, options_.batch_norm());
  second->set_scope(name + ".1");
  group->push_back(first);
  group->push_back(second);
  in_planes_ = planes;
  return group;
}

at::Tensor ResNet18Impl::forward(const at::Tensor& x) {
  RECORD_USER_SCOPE(top_scope_.c_str());  // the model's own layers: "relu", "pool"
  at::Tensor out = Conv2d(*conv1_, x);    // (B, 64, 32, 32)
  out = bn1_ ? BatchNorm2d(*bn1_, out, /*relu=*/true) : at::relu(out);
  out = layer1_->forward(out);                            // (B, 64, 32, 32)
  out = layer2_->forward(out);                            // (B, 128, 16, 16)
  out = layer3_->forward(out);                            // (B, 256, 8, 8)
  out = layer4_->forward(out);                            // (B, 512, 4, 4)
  out = at::adaptive_avg_pool2d(out, {1, 1}).flatten(1);  // (B, 512)
  return linear_->forward(out);                           // (B, num_classes)
}

namespace {

ModelEntry ResNet18Entry(std::string description, bool batch_norm) {
  return {.description = std::move(description),
          .make = [batch_norm](
                      const ModelSpec& spec) -> absl::StatusOr<std::shared_ptr<ClassifierImpl>> {
            return std::make_shared<ResNet18Impl>(
                ResNet18Options().num_classes(spec.num_classes).batch_norm(batch_norm));
          }};
}

const bool kRegistered =
    ModelRegistry::Global().Register("resnet18", ResNet18Entry("the lab's ResNet-18", true)) &&
    ModelRegistry::Global().Register(
        "resnet18_no_bn", ResNet18Entry("the lab's ResNet-18 without batch norm (C7)", false));

}  // namespace
}  // namespace trainlab::models
