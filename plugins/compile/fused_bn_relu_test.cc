// fused_bn_relu against torch::nn::BatchNorm2d (+ at::relu): forward, the three gradients and
// the running statistics, on odd shapes, in float32 and bfloat16, NCHW and NHWC; where it leaves
// a batch norm to the module and why; autocast; and ResNet-18 trained with it against eager.
#include "plugins/compile/fused_bn_relu.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "core/autocast.h"
#include "core/normalization.h"
#include "core/step.h"
#include "core/strategy.h"
#include "plugins/models/resnet18.h"

namespace trainlab::compile {
namespace {

struct Shape {
  const char* name;
  int64_t n, c, h, w;
};

// Odd on purpose: non-square, one channel with batch 1, a 1-pixel-high image, layer4's 4x4.
const Shape kShapes[] = {
    {"4x3x5x7", 4, 3, 5, 7},
    {"batch1_channel1", 1, 1, 3, 3},
    {"height1", 3, 5, 1, 4},
    {"resnet_layer4", 3, 16, 4, 4},
};

void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

double MaxRelError(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor g = got.to(at::kDouble), r = want.to(at::kDouble);
  return (g - r).abs().max().item<double>() / std::max(r.abs().max().item<double>(), 1e-300);
}

// A batch norm with random (not identity) scale, shift and running statistics, copied into
// `dtype` (the parameters stay float32 unless dtype is double, as under autocast).
torch::nn::BatchNorm2d MakeBn(int64_t c, c10::ScalarType param_dtype) {
  torch::manual_seed(3);
  torch::nn::BatchNorm2d bn(c);
  torch::NoGradGuard no_grad;
  bn->weight.copy_(torch::rand({c}) + 0.5);
  bn->bias.copy_(torch::randn({c}));
  bn->running_mean.copy_(torch::randn({c}));
  bn->running_var.copy_(torch::rand({c}) + 0.5);
  bn->to(param_dtype);
  return bn;
}

struct Result {
  at::Tensor y, dx, dweight, dbias, running_mean, running_var;
};

// y = BatchNorm2d(x) (+ ReLU) through `o` (null: the module's own), and its gradients for `gy`.
Result RunBatchNorm(NormalizationOverride* o, const at::Tensor& x_in, const at::Tensor& gy,
                    bool relu, c10::ScalarType param_dtype) {
  torch::nn::BatchNorm2d bn = MakeBn(x_in.size(1), param_dtype);
  at::Tensor x = x_in.detach().clone().requires_grad_();
  at::Tensor y;
  {
    ScopedNormalizationOverride use(o);
    y = BatchNorm2d(*bn, x, relu);
  }
  y.backward(gy);
  return {y.detach(),      x.grad(),         bn->weight.grad(),
          bn->bias.grad(), bn->running_mean, bn->running_var};
}

class FusedBatchNorm
    : public ::testing::TestWithParam<std::tuple<Shape, c10::ScalarType, bool, bool>> {};

// Forward, the three gradients and the running statistics against the module's own at the same
// dtype, with a double reference from the same (rounded) inputs: the fused op's error against
// the reference is at most 4x the module's own, plus a floor of 8 units in the last place (both
// compute in float32 and round a bfloat16 output once; they sum in different orders).
TEST_P(FusedBatchNorm, MatchesTheModule) {
  const auto& [s, dtype, channels_last, relu] = GetParam();
  torch::manual_seed(11);
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const at::Tensor x =
      (torch::randn({s.n, s.c, s.h, s.w}, torch::kDouble) * 3 + 1).to(dtype).contiguous(format);
  const at::Tensor gy =
      torch::randn({s.n, s.c, s.h, s.w}, torch::kDouble).to(dtype).contiguous(format);
  FusedBatchNormRelu fused;
  const Result got = RunBatchNorm(&fused, x, gy, relu, at::kFloat);
  const Result lib = RunBatchNorm(nullptr, x, gy, relu, at::kFloat);
  const Result ref =
      RunBatchNorm(nullptr, x.to(at::kDouble), gy.to(at::kDouble), relu, at::kDouble);

  ASSERT_EQ(fused.Choices().size(), 1u);
  const std::string choice = fused.Choices()[0];
  // oneDNN's bfloat16 kernels need AVX-512 (tools/isa_check.sh limits oneDNN below it): then the
  // module runs, and must say so.
  if (FusedBatchNormRelu::Built() &&
      (dtype == at::kFloat || choice.find("module's own") == std::string::npos)) {
    EXPECT_NE(choice.find("oneDNN ("), std::string::npos) << choice;
  }
  EXPECT_EQ(got.y.scalar_type(), dtype);
  EXPECT_EQ(got.y.sizes(), x.sizes());
  EXPECT_EQ(got.dx.scalar_type(), dtype);
  if (channels_last && s.c > 1 && s.h * s.w > 1) {
    EXPECT_TRUE(got.y.is_contiguous(at::MemoryFormat::ChannelsLast));
  }
  const double ulp = 8 * std::pow(2.0, dtype == at::kBFloat16 ? -8 : -24);
  for (auto [name, a, l, r] :
       {std::tuple{"forward", got.y, lib.y, ref.y},
        std::tuple{"input gradient", got.dx, lib.dx, ref.dx},
        std::tuple{"scale gradient", got.dweight, lib.dweight, ref.dweight},
        std::tuple{"shift gradient", got.dbias, lib.dbias, ref.dbias},
        std::tuple{"running mean", got.running_mean, lib.running_mean, ref.running_mean},
        std::tuple{"running variance", got.running_var, lib.running_var, ref.running_var}}) {
    ASSERT_TRUE(a.defined()) << name;
    EXPECT_LE(MaxRelError(a, r), 4 * MaxRelError(l, r) + ulp)
        << s.name << " " << name << " " << c10::toString(dtype)
        << (channels_last ? " NHWC" : " NCHW") << (relu ? " relu" : "") << ": the module's error "
        << MaxRelError(l, r);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, FusedBatchNorm,
                         ::testing::Combine(::testing::ValuesIn(kShapes),
                                            ::testing::Values(at::kFloat, at::kBFloat16),
                                            ::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) + "_" +
                                  c10::toString(std::get<1>(info.param)) +
                                  (std::get<2>(info.param) ? "_NHWC" : "_NCHW") +
                                  (std::get<3>(info.param) ? "_relu" : "");
                         });

TEST(FusedBatchNormRelu, CountsBatchesAndAveragesCumulativelyWithoutMomentum) {
  auto run = [](NormalizationOverride* o) {
    torch::manual_seed(5);
    torch::nn::BatchNorm2d bn(torch::nn::BatchNorm2dOptions(6).momentum(c10::nullopt));
    ScopedNormalizationOverride use(o);
    for (int i = 0; i < 3; ++i) BatchNorm2d(*bn, torch::randn({4, 6, 3, 3}) * (i + 1), true);
    return std::tuple{bn->num_batches_tracked.item<int64_t>(), bn->running_mean.clone(),
                      bn->running_var.clone()};
  };
  FusedBatchNormRelu fused;
  const auto [batches, mean, var] = run(&fused);
  const auto [lib_batches, lib_mean, lib_var] = run(nullptr);
  EXPECT_EQ(batches, 3);
  EXPECT_EQ(lib_batches, 3);
  EXPECT_LE(MaxRelError(mean, lib_mean), 1e-5);
  EXPECT_LE(MaxRelError(var, lib_var), 1e-5);
}

TEST(FusedBatchNormRelu, LeavesWhatItCannotRunToTheModuleAndSaysWhy) {
  FusedBatchNormRelu fused;
  ScopedNormalizationOverride use(&fused);
  torch::nn::BatchNorm2d bn(4);
  const at::Tensor x = torch::randn({2, 4, 3, 3});
  // Evaluation with running statistics: the module's own forward, bit for bit.
  bn->eval();
  EXPECT_TRUE(BatchNorm2d(*bn, x, true).equal(at::relu(bn->forward(x))));
  bn->train();
  // Double: oneDNN has no double batch norm.
  torch::nn::BatchNorm2d bn64(4);
  bn64->to(at::kDouble);
  const at::Tensor x64 = x.to(at::kDouble);
  const at::Tensor y64 = BatchNorm2d(*bn64, x64, false);
  EXPECT_EQ(y64.scalar_type(), at::kDouble);
  // No affine parameters.
  torch::nn::BatchNorm2d plain(torch::nn::BatchNorm2dOptions(4).affine(false));
  BatchNorm2d(*plain, x, false);
  // Neither NCHW nor NHWC (a channel-sliced view).
  BatchNorm2d(*bn, torch::randn({2, 8, 3, 3}).slice(1, 0, 4), false);

  std::string all;
  for (const std::string& c : fused.Choices()) all += c + "\n";
  if (!FusedBatchNormRelu::Built()) {  // LibTorch 2.x: every one says that
    EXPECT_NE(all.find("LibTorch 2.x"), std::string::npos) << all;
    return;
  }
  for (const char* why : {"evaluation (running statistics)", "no oneDNN batch norm for Double",
                          "no float32 scale and shift", "neither NCHW- nor NHWC-contiguous"}) {
    EXPECT_NE(all.find(why), std::string::npos) << why << " not in:\n" << all;
  }
}

TEST(FusedBatchNormRelu, BuildsNoGraphWithoutGrad) {
  FusedBatchNormRelu fused;
  ScopedNormalizationOverride use(&fused);
  torch::nn::BatchNorm2d bn(4);
  torch::NoGradGuard no_grad;
  const at::Tensor y = BatchNorm2d(*bn, torch::randn({2, 4, 3, 3}), true);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_GE(y.min().item<float>(), 0.0f);  // the ReLU ran
}

// Under CPU autocast a convolution hands batch norm a bfloat16 activation, which stays bfloat16
// (aten::batch_norm is on none of autocast's lists); the scale and shift stay float32. (The cast
// stands in for the convolution: a bf16 convolution fails where tools/isa_check.sh limits
// oneDNN below AVX-512 on an AVX-512 CPU, amp_bf16.cc.)
TEST(FusedBatchNormRelu, KeepsAutocastsBfloat16Activations) {
  FusedBatchNormRelu fused;
  torch::nn::BatchNorm2d bn(8);
  const at::Tensor x =
      torch::randn({4, 8, 6, 6}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_();
  at::Tensor y, want;
  {
    AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
    want = at::relu(bn->forward(x.to(at::kBFloat16)));
    ScopedNormalizationOverride use(&fused);
    y = BatchNorm2d(*bn, x.to(at::kBFloat16), true);
  }
  EXPECT_EQ(want.scalar_type(), at::kBFloat16);
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  EXPECT_LE(MaxRelError(y, want), 2e-2);  // both round the same float32 values to 8 bits
  y.to(at::kFloat).sum().backward();
  ASSERT_TRUE(bn->weight.grad().defined());
  EXPECT_EQ(bn->weight.grad().scalar_type(), at::kFloat);
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().scalar_type(), at::kFloat);
}

TEST(FusedBatchNormReluStrategy, InstallsOnTheCpuAndRefusesAGpu) {
  absl::StatusOr<StepOptions> cpu = ResolveStrategies("channels_last+fused_bn_relu", torch::kCPU);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  ASSERT_NE(cpu->normalization, nullptr);
  EXPECT_EQ(cpu->normalization->name(), "fused_bn_relu");

  absl::StatusOr<StepOptions> gpu =
      ResolveStrategies("fused_bn_relu", c10::Device(c10::DeviceType::CUDA, 0));
  ASSERT_FALSE(gpu.ok());
  EXPECT_TRUE(IsStrategyCannotRun(gpu.status()));
  EXPECT_NE(gpu.status().message().find("fused_bn_relu"), std::string::npos) << gpu.status();
}

// ResNet-18, one synthetic batch of 4 (random images, the test's stand-in for data), SGD (lr 0.1,
// momentum 0.9), float32 channels-last with the module's batch norms and with fused_bn_relu,
// against the same step in double. This checks the wiring (every batch norm routed, every
// gradient reaching its parameter, the statistics and counters updated); the numerics of each
// op are checked tightly above. The first step's gradients (from the same weights) must be
// within 5% of double's (relative, as one vector), where a missing or misrouted gradient is
// off by tens of percent: float32 rounding alone moves them by 0.07-1.04% (measured, module and
// fused alike, over the four kernel sets of tools/isa_check.sh), in jumps, not smoothly: a
// pre-activation within rounding of zero flips its ReLU, and batch norm over 4 images spreads
// that. So no ratio between the two float32 runs is a stable bound (either may be the closer).
// The running statistics (forward only) must be within 4x the module's distance from double's.
// Three steps check num_batches_tracked and that the run stays finite.
TEST(FusedBatchNormReluStrategy, TrainsResNet18LikeEager) {
  struct Run {
    std::vector<at::Tensor> grads, buffers;
    std::vector<double> losses;
    std::vector<int64_t> batches_tracked;
  };
  auto train = [](std::shared_ptr<NormalizationOverride> normalization, c10::ScalarType dtype) {
    const c10::MemoryFormat format =
        dtype == at::kDouble ? c10::MemoryFormat::Contiguous : c10::MemoryFormat::ChannelsLast;
    torch::manual_seed(0);
    models::ResNet18 net;
    if (dtype != at::kFloat) net->to(dtype);  // (which makes num_batches_tracked double too)
    {
      torch::NoGradGuard no_grad;
      for (at::Tensor& p : net->parameters()) {
        if (p.dim() == 4) p.set_data(p.contiguous(format));
      }
    }
    torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    StepFunctions fns{.module = net.get(),
                      .forward = [&](const at::Tensor& x) { return net->forward(x); },
                      .zero_grad = [&] { sgd.zero_grad(); },
                      .optimizer_step = [&] { sgd.step(); }};
    StepOptions options;
    options.memory_format = format;
    options.normalization = std::move(normalization);
    const at::Tensor x = torch::randn({4, 3, 32, 32}).to(dtype).contiguous(format);
    const at::Tensor y = torch::randint(10, {4});
    Run run;
    for (int i = 0; i < 3; ++i) {
      run.losses.push_back(EagerStep(fns, options, x, y, nullptr).loss.item<double>());
      if (i > 0) continue;
      for (const at::Tensor& p : net->parameters()) run.grads.push_back(p.grad().clone());
      for (const auto& b : net->named_buffers()) {
        if (!absl::EndsWith(b.key(), "num_batches_tracked")) run.buffers.push_back(b->clone());
      }
    }
    for (const auto& b : net->named_buffers()) {
      if (absl::EndsWith(b.key(), "num_batches_tracked")) {
        run.batches_tracked.push_back(b->to(at::kLong).item<int64_t>());
      }
    }
    return run;
  };
  // Relative distance of a to b, all tensors as one vector (a parameter whose own gradient nearly
  // cancels would make a per-parameter relative error meaningless).
  auto l2 = [](const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      diff += (a[i].to(at::kDouble) - b[i].to(at::kDouble)).pow(2).sum().item<double>();
      norm += b[i].to(at::kDouble).pow(2).sum().item<double>();
    }
    return std::sqrt(diff / norm);
  };
  const Run exact = train(nullptr, at::kDouble);
  const Run lib = train(nullptr, at::kFloat);
  auto fused = std::make_shared<FusedBatchNormRelu>();
  const Run got = train(fused, at::kFloat);

