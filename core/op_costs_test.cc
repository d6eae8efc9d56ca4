// The FLOP and byte counts of single layers against values worked out by hand (in the comments),
// and the tracer's view of single torch ops.
#include "core/op_costs.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "core/module_scope.h"
#include "core/profiling/layer_tracer.h"
#include "core/roofline.h"
#include "core/step.h"
#include "gtest/gtest.h"

namespace trainlab {
namespace {

TEST(OpCosts, ThreeByThreeConv) {
  // 2 images, 3 -> 4 channels, 8x8, 3x3, stride 1, pad 1: 2*4*8*8 = 512 outputs, each 3*9 = 27
  // multiply-adds: 13,824 MACs = 27,648 FLOPs.
  ConvShape s{.input = {2, 3, 8, 8}, .weight = {4, 3, 3, 3}, .output = {2, 4, 8, 8}};
  EXPECT_EQ(ConvForward(s, 4).flops, 27648);
  // bytes: input 384 + weight 108 + output 512 floats = 1,004 x 4.
  EXPECT_EQ(ConvForward(s, 4).bytes, 4016);
  // backward: input gradient 27,648 + weight gradient 27,648.
  EXPECT_EQ(ConvBackward(s, 4, /*input_grad=*/true).flops, 55296);
  // reads grad-out 512, input 384, weight 108; writes grad-in 384, grad-w 108: 1,496 x 4.
  EXPECT_EQ(ConvBackward(s, 4, true).bytes, 5984);
  // The first layer (images need no gradient): the weight gradient alone.
  EXPECT_EQ(ConvBackward(s, 4, false).flops, 27648);
  EXPECT_EQ(ConvBackward(s, 4, false).bytes, (512 + 384 + 108 + 108) * 4);
  // With a bias: one add per output, 4 more weights read.
  s.bias = true;
  EXPECT_EQ(ConvForward(s, 4).flops, 27648 + 512);
  EXPECT_EQ(ConvForward(s, 4).bytes, 4016 + 16);
  EXPECT_EQ(ConvForward(s, 2).bytes, (4016 + 16) / 2);  // bf16
}

TEST(OpCosts, StridedConvAndOneByOneShortcut) {
  // layer2.0.conv1 at batch 1: 64 -> 128, 32x32 -> 16x16 (stride 2): 128*16*16 = 32,768 outputs
  // x 64*9 = 576 MACs: 18,874,368 MACs.
  ConvShape strided{
      .input = {1, 64, 32, 32}, .weight = {128, 64, 3, 3}, .output = {1, 128, 16, 16}};
  EXPECT_EQ(ConvForward(strided, 4).flops, 2.0 * 18874368);
  EXPECT_EQ(ConvBackward(strided, 4, true).flops, 4.0 * 18874368);
  // layer2.0.shortcut.0: 1x1, stride 2: 32,768 outputs x 64 MACs = 2,097,152 MACs.
  ConvShape shortcut{
      .input = {1, 64, 32, 32}, .weight = {128, 64, 1, 1}, .output = {1, 128, 16, 16}};
  EXPECT_EQ(ConvForward(shortcut, 4).flops, 2.0 * 2097152);
  // bytes: 65,536 in + 8,192 weights + 32,768 out.
  EXPECT_EQ(ConvForward(shortcut, 4).bytes, (65536 + 8192 + 32768) * 4.0);
  EXPECT_NEAR(ConvForward(shortcut, 4).intensity(), 2.0 * 2097152 / (106496 * 4.0), 1e-12);
}

TEST(OpCosts, LinearLayer) {
  // The classifier at batch 128: 512 -> 10 with a bias: 655,360 MACs + 1,280 adds.
  LinearShape s{.rows = 128, .in = 512, .out = 10, .bias = true};
  EXPECT_EQ(LinearForward(s, 4).flops, 2.0 * 655360 + 1280);
  // x 65,536 + W 5,120 + y 1,280 + b 10.
  EXPECT_EQ(LinearForward(s, 4).bytes, (65536 + 5120 + 1280 + 10) * 4.0);
  // backward: dX 2x655,360, dW 2x655,360, db 1,280 adds.
  EXPECT_EQ(LinearBackward(s, 4, true).flops, 4.0 * 655360 + 1280);
  EXPECT_EQ(LinearBackward(s, 4, true).bytes, (1280 + 65536 + 5120 + 65536 + 5120 + 10) * 4.0);
}

TEST(OpTrace, SeesEachOpOnceWithItsShapesAndOwner) {
  struct Net : torch::nn::Module {
    torch::nn::Sequential body = register_module(
        "body", torch::nn::Sequential(
                    torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).stride(2).padding(1)),
                    torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 1).bias(false))));
  } net;
  LayerTracer tracer(net);
  at::Tensor x = at::randn({2, 3, 8, 8});
  {
    LayerTracer::Recording r(tracer);
    at::Tensor y = at::relu(net.body->forward(x));  // (2, 4, 4, 4)
    at::Tensor z = y + y;
    (void)z;
  }
  at::relu(x);  // after the recording: not seen
  ASSERT_EQ(tracer.ops().size(), 4u);
  const TracedOp& c0 = tracer.ops()[0];
  EXPECT_EQ(c0.op, "conv");
  EXPECT_EQ(c0.module, "body.0");
  // stride 2, pad 1: 8x8 -> 4x4; 2*4*4*4 = 128 outputs x 27 MACs, + 128 bias adds.
  EXPECT_EQ(c0.forward.flops, 2.0 * 128 * 27 + 128);
  EXPECT_EQ(c0.backward.flops, 2.0 * 128 * 27 + 128);  // x needs no gradient: dW and db only
  const TracedOp& c1 = tracer.ops()[1];
  EXPECT_EQ(c1.module, "body.1");
  EXPECT_EQ(c1.forward.flops, 2.0 * 128 * 4);
  EXPECT_EQ(c1.backward.flops, 4.0 * 128 * 4);  // its input (conv0's output) needs a gradient
  EXPECT_EQ(tracer.ops()[2].op, "relu");
  EXPECT_EQ(tracer.ops()[2].forward.flops, 128);
  EXPECT_EQ(tracer.ops()[3].op, "add");
  EXPECT_EQ(tracer.ops()[3].backward.flops, 0);
  EXPECT_EQ(tracer.TotalForward().flops, c0.forward.flops + c1.forward.flops + 128 + 128);
}

