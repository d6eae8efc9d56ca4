// The compile strategies on the CPU: which exist, which refuse the CPU and why, and that
// channels_last and amp_bf16 train like eager.
#include <ATen/ATen.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include "core/strategy.h"
#include "core/trainer.h"
#include "gtest/gtest.h"
#include "plugins/data/loader.h"
#include "plugins/data/synthetic.h"
#include "plugins/models/resnet18.h"

namespace trainlab {
namespace {

TEST(StrategyRegistry, HasAllSeven) {
  EXPECT_EQ(StrategyRegistry::Global().Names(),
            (std::vector<std::string>{"amp_bf16", "channels_last", "conv_autotune", "cuda_graph",
                                      "cudnn_autotune", "eager", "fused_bn_relu"}));
}

TEST(StrategyRegistry, CudaStrategiesExplainWhyNotOnTheCpu) {
  absl::StatusOr<StepOptions> g = ResolveStrategies("cuda_graph", c10::kCPU);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("cuda_graph needs a CUDA device"), std::string::npos)
      << g.status();
  absl::StatusOr<StepOptions> c = ResolveStrategies("channels_last+cudnn_autotune", c10::kCPU);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("cudnn_autotune needs a CUDA device"), std::string::npos)
      << c.status();
}

// The default build has no graph runner and says so; --config=cuda compiles it in (the define
// comes from //plugins/compile:cuda_graph), and then only the device is missing here.
TEST(StrategyRegistry, CudaGraphRunnerIsCompiledInOnlyWithConfigCuda) {
  absl::StatusOr<const StrategyEntry*> e = StrategyRegistry::Global().Find("cuda_graph");
  ASSERT_TRUE(e.ok()) << e.status();
  StepOptions o;
  (*e)->apply(o);
  const absl::Status on_cpu = (*e)->can_run(c10::kCPU);
  ASSERT_FALSE(on_cpu.ok());
#ifdef TRAINLAB_WITH_CUDA_GRAPH
  EXPECT_TRUE(o.make_runner);
  EXPECT_EQ(on_cpu.message(), "cuda_graph needs a CUDA device, not cpu");
#else
  EXPECT_FALSE(o.make_runner);
  EXPECT_NE(on_cpu.message().find("this binary was built without it"), std::string::npos) << on_cpu;
#endif
}

// amp_bf16 cannot run on an AVX-512 CPU whose oneDNN is limited below avx512_core (e.g.
// tools/isa_check.sh's emulation of other CPUs): it says so, and its tests are skipped.
#define SKIP_UNLESS_AMP_BF16_RUNS()                                             \
  do {                                                                          \
    const absl::Status amp = ResolveStrategies("amp_bf16", c10::kCPU).status(); \
    if (absl::IsFailedPrecondition(amp)) GTEST_SKIP() << amp.message();         \
    ASSERT_TRUE(amp.ok()) << amp;                                               \
  } while (0)

TEST(StrategyRegistry, CombinationsSetEveryKnob) {
  SKIP_UNLESS_AMP_BF16_RUNS();
  absl::StatusOr<StepOptions> o = ResolveStrategies("channels_last+amp_bf16", c10::kCPU);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->memory_format, c10::MemoryFormat::ChannelsLast);
  EXPECT_EQ(o->autocast_dtype, c10::ScalarType::BFloat16);
  EXPECT_FALSE(o->make_runner);
}

// Per-batch losses of a few SGD steps of ResNet-18 on synthetic data under `strategy`.
std::vector<double> Losses(const std::string& strategy, int steps) {
  torch::manual_seed(0);
  models::ResNet18 model;
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  auto ds = std::make_shared<const data::ImageDataset>(data::MakeSyntheticDataset(8 * steps, 1));
  auto loader = data::BatchLoader::Create(ds, {.batch_size = 8, .num_workers = 0, .seed = 1});
  EXPECT_TRUE(loader.ok());
  absl::StatusOr<StepOptions> step = ResolveStrategies(strategy, c10::kCPU);
  EXPECT_TRUE(step.ok()) << step.status();
  TrainerOptions o;
  o.step = *step;
  Trainer trainer(*model, sgd, **loader, o);
  absl::StatusOr<EpochStats> s = trainer.TrainEpoch(0);
  EXPECT_TRUE(s.ok()) << s.status();
  std::vector<double> losses;
  for (const BatchRecord& b : s->batches) losses.push_back(b.loss);
  if (strategy == "channels_last") {
    EXPECT_TRUE(
        model->named_parameters()["conv1.weight"].is_contiguous(c10::MemoryFormat::ChannelsLast));
  }
  return losses;
}

TEST(Strategies, ChannelsLastTracksEagerTightly) {
  const std::vector<double> eager = Losses("eager", 4), nhwc = Losses("channels_last", 4);
  ASSERT_EQ(eager.size(), nhwc.size());
  // Same arithmetic in another memory order: only float32 summation order differs. The first
  // step sees identical weights (1e-4); later steps inherit a little chaos from the updates of a
  // batch-8 BN network (1e-2).
  EXPECT_NEAR(nhwc[0], eager[0], 1e-4 * eager[0]);
  for (size_t i = 1; i < eager.size(); ++i) EXPECT_NEAR(nhwc[i], eager[i], 1e-2 * eager[i]) << i;
}

TEST(Strategies, AmpBf16TracksEagerLoosely) {
  SKIP_UNLESS_AMP_BF16_RUNS();
  // bf16 convolutions are slow on CPUs without native bf16: 3 steps only.
  const std::vector<double> eager = Losses("eager", 3), bf16 = Losses("amp_bf16", 3);
  ASSERT_EQ(eager.size(), bf16.size());
  // bfloat16 keeps 8 bits of mantissa (~2-3 significant digits) through 20 conv layers: 3% on
  // the first step, 10% once the updates differ too.
  EXPECT_NEAR(bf16[0], eager[0], 0.03 * eager[0]);
  for (size_t i = 1; i < eager.size(); ++i) EXPECT_NEAR(bf16[i], eager[i], 0.10 * eager[i]) << i;
  EXPECT_NE(bf16, eager);  // and it did run in lower precision
}

TEST(Strategies, AutocastGuardComputesConvolutionsInBf16AndRestores) {
  SKIP_UNLESS_AMP_BF16_RUNS();
  models::ResNet18 model;
  at::Tensor x = at::randn({1, 3, 32, 32});
  {
    AutocastGuard guard(c10::DeviceType::CPU, c10::ScalarType::BFloat16);
    EXPECT_EQ(model->forward(x).scalar_type(), c10::ScalarType::BFloat16);
  }
  EXPECT_EQ(model->forward(x).scalar_type(), c10::ScalarType::Float);
}

}  // namespace
}  // namespace trainlab
