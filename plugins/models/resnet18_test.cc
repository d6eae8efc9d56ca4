#include "plugins/models/resnet18.h"

#include <ATen/ATen.h>
#include <torch/optim/sgd.h>

#include "core/concepts.h"
#include "core/introspect.h"
#include "gtest/gtest.h"

namespace trainlab::models {
namespace {

static_assert(trainlab::Model<ResNet18Impl>);

TEST(ResNet18, MapsCifarImagesToTenLogits) {
  ResNet18 net;
  at::Tensor logits = net->forward(at::randn({2, 3, 32, 32}));
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(ResNet18, HasTheLabsLayerCounts) {
  ResNet18 net;
  EXPECT_EQ(CountConv2d(*net), 20);                     // Q1, shortcuts included
  EXPECT_EQ(CountConv2d(*net, /*min_kernel=*/3), 17);   // without the three 1x1 shortcuts
  EXPECT_EQ(LastLinearInFeatures(*net), 512);           // Q2
  EXPECT_EQ(CountTrainableParameters(*net), 11173962);  // Q3
}

TEST(ResNet18, WithoutBatchNormHasNoBatchNormModules) {
  ResNet18 net(ResNet18Options().batch_norm(false));
  int bn = 0;
  for (const auto& m : net->modules()) bn += m->as<torch::nn::BatchNorm2dImpl>() != nullptr;
  EXPECT_EQ(bn, 0);
  // 20 BN layers hold 2 trainable tensors each: 2 * (64*5 + 128*5 + 256*5 + 512*5) elements.
  EXPECT_EQ(CountTrainableParameters(*net), 11173962 - 2 * 5 * (64 + 128 + 256 + 512));
  EXPECT_EQ(net->forward(at::randn({1, 3, 32, 32})).size(1), 10);
}

TEST(ResNet18, OneBackwardGivesAGradientForEveryParameter) {
  ResNet18 net;
  at::Tensor loss = net->forward(at::randn({2, 3, 32, 32})).sum();
  loss.backward();
  EXPECT_EQ(CountGradientElements(*net), CountTrainableParameters(*net));
}

TEST(ResNet18, ConvWeightsStartWithPyTorchsDefaultBound) {
  // kaiming_uniform_(a=sqrt(5)) on a conv gives U(-b, b) with b = 1/sqrt(fan_in).
  ResNet18 net;
  at::Tensor w = net->named_parameters()["conv1.weight"];
  const double bound = 1.0 / std::sqrt(3.0 * 3 * 3);
  EXPECT_LE(w.abs().max().item<double>(), bound + 1e-6);
  EXPECT_GT(w.abs().max().item<double>(), 0.8 * bound);
}

}  // namespace
}  // namespace trainlab::models