TEST(OpTrace, LinearAndLossAreCountedOnce) {
  torch::nn::Linear head(16, 5);
  LayerTracer tracer(*head);
  at::Tensor x = at::randn({3, 16});
  {
    LayerTracer::Recording r(tracer);
    at::Tensor loss =
        torch::nn::functional::cross_entropy(head->forward(x), at::zeros({3}, at::kLong));
    (void)loss;
  }
  ASSERT_EQ(tracer.ops().size(), 2u);  // not also addmm, log_softmax, nll_loss
  EXPECT_EQ(tracer.ops()[0].op, "linear");
  EXPECT_EQ(tracer.ops()[0].forward.flops, 2.0 * 3 * 16 * 5 + 15);
  EXPECT_EQ(tracer.ops()[1].op, "cross_entropy");
  EXPECT_EQ(tracer.ops()[1].input_shape, (std::vector<int64_t>{3, 5}));
}

TEST(OpCosts, OptimizerStepPerElement) {
  // SGD with momentum and weight decay: g += wd p (2), buf = m buf + g (2), p -= lr buf (2);
  // p, g, buf read, p, buf written.
  ASSERT_TRUE(OptimizerStepCost("sgd", 100, 4).has_value());
  EXPECT_EQ(OptimizerStepCost("sgd", 100, 4)->flops, 600);
  EXPECT_EQ(OptimizerStepCost("sgd", 100, 4)->bytes, 5 * 100 * 4.0);
  // Adam: two state tensors read and written beside p and g.
  EXPECT_EQ(OptimizerStepCost("adam", 10, 4)->flops, 150);
  EXPECT_EQ(OptimizerStepCost("adam", 10, 4)->bytes, 7 * 10 * 4.0);
  EXPECT_FALSE(OptimizerStepCost("lbfgs", 10, 4).has_value());
  EXPECT_EQ(CastForward(10, 4, 2).bytes, 60);
  EXPECT_EQ(CastForward(10, 4, 2).flops, 0);
}

