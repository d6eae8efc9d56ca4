// The convolution as matrix multiplies against LibTorch's own convolution, pass by pass, and the
// conv_autotune strategy built on it: its choices, its autograd node, autocast, and ResNet-18
// trained with it against eager.
#include "plugins/compile/conv_autotune.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/convolution.h"
#include "core/step.h"
#include "core/strategy.h"
#include "plugins/compile/conv_matmul.h"
#include "plugins/models/resnet18.h"

namespace trainlab::compile {
namespace {

struct Shape {
  const char* name;
  int64_t n, c, h, w, co, kh, kw;
  std::vector<int64_t> stride, padding, dilation;
  bool bias;
};

// Odd shapes on purpose: non-square images and kernels, stride, padding, 1x1 (the pointwise
// path and a strided one), one channel, batch 1, dilation, a kernel as large as the image.
const Shape kShapes[] = {
    {"3x3_pad1", 2, 3, 7, 5, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, false},
    {"3x3_stride2_batch1_channel1", 1, 1, 5, 6, 2, 3, 3, {2, 2}, {1, 1}, {1, 1}, true},
    {"1x1", 3, 5, 4, 4, 6, 1, 1, {1, 1}, {0, 0}, {1, 1}, false},
    {"1x1_stride2", 2, 4, 9, 7, 3, 1, 1, {2, 2}, {0, 0}, {1, 1}, true},
    {"2x3_stride21_dilated", 2, 3, 8, 9, 2, 2, 3, {2, 1}, {0, 1}, {1, 2}, false},
    {"5x5_whole_image", 2, 2, 4, 5, 3, 5, 5, {1, 1}, {2, 2}, {1, 1}, true},
    {"resnet_layer4", 2, 16, 4, 4, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, false},
};

void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

struct Passes {
  at::Tensor y, dx, dw;
};

Passes Library(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& gy,
               const Shape& s) {
  Passes p;
  p.y = at::convolution(x, w, b, s.stride, s.padding, s.dilation, false, {0, 0}, 1);
  auto grads = at::convolution_backward(gy, x, w, c10::nullopt, s.stride, s.padding, s.dilation,
                                        false, {0, 0}, 1, {true, true, false});
  p.dx = std::get<0>(grads);
  p.dw = std::get<1>(grads);
  return p;
}

Passes ByMatMul(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& gy,
                const Shape& s) {
  const ConvGeometry g = ConvGeometry::Of(x, w, s.stride, s.padding, s.dilation);
  return {MatMulConvolution(x, w, b, g), MatMulInputGrad(gy, w, g), MatMulWeightGrad(gy, x, g)};
}

// Whether LibTorch runs bfloat16 convolutions here. On an AVX-512 CPU it sends them to oneDNN,
// which has none when oneDNN is limited below AVX-512 (tools/isa_check.sh's DNNL_MAX_CPU_ISA=AVX2
// or SSE41): there is no library result to compare with then (amp_bf16.cc refuses to run).
bool LibraryHasBf16Convolutions() {
  static const bool has = [] {
    try {
      const at::Tensor x = at::ones({2, 3, 5, 5}, at::kBFloat16),
                       w = at::ones({4, 3, 3, 3}, at::kBFloat16);
      const at::Tensor y = at::convolution(x, w, {}, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1);
      at::convolution_backward(y, x, w, c10::nullopt, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1,
                               {true, true, false});
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return has;
}

double MaxRelError(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor g = got.to(at::kDouble), r = want.to(at::kDouble);
  return (g - r).abs().max().item<double>() / std::max(r.abs().max().item<double>(), 1e-300);
}

class MatMulConvolution
    : public ::testing::TestWithParam<std::tuple<Shape, c10::ScalarType, bool>> {};

// Every pass against the library's at the same dtype, with a double reference computed from the
// same (rounded) inputs. Double: equal to 1e-12. float32 and bfloat16: the matrix multiplies'
// error against the reference is at most 4x the library's own (plus a floor of 8 units in the
// last place: a pass the library gets exactly right must not fail on one rounding): both sum the
// same products in a different order, and a bfloat16 result is rounded once at the end by both.
TEST_P(MatMulConvolution, MatchesTheLibraryInEveryPass) {
  const auto& [s, dtype, channels_last] = GetParam();
  if (dtype == at::kBFloat16 && !LibraryHasBf16Convolutions()) {
    GTEST_SKIP() << "LibTorch has no bfloat16 convolution under this oneDNN limit";
  }
  torch::manual_seed(7);
  const auto format = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  auto make = [&](std::vector<int64_t> sizes) {
    return torch::randn(sizes, torch::kDouble).to(dtype).contiguous(format);
  };
  const at::Tensor x = make({s.n, s.c, s.h, s.w}), w = make({s.co, s.c, s.kh, s.kw});
  const at::Tensor b = s.bias ? torch::randn({s.co}, torch::kDouble).to(dtype) : at::Tensor();
  const ConvGeometry g = ConvGeometry::Of(x, w, s.stride, s.padding, s.dilation);
  const at::Tensor gy = make({s.n, s.co, g.oh, g.ow});

  const Passes mm = ByMatMul(x, w, b, gy, s);
  const Passes lib = Library(x, w, b, gy, s);
  auto dbl = [](const at::Tensor& t) { return t.defined() ? t.to(at::kDouble) : t; };
  const Passes ref = Library(dbl(x), dbl(w), dbl(b), dbl(gy), s);

  ASSERT_EQ(mm.y.sizes(), lib.y.sizes());
  ASSERT_EQ(mm.dx.sizes(), x.sizes());
  ASSERT_EQ(mm.dw.sizes(), w.sizes());
  EXPECT_EQ(mm.y.scalar_type(), dtype);
  const double ulp = dtype == at::kDouble     ? 1e-12
                     : dtype == at::kBFloat16 ? 8 * std::pow(2.0, -8)
                                              : 8 * std::pow(2.0, -24);
  for (auto [name, got, library, want] : {std::tuple{"forward", mm.y, lib.y, ref.y},
                                          std::tuple{"input gradient", mm.dx, lib.dx, ref.dx},
                                          std::tuple{"weight gradient", mm.dw, lib.dw, ref.dw}}) {
    const double err = MaxRelError(got, want);
    const double bound = dtype == at::kDouble ? ulp : 4 * MaxRelError(library, want) + ulp;
    EXPECT_LE(err, bound) << s.name << " " << name << " " << c10::toString(dtype)
                          << (channels_last ? " NHWC" : " NCHW") << ": library's error "
                          << MaxRelError(library, want);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatMulConvolution,
                         ::testing::Combine(::testing::ValuesIn(kShapes),
                                            ::testing::Values(at::kDouble, at::kFloat,
                                                              at::kBFloat16),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param).name) + "_" +
                                  c10::toString(std::get<1>(info.param)) +
                                  (std::get<2>(info.param) ? "_NHWC" : "_NCHW");
                         });

TEST(MatMul, TakesTransposedViewsAndEmptyDepth) {
  torch::manual_seed(3);
  const at::Tensor a = torch::randn({5, 7}), b = torch::randn({9, 7});
  EXPECT_TRUE(torch::allclose(MatMul(a, b.t()), torch::matmul(a, b.t()), 1e-5, 1e-5));
  EXPECT_TRUE(
      torch::allclose(MatMul(b.t().contiguous().t(), a.t()), torch::matmul(b, a.t()), 1e-5, 1e-5));
  EXPECT_TRUE(MatMul(torch::randn({3, 0}), torch::randn({0, 4})).eq(0).all().item<bool>());
}

TEST(MatMul, RefusesMismatchedSizes) {
  EXPECT_THROW(MatMul(torch::randn({2, 3}), torch::randn({4, 5})), c10::Error);
}

TEST(ConvAutotuner, TimesBothCandidatesOncePerShapeAndPass) {
  auto tuner = std::make_shared<ConvAutotuner>();
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(8, 8, 3).padding(1).bias(false));
  const at::Tensor x = torch::randn({4, 8, 6, 6}, torch::requires_grad());
  {
    ScopedConvolutionOverride use(tuner.get());
    for (int i = 0; i < 3; ++i) Conv2d(*conv, x).sum().backward();
  }
  const std::vector<ConvolutionChoice> choices = tuner->Choices();
  ASSERT_EQ(choices.size(), 3u);  // forward, input gradient, weight gradient: once each
  std::set<std::string> passes;
  for (const ConvolutionChoice& c : choices) {
    passes.insert(c.pass);
    EXPECT_EQ(c.shape, "4x8x6x6 k3 s1 p1 -> 8, Float, contiguous");
    ASSERT_EQ(c.seconds.size(), 2u) << c.pass;
    EXPECT_GT(c.seconds[0].second, 0);
    EXPECT_GT(c.seconds[1].second, 0);
    const bool library_faster = c.seconds[0].second <= c.seconds[1].second;
    EXPECT_EQ(c.algorithm, library_faster ? "library" : "matmul") << c.pass;
  }
  EXPECT_EQ(passes, (std::set<std::string>{"forward", "input gradient", "weight gradient"}));
}

TEST(ConvAutotuner, LeavesAGroupedConvolutionToTheLibraryAndSaysWhy) {
  auto tuner = std::make_shared<ConvAutotuner>();
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(4, 4, 3).padding(1).groups(2));
  const at::Tensor x = torch::randn({2, 4, 5, 5});
  at::Tensor got;
  {
    ScopedConvolutionOverride use(tuner.get());
    got = Conv2d(*conv, x);
  }
  EXPECT_TRUE(torch::equal(got, conv->forward(x)));
  ASSERT_EQ(tuner->Choices().size(), 1u);
  EXPECT_EQ(tuner->Choices()[0].algorithm, "library");
  EXPECT_EQ(tuner->Choices()[0].note, "grouped convolution");
  EXPECT_TRUE(tuner->Choices()[0].seconds.empty());
}

TEST(ConvAutotuner, WithoutAnOverrideConv2dIsTheModulesForwardBitForBit) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 5, 3).padding(1).stride(2));
  const at::Tensor x = torch::randn({2, 3, 9, 9});
  EXPECT_TRUE(torch::equal(Conv2d(*conv, x), conv->forward(x)));
}

