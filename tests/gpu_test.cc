// The GPU paths, run where a CUDA device is (tools/gpu_check.sh runs this binary on a lent GPU):
// the cuda_graph runner against eager step for step, a capture that fails, pinned batches whose
// slots are reused while copies are in flight, and every strategy taking steps on the device.
// Without a GPU each of those is skipped, and what is checked is that the CUDA paths refuse
// with a reason instead of failing later.
#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <cmath>
#include <string>
#include <vector>

#ifdef TRAINLAB_LIBTORCH_HAS_CUDA
#include <ATen/cuda/Sleep.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "core/strategy.h"
#include "core/trainer.h"
#include "gtest/gtest.h"
#include "plugins/compile/cuda_graph.h"
#include "plugins/compile/graph_step.h"
#include "plugins/data/loader.h"
#include "plugins/data/synthetic.h"
#include "plugins/models/resnet18.h"

namespace trainlab {
namespace {

#define REQUIRE_GPU() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device here"

const c10::Device kGpu(c10::kCUDA, 0);

// Bytes the caching allocator holds on the GPU after giving back what it can (-1: unknown).
int64_t ReservedAfterEmptyCache() {
#ifdef TRAINLAB_LIBTORCH_HAS_CUDA
  torch::cuda::synchronize();
  c10::cuda::CUDACachingAllocator::emptyCache();
  return c10::cuda::CUDACachingAllocator::getDeviceStats(0).reserved_bytes[0].current;
#else
  return -1;
#endif
}

// Keeps the current stream busy for a while, so copies queued after it are still pending.
void DelayStream() {
#ifdef TRAINLAB_LIBTORCH_HAS_CUDA
  at::cuda::sleep(200'000'000);  // ~0.1 s of GPU clock cycles
#endif
}

TEST(WithoutAGpu, CudaPathsRefuseWithAReason) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "a CUDA device is here";
  absl::StatusOr<StepOptions> g = ResolveStrategies("cuda_graph", c10::kCPU);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("needs a CUDA device"), std::string::npos) << g.status();
  auto ds = std::make_shared<const data::ImageDataset>(data::MakeSyntheticDataset(16, 1));
  auto pinned = data::BatchLoader::Create(ds, {.batch_size = 8, .pin_memory = true});
  ASSERT_FALSE(pinned.ok());
  EXPECT_EQ(pinned.status().message(), "pinned batches need CUDA, and no CUDA device is available");
}

// Losses of ResNet-18 under `strategy` for batches of the given sizes (same seed, same data),
// and the graph runner's counts when the strategy brings one.
struct StrategyRun {
  std::vector<double> losses;
  compile::GraphStepCounts counts;
  absl::Status status;
};
StrategyRun Train(const std::string& strategy, const std::vector<int64_t>& sizes) {
  StrategyRun run;
  torch::manual_seed(0);
  models::ResNet18 model;
  model->to(kGpu);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  absl::StatusOr<StepOptions> step = ResolveStrategies(strategy, kGpu);
  if (!step.ok()) {
    run.status = step.status();
    return run;
  }
  auto runner = PrepareStepRunner(*model, sgd, kGpu, /*optimizer_capturable=*/true, *step);
  if (!runner.ok()) {
    run.status = runner.status();
    return run;
  }
  at::Generator gen = at::detail::createCPUGenerator(7);
  for (int64_t b : sizes) {
    at::Tensor x = at::randn({b, 3, 32, 32}, gen).to(kGpu).contiguous(step->memory_format);
    at::Tensor y = at::randint(0, 10, {b}, gen, at::kLong).to(kGpu);
    absl::StatusOr<StepOutput> out = (*runner)->Run(x, y, nullptr);
    if (!out.ok()) {
      run.status = out.status();
      return run;
    }
    run.losses.push_back(out->loss.item<double>());
  }
  if (auto* g = dynamic_cast<compile::GraphStepRunner*>(runner->get())) run.counts = g->counts();
  return run;
}

TEST(CudaGraph, TrainsLikeEagerThroughWarmupCaptureReplayAndAShortBatch) {
  REQUIRE_GPU();
  const std::vector<int64_t> sizes = {16, 16, 16, 16, 16, 16, 5, 16, 16, 16};
  const StrategyRun eager = Train("eager", sizes), graph = Train("cuda_graph", sizes);
  ASSERT_TRUE(eager.status.ok()) << eager.status;
  ASSERT_TRUE(graph.status.ok()) << graph.status;
  EXPECT_EQ(graph.counts.warmup, compile::kCudaGraphWarmupSteps);
  EXPECT_EQ(graph.counts.captures, 1);
  EXPECT_EQ(graph.counts.eager, 1);  // the batch of 5
  EXPECT_EQ(graph.counts.replays, static_cast<int64_t>(sizes.size()) - 3 - 1);
  ASSERT_EQ(graph.losses.size(), eager.losses.size());
  // Same kernels; cuDNN may pick other algorithms inside a capture, and a batch-16 BN network
  // amplifies rounding differences step by step.
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(std::isfinite(graph.losses[i])) << i;
    EXPECT_NEAR(graph.losses[i], eager.losses[i], (i < 5 ? 1e-3 : 5e-2) * eager.losses[i]) << i;
  }
}