// The optimizer's scope is its own row: its ops are not layers, and its interval is a span.
// Each layer's forward and backward are spans too (the Chrome trace draws them).
TEST(OpTrace, OptimizerScopeAndSpans) {
  torch::nn::Linear head(16, 5);
  LayerTracer tracer(*head);
  at::Tensor x = at::randn({3, 16});
  {
    LayerTracer::Recording r(tracer);
    at::Tensor loss =
        torch::nn::functional::cross_entropy(head->forward(x), at::zeros({3}, at::kLong));
    loss.backward();
    RECORD_USER_SCOPE(kOptimizerStepScope);
    at::NoGradGuard no_grad;
    for (at::Tensor& p : head->parameters()) p.add_(at::relu(p.grad()), -0.1);
  }
  ASSERT_EQ(tracer.ops().size(), 2u);  // the relu inside the optimizer's scope is not a layer
  EXPECT_GT(tracer.optimizer_s(), 0);
  int forward = 0, linear_backward = 0, optimizer = 0;
  for (const TracedSpan& s : tracer.spans()) {
    EXPECT_LE(s.start, s.end);
    if (s.pass == TracedSpan::Pass::kForward) ++forward;
    if (s.pass == TracedSpan::Pass::kBackward && s.op == 0) ++linear_backward;
    if (s.pass == TracedSpan::Pass::kOptimizer) ++optimizer;
  }
  EXPECT_EQ(forward, 2);
  EXPECT_GE(linear_backward, 1);
  EXPECT_EQ(optimizer, 1);
  EXPECT_GT(tracer.ops()[0].backward_s, 0);
}

// Under autocast to bfloat16 a convolution runs on bf16 copies of its input and weight: the
// copies are "cast" rows (the weight's named after its module), and the conv's bytes are counted
// at 2 bytes an element.
TEST(OpTrace, AutocastCopiesAreCastRows) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 3).padding(1).bias(false));
  LayerTracer tracer(*conv);
  at::Tensor x = at::randn({2, 3, 8, 8});
  {
    LayerTracer::Recording r(tracer);
    AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
    try {
      EXPECT_EQ(conv->forward(x).scalar_type(), at::kBFloat16);
    } catch (const std::exception&) {  // dnnl::error
      // oneDNN limited below avx512_core (DNNL_MAX_CPU_ISA, which the suite also runs under)
      // has no bf16 convolution; the tracer has seen the casts and the conv before it fails.
    }
  }
  const TracedOp* weight_cast = nullptr;
  const TracedOp* conv_op = nullptr;
  int casts = 0;
  for (const TracedOp& op : tracer.ops()) {
    if (op.op == "cast") ++casts;
    if (op.op == "cast" && op.input_shape == std::vector<int64_t>{4, 3, 3, 3}) weight_cast = &op;
    if (op.op == "conv") conv_op = &op;
  }
  EXPECT_EQ(casts, 2);  // the input and the weight
  ASSERT_NE(weight_cast, nullptr);
  EXPECT_EQ(weight_cast->module, "");  // the root module's own parameter
  EXPECT_EQ(weight_cast->forward.bytes, 108 * (4 + 2.0));
  EXPECT_EQ(weight_cast->forward.flops, 0);
  ASSERT_NE(conv_op, nullptr);
  EXPECT_EQ(conv_op->dtype, at::kBFloat16);
  EXPECT_EQ(conv_op->module, "");  // named through its weight's copy, not "cast"
  // bytes at 2 each: input 384, output 512, weight 108.
  EXPECT_EQ(conv_op->forward.bytes, (384 + 512 + 108) * 2.0);
}