// The autograd node: gradients for input, weight and bias as LibTorch's conv2d gives them, in
// double to 1e-12, through the matrix multiplies (forced) and the library (forced).
TEST(ConvAutotuner, GradientsMatchConv2dThroughEitherAlgorithm) {
  for (auto algorithm : {ConvAutotuner::Algorithm::kMatMul, ConvAutotuner::Algorithm::kLibrary}) {
    SCOPED_TRACE(ConvAutotuner::AlgorithmName(algorithm));
    torch::manual_seed(11);
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 3).padding(1).stride(2).bias(true));
    conv->to(torch::kDouble);
    const at::Tensor x0 = torch::randn({2, 3, 7, 6}, torch::kDouble);
    const at::Tensor up = torch::randn({2, 4, 4, 3}, torch::kDouble);

    at::Tensor x = x0.clone().requires_grad_(true);
    (conv->forward(x) * up).sum().backward();
    const at::Tensor want_dx = x.grad().clone(), want_dw = conv->weight.grad().clone(),
                     want_db = conv->bias.grad().clone();
    conv->zero_grad();

    auto tuner = std::make_shared<ConvAutotuner>(algorithm);
    x = x0.clone().requires_grad_(true);
    at::Tensor y;
    {
      ScopedConvolutionOverride use(tuner.get());
      y = Conv2d(*conv, x);
    }
    ASSERT_NE(y.grad_fn(), nullptr);
    EXPECT_EQ(y.grad_fn()->name(), "trainlab::TunedConvolutionBackward");
    (y * up).sum().backward();
    EXPECT_LE(MaxRelError(x.grad(), want_dx), 1e-12);
    EXPECT_LE(MaxRelError(conv->weight.grad(), want_dw), 1e-12);
    EXPECT_LE(MaxRelError(conv->bias.grad(), want_db), 1e-12);
    EXPECT_EQ(tuner->Choices().size(), 3u);
  }
}

