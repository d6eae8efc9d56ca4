// ResNet-18 as the per-layer profile sees it: every module with parameters appears, under its
// module name, and the traced forward FLOPs equal a count made from the architecture alone.
#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>

#include <chrono>
#include <set>
#include <string>

#include "core/op_trace.h"
#include "gtest/gtest.h"
#include "plugins/models/resnet18.h"

namespace trainlab::models {
namespace {

// The multiply-adds of the CIFAR ResNet-18 at 32x32, per image, from its definition (kuangliu's
// pytorch-cifar; 3x3 convolutions, 1x1 shortcuts), not from any traced shape:
//   conv1: 3 -> 64 at 32x32;  layer1: 4 convs 64 -> 64 at 32x32;
//   layer g = 2..4 (C = 64 * 2^(g-1) channels, S = 32 / 2^(g-1) side): the first conv C/2 -> C
//   at SxS (stride 2), three convs C -> C at SxS, a 1x1 shortcut C/2 -> C at SxS;
//   linear 512 -> 10.
double ArchitectureMacs() {
  double macs = 64.0 * 32 * 32 * 3 * 9 + 4 * (64.0 * 32 * 32 * 64 * 9);
  for (int g = 2; g <= 4; ++g) {
    const double c = 64 << (g - 1), s = 32 >> (g - 1);
    macs += c * s * s * (c / 2) * 9 + 3 * (c * s * s * c * 9) + c * s * s * (c / 2);
  }
  return macs + 512.0 * 10;
}

TEST(OpTraceResNet18, ForwardFlopsMatchTheArchitecturesCount) {
  // 555,422,720 multiply-adds (thop's 556.65 M adds batch norm and the bias); checked by hand:
  // 1,769,472 + 150,994,944 + 3 x 134,217,728 + 5,120.
  ASSERT_EQ(ArchitectureMacs(), 555422720.0);
  ResNet18 net;
  OpTracer tracer(*net);
  const int64_t batch = 2;
  {
    OpTracer::Recording r(tracer);
    at::Tensor loss = torch::nn::functional::cross_entropy(
        net->forward(at::randn({batch, 3, 32, 32})), at::zeros({batch}, at::kLong));
    (void)loss;
  }
  double conv_linear = 0, bias_adds = 0;
  for (const TracedOp& op : tracer.ops()) {
    if (op.op == "conv") conv_linear += op.forward.flops;
    if (op.op == "linear") {
      conv_linear += op.forward.flops - batch * 10;  // without the bias adds
      bias_adds += batch * 10;
    }
  }
  EXPECT_EQ(conv_linear, 2 * ArchitectureMacs() * batch);
  EXPECT_EQ(bias_adds, batch * 10);
  // Backward: every conv twice its forward except conv1 (the images need no gradient).
  double conv_backward = 0, conv_forward = 0, conv1_forward = 0;
  for (const TracedOp& op : tracer.ops()) {
    if (op.op != "conv") continue;
    conv_backward += op.backward.flops;
    conv_forward += op.forward.flops;
    if (op.module == "conv1") conv1_forward = op.forward.flops;
  }
  EXPECT_EQ(conv1_forward, 2.0 * 64 * 32 * 32 * 3 * 9 * batch);
  EXPECT_EQ(conv_backward, 2 * conv_forward - conv1_forward);
}

TEST(OpTraceResNet18, EveryModuleAppearsUnderItsName) {
  ResNet18 net;
  OpTracer tracer(*net);
  {
    OpTracer::Recording r(tracer);
    at::Tensor loss = torch::nn::functional::cross_entropy(net->forward(at::randn({2, 3, 32, 32})),
                                                           at::zeros({2}, at::kLong));
    (void)loss;
  }
  std::set<std::string> traced;
  for (const TracedOp& op : tracer.ops()) traced.insert(op.module);
  // Every module that owns parameters (conv, batch norm, linear) is a row of its own.
  int with_parameters = 0;
  for (const auto& item : net->named_modules("", /*include_self=*/false)) {
    if (item.value()->parameters(/*recurse=*/false).empty()) continue;
    ++with_parameters;
    EXPECT_TRUE(traced.count(item.key())) << item.key() << " is not in the trace";
  }
  EXPECT_EQ(with_parameters, 20 + 20 + 1);  // 20 convs, 20 batch norms, the linear layer
  // The parameter-free layers, named after their block: 17 ReLUs, 8 residual adds, the pool, the
  // loss.
  int relu = 0, add = 0, pool = 0, loss = 0;
  for (const TracedOp& op : tracer.ops()) {
    relu += op.op == "relu";
    add += op.op == "add";
    pool += op.op == "pool";
    loss += op.op == "cross_entropy";
  }
  EXPECT_EQ(relu, 17);
  EXPECT_EQ(add, 8);
  EXPECT_EQ(pool, 1);
  EXPECT_EQ(loss, 1);
  EXPECT_TRUE(traced.count("layer2.0.relu"));
  EXPECT_TRUE(traced.count("layer2.0.relu#2"));
  EXPECT_TRUE(traced.count("layer2.0.add"));
  EXPECT_TRUE(traced.count("layer1.1.add"));  // an identity shortcut: named by its block's scope
  EXPECT_TRUE(traced.count("relu"));          // the model's own, after bn1
  EXPECT_TRUE(traced.count("pool"));
  EXPECT_TRUE(traced.count("cross_entropy"));
  EXPECT_EQ(tracer.ops().size(), 41u + 17 + 8 + 1 + 1);
}

// With backward inside the recording, every layer's autograd nodes are found through the
// sequence numbers: each conv, batch norm, ReLU, the pool, the linear layer and the loss gets
// backward time of its own, and the attributed times fit inside the pass that contains them.
TEST(OpTraceResNet18, TiesEachBackwardNodeToItsForwardLayer) {
  ResNet18 net;
  OpTracer tracer(*net);
  const auto t0 = std::chrono::steady_clock::now();
  {
    OpTracer::Recording r(tracer);
    at::Tensor loss = torch::nn::functional::cross_entropy(net->forward(at::randn({2, 3, 32, 32})),
                                                           at::zeros({2}, at::kLong));
    loss.backward();
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double forward = 0, backward = 0;
  for (const TracedOp& op : tracer.ops()) {
    EXPECT_GT(op.forward_s, 0) << op.module;
    EXPECT_LT(op.first_sequence_nr, op.end_sequence_nr) << op.module << " created no autograd node";
    if (op.op != "add") {
      EXPECT_GT(op.backward_s, 0) << op.module << " got no backward time";
    }
    forward += op.forward_s;
    backward += op.backward_s;
  }
  EXPECT_LT(forward + backward + tracer.unattributed_backward_s(), wall)
      << "forward " << forward << " backward " << backward << " unattributed "
      << tracer.unattributed_backward_s();
  // The parameters' AccumulateGrad nodes belong to no layer.
  EXPECT_GT(tracer.unattributed_backward_s(), 0);
  // A second recording starts afresh.
  {
    OpTracer::Recording r(tracer);
    (void)net->forward(at::randn({1, 3, 32, 32}));
  }
  EXPECT_EQ(tracer.ops().size(), 41u + 17 + 8 + 1);
  for (const TracedOp& op : tracer.ops()) EXPECT_EQ(op.backward_s, 0) << op.module;
}

}  // namespace
}  // namespace trainlab::models