// Autocast intercepts aten::linear itself: the casts run inside the linear row, which is counted
// at bf16 although its recorded inputs are float32.
TEST(OpTrace, AutocastLinearIsCountedAtItsDtype) {
  torch::nn::Linear head(16, 5);
  LayerTracer tracer(*head);
  at::Tensor x = at::randn({3, 16});
  {
    LayerTracer::Recording r(tracer);
    AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
    EXPECT_EQ(head->forward(x).scalar_type(), at::kBFloat16);
  }
  ASSERT_EQ(tracer.ops().size(), 1u);
  const TracedOp& linear = tracer.ops()[0];
  EXPECT_EQ(linear.op, "linear");
  EXPECT_EQ(linear.dtype, at::kBFloat16);
  // bytes at 2 each: input 48, weight 80, output 15, bias 5.
  EXPECT_EQ(linear.forward.bytes, (48 + 80 + 15 + 5) * 2.0);
}

TEST(Roofline, BoundIsTheLowerRoofAtTheIntensity) {
  // 100 GFLOP/s peak, 20 GB/s: the ridge is at 5 FLOP/byte.
  RoofBound low = BoundAt(1.0, 100e9, 20e9);
  EXPECT_TRUE(low.memory_bound);
  EXPECT_EQ(low.attainable_flops_per_s, 20e9);
  RoofBound high = BoundAt(50.0, 100e9, 20e9);
  EXPECT_FALSE(high.memory_bound);
  EXPECT_EQ(high.attainable_flops_per_s, 100e9);
}

// Small and quick (the real roofs are measured by the profile, on the sizes above): the
// measurements run, return a positive finite rate, and refuse nonsense sizes.
TEST(Roofline, MeasuresPositiveRatesAndRefusesBadSizes) {
  RoofOptions o{.matmul_n = 64, .triad_elements = 1 << 16, .repeats = 2, .budget_s = 1};
  absl::StatusOr<double> f = MeasureMatmulFlops(o, at::kFloat);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_GT(*f, 0);
  EXPECT_TRUE(std::isfinite(*f));
  // bfloat16 needs oneDNN's AVX-512 kernels: where this CPU (or DNNL_MAX_CPU_ISA) has none, the
  // measurement says so, naming the dtype, instead of throwing.
  absl::StatusOr<double> bf16 = MeasureMatmulFlops(o, at::kBFloat16);
  if (bf16.ok()) {
    EXPECT_GT(*bf16, 0);
  } else {
    EXPECT_NE(bf16.status().message().find("matrix multiply in BFloat16 on cpu"), std::string::npos)
        << bf16.status();
  }
  absl::StatusOr<double> conv = MeasureConvFlops(o, at::kFloat, /*batch=*/1);
  ASSERT_TRUE(conv.ok()) << conv.status();
  EXPECT_GT(*conv, 0);
  EXPECT_FALSE(MeasureConvFlops(o, at::kFloat, 0).ok());
  absl::StatusOr<double> bw = MeasureTriadBandwidth(o);
  ASSERT_TRUE(bw.ok()) << bw.status();
  EXPECT_GT(*bw, 0);
  o.matmul_n = 0;
  EXPECT_FALSE(MeasureMatmulFlops(o, at::kFloat).ok());
  o.triad_elements = -1;
  EXPECT_EQ(MeasureTriadBandwidth(o).status().message(),
            "roofline: triad_elements must be at least 1");
}

}  // namespace
}  // namespace trainlab