TEST(ConvAutotuner, BuildsNoGraphWithoutGrad) {
  auto tuner = std::make_shared<ConvAutotuner>(ConvAutotuner::Algorithm::kMatMul);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(2, 2, 3));
  torch::NoGradGuard no_grad;
  ScopedConvolutionOverride use(tuner.get());
  const at::Tensor y = Conv2d(*conv, torch::randn({1, 2, 5, 5}));
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(tuner->Choices().size(), 1u);  // the forward only
}

// Under CPU autocast to bfloat16 the tuned convolution casts like aten::conv2d: a bfloat16
// output, float32 gradients on the float32 weight.
TEST(ConvAutotuner, CastsUnderAutocastAsConv2dDoes) {
  if (!LibraryHasBf16Convolutions()) {
    GTEST_SKIP() << "LibTorch has no bfloat16 convolution under this oneDNN limit";
  }
  auto tuner = std::make_shared<ConvAutotuner>(ConvAutotuner::Algorithm::kMatMul);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 3).padding(1).bias(false));
  const at::Tensor x = torch::randn({2, 3, 6, 6});
  at::Tensor y, want;
  {
    AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
    want = conv->forward(x);
    ScopedConvolutionOverride use(tuner.get());
    y = Conv2d(*conv, x);
  }
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  EXPECT_EQ(want.scalar_type(), at::kBFloat16);
  EXPECT_LE(MaxRelError(y, want), 2e-2);  // both bfloat16: 8 bits of mantissa, summed over 27
  y.to(at::kFloat).sum().backward();
  ASSERT_TRUE(conv->weight.grad().defined());
  EXPECT_EQ(conv->weight.grad().scalar_type(), at::kFloat);
}