  ASSERT_EQ(got.grads.size(), exact.grads.size());
  const double lib_grads = l2(lib.grads, exact.grads), got_grads = l2(got.grads, exact.grads);
  EXPECT_LE(lib_grads, 0.05);  // the bound holds for the module itself
  EXPECT_LE(got_grads, 0.05) << "the module's: " << lib_grads;
  for (size_t i = 0; i < got.grads.size(); ++i) {
    EXPECT_GT(got.grads[i].abs().max().item<double>(), 0) << "parameter " << i << ": no gradient";
  }
  const double lib_stats = l2(lib.buffers, exact.buffers),
               got_stats = l2(got.buffers, exact.buffers);
  EXPECT_LE(got_stats, 4 * lib_stats + 1e-6) << "the module's: " << lib_stats;
  std::cout << "first step against double: gradients " << got_grads << " (the module's "
            << lib_grads << "), statistics " << got_stats << " (the module's " << lib_stats
            << ")\n";
  EXPECT_EQ(got.batches_tracked, lib.batches_tracked);
  EXPECT_EQ(got.batches_tracked, std::vector<int64_t>(20, 3));
  for (double loss : got.losses) EXPECT_TRUE(std::isfinite(loss));
  // Every batch norm of the model went through oneDNN: per stage, one shape with its ReLU (the
  // stem's and each block's first) and one without (each block's second, the shortcut's).
  // (In a LibTorch 2.x build, with no oneDNN of its own, each says why the module ran.)
  const std::vector<std::string> choices = fused->Choices();
  EXPECT_EQ(choices.size(), 8u);
  for (const std::string& c : choices) {
    EXPECT_NE(c.find(FusedBatchNormRelu::Built() ? ": oneDNN (" : "LibTorch 2.x"),
              std::string::npos)
        << c;
  }
}

}  // namespace
}  // namespace trainlab::compile