// A forward that reads a value back to the host cannot be captured: the runner must return a
// Status naming the capture, leave no capture running, and the device must stay usable.
TEST(CudaGraph, AFailedCaptureIsAStatusAndTheDeviceStaysUsable) {
  REQUIRE_GPU();
  torch::manual_seed(0);
  models::ResNet18 model;
  model->to(kGpu);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.01));
  absl::StatusOr<StepOptions> step = ResolveStrategies("cuda_graph", kGpu);
  ASSERT_TRUE(step.ok()) << step.status();
  StepFunctions fns;
  fns.module = model.get();
  fns.forward = [&](const at::Tensor& x) {
    at::Tensor logits = model->forward(x);
    if (logits.sum().item<double>() == 12345.678) logits = logits * 2;  // a host sync
    return logits;
  };
  fns.zero_grad = [&] { sgd.zero_grad(); };
  fns.optimizer_step = [&] { sgd.step(); };
  fns.device = kGpu;
  fns.optimizer_capturable = true;
  auto runner = MakeStepRunner(fns, *step);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const at::Tensor x = at::randn({8, 3, 32, 32}).to(kGpu), y = at::randint(0, 10, {8}).to(kGpu);
  for (int i = 0; i < compile::kCudaGraphWarmupSteps; ++i) {
    ASSERT_TRUE((*runner)->Run(x, y, nullptr).ok()) << "warm-up step " << i;
  }
  const int64_t reserved_before = ReservedAfterEmptyCache();
  const absl::Status failed = (*runner)->Run(x, y, nullptr).status();
  ASSERT_FALSE(failed.ok());
  // The graph's private memory pool was given back (a leaked one holds the step's activations).
  EXPECT_LE(ReservedAfterEmptyCache(), reserved_before + (8 << 20));
  EXPECT_NE(failed.message().find("cuda_graph: capturing the step (batch of 8) failed"),
            std::string::npos)
      << failed;
  EXPECT_FALSE((*runner)->Run(x, y, nullptr).ok()) << "a failed runner never replays";
  // The device works: an eager step, and a fresh graph runner that captures and replays.
  StepOutput eager = EagerStep(fns, StepOptions{}, x, y, nullptr);
  EXPECT_TRUE(std::isfinite(eager.loss.item<double>()));
  const StrategyRun after = Train("cuda_graph", {8, 8, 8, 8, 8});
  ASSERT_TRUE(after.status.ok()) << after.status;
  EXPECT_EQ(after.counts.captures, 1);
  EXPECT_EQ(after.counts.replays, 2);
}

// Pinned slots are refilled while asynchronous copies out of them may still run; the loader's
// fence must keep every batch that reaches the GPU intact. The host batches are dropped right
// after their copy is queued, and nothing synchronizes until the end.
TEST(PinnedLoader, BatchesCopiedWithoutSynchronizingArriveIntact) {
  REQUIRE_GPU();
  auto ds = std::make_shared<const data::ImageDataset>(data::MakeSyntheticDataset(960, 3));
  data::LoaderOptions o{.batch_size = 32, .num_workers = 2, .seed = 9};
  auto plain = data::BatchLoader::Create(ds, o);
  o.pin_memory = true;
  o.prefetch_per_worker = 1;  // few slots: they are reused often
  auto pinned = data::BatchLoader::Create(ds, o);
  ASSERT_TRUE(plain.ok() && pinned.ok());
  for (int64_t epoch : {0, 1}) {
    std::vector<at::Tensor> on_gpu;
    DelayStream();  // the copies below wait behind it while the workers refill their slots
    (*pinned)->start_epoch(epoch);
    while (std::optional<Batch> b = (*pinned)->next()) {
      on_gpu.push_back(b->images.to(kGpu, /*non_blocking=*/true));
    }
    torch::cuda::synchronize();
    (*plain)->start_epoch(epoch);
    size_t i = 0;
    while (std::optional<Batch> b = (*plain)->next()) {
      ASSERT_LT(i, on_gpu.size());
      EXPECT_TRUE(at::equal(on_gpu[i].cpu(), b->images)) << "epoch " << epoch << " batch " << i;
      ++i;
    }
    EXPECT_EQ(i, on_gpu.size());
  }
}

// The Trainer as c8 runs it: cuda_graph with pinned batches from two loader workers, whose
// fences query CUDA events while the step is being captured.
TEST(CudaGraph, TrainsAnEpochFromAPinnedThreadedLoader) {
  REQUIRE_GPU();
  torch::manual_seed(0);
  models::ResNet18 model;
  model->to(kGpu);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  auto ds = std::make_shared<const data::ImageDataset>(data::MakeSyntheticDataset(16 * 12 + 5, 2));
  auto loader = data::BatchLoader::Create(ds, {.batch_size = 16,
                                               .num_workers = 2,
                                               .seed = 1,
                                               .prefetch_per_worker = 1,
                                               .pin_memory = true});
  ASSERT_TRUE(loader.ok()) << loader.status();
  absl::StatusOr<StepOptions> step = ResolveStrategies("cuda_graph", kGpu);
  ASSERT_TRUE(step.ok()) << step.status();
  TrainerOptions o{.device = kGpu, .step = *step, .optimizer_capturable = true};
  Trainer trainer(*model, sgd, **loader, o);
  for (int64_t epoch : {0, 1}) {
    absl::StatusOr<EpochStats> s = trainer.TrainEpoch(epoch);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->batches.size(), 13u);
    EXPECT_TRUE(std::isfinite(s->loss)) << s->loss;
  }
}

TEST(Strategies, EveryStrategyTakesFiniteStepsOnTheGpu) {
  REQUIRE_GPU();
  for (const std::string& name : StrategyRegistry::Global().Names()) {
    const StrategyRun r = Train(name, {16, 16, 16, 16, 16, 16});
    ASSERT_TRUE(r.status.ok()) << name << ": " << r.status;
    for (double l : r.losses) EXPECT_TRUE(std::isfinite(l)) << name;
  }
}

}  // namespace
}  // namespace trainlab