TEST(ConvAutotuneStrategy, InstallsATunerOnTheCpuAndRefusesAGpu) {
  absl::StatusOr<StepOptions> cpu = ResolveStrategies("channels_last+conv_autotune", torch::kCPU);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  ASSERT_NE(cpu->convolution, nullptr);
  EXPECT_EQ(cpu->convolution->name(), "conv_autotune");
  EXPECT_EQ(cpu->memory_format, c10::MemoryFormat::ChannelsLast);

  absl::StatusOr<StepOptions> gpu =
      ResolveStrategies("conv_autotune", c10::Device(c10::DeviceType::CUDA, 0));
  ASSERT_FALSE(gpu.ok());
  EXPECT_TRUE(IsStrategyCannotRun(gpu.status()));
  EXPECT_NE(gpu.status().message().find("cudnn_autotune"), std::string::npos) << gpu.status();
}

// ResNet-18 trained 3 SGD steps (lr 0.1, momentum 0.9) on one synthetic batch (random images,
// the test's stand-in for data) through the eager step, float32: with the library's
// convolutions in channels-last (the reference), with every convolution forced onto the matrix
// multiplies (timing might keep the library everywhere), and with the library in NCHW, whose
// different algorithms give the noise floor: the same arithmetic summed in another order. Four
// images with batch norm at lr 0.1 amplify rounding fast (measured: NCHW against channels-last
// differs by 4e-3 in the worst parameter after one step, 0.16 after three, losses by 6e-3), so
// the bound is relative to that floor, not a fixed number: the matrix multiplies stay within
// twice the library's own NCHW/channels-last difference (measured: the same to 3 digits), where
// a wrong gradient would move the losses and parameters by far more.
TEST(ConvAutotuneStrategy, TrainsResNet18LikeEager) {
  auto train = [](std::shared_ptr<ConvolutionOverride> convolution, c10::MemoryFormat format) {
    torch::manual_seed(0);
    models::ResNet18 net;
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
    options.convolution = std::move(convolution);
    const at::Tensor x = torch::randn({4, 3, 32, 32}).contiguous(format);
    const at::Tensor y = torch::randint(10, {4});
    std::vector<double> losses;
    for (int i = 0; i < 3; ++i) {
      losses.push_back(EagerStep(fns, options, x, y, nullptr).loss.item<double>());
    }
    std::vector<at::Tensor> params;
    for (const at::Tensor& p : net->parameters()) params.push_back(p.detach().clone());
    return std::pair{losses, params};
  };
  auto worst = [](const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
    double w = 0;
    for (size_t i = 0; i < a.size(); ++i) w = std::max(w, MaxRelError(a[i], b[i]));
    return w;
  };
  const auto [ref_losses, ref_params] = train(nullptr, c10::MemoryFormat::ChannelsLast);
  const auto [nchw_losses, nchw_params] = train(nullptr, c10::MemoryFormat::Contiguous);
  auto tuner = std::make_shared<ConvAutotuner>(ConvAutotuner::Algorithm::kMatMul);
  const auto [losses, params] = train(tuner, c10::MemoryFormat::ChannelsLast);

  for (size_t i = 0; i < losses.size(); ++i) {
    const double floor = std::abs(nchw_losses[i] - ref_losses[i]);
    EXPECT_LE(std::abs(losses[i] - ref_losses[i]), 2 * floor + 1e-6 * std::abs(ref_losses[i]))
        << "step " << i << ": " << losses[i] << " against " << ref_losses[i]
        << " (NCHW: " << nchw_losses[i] << ")";
  }
  const double floor = worst(nchw_params, ref_params);
  EXPECT_LE(worst(params, ref_params), 2 * floor + 1e-6) << "NCHW's: " << floor;
  // Every convolution of the model went through the tuner: 20 layers, 11 distinct shapes, 3
  // passes each, minus the first layer's input gradient (its input needs none).
  EXPECT_EQ(tuner->Choices().size(), 11u * 3 - 1);
}

}  // namespace
}  // namespace trainlab::compile
