// trainlab's ResNet-18, loss and optimizers against PyTorch's own, seed for seed
// (tests/testdata/golden/training_golden.json, from tools/golden/make_training_golden.py with
// Debian's python3-torch 1.13.1, one intra-op thread). With the same seed:
//   - the initial weights are the same bits (CRC-32 of every parameter's float32 bytes);
//   - the first steps' losses, the first step's per-parameter gradient norms and the BatchNorm
//     running statistics after it agree to float32 rounding;
//   - later steps drift apart only as fast as rounding differences grow, which the test prints
//     and bounds (see kExactSteps).
// Each case runs at the generator's one thread and at two: on the machine that made the file
// (the same libtorch_cpu.so as Python's), one thread gave the same bits for all 8 steps of all
// four runs; two threads split the reductions differently (docs/reproducibility.md has the
// numbers).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/version.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>

#include "core/model.h"
#include "core/optimizer.h"

namespace trainlab {
namespace {

using nlohmann::json;

// Steps whose loss must match to float32 rounding. With batch norm and SGD at the lab's lr 0.1
// on one small batch, training is chaotic from step 4 (PyTorch's own loss goes 1.6, 2.8, 12.1):
// a 2e-7 rounding difference at step 3 (two threads against one) became 1e-4 at step 4 and
// 1.7e-2 at step 7, so later steps are compared loosely: still the same trajectory (a wrong
// model, seed or update misses by far more), not the same digits.
constexpr int kExactSteps = 3;
// Against another LibTorch than the golden file's (the CUDA wheel's 2.x against PyTorch 1.13),
// the CPU kernels themselves differ (another oneDNN): measured 8.3e-5 at step 3 of the chaotic
// run with torch 2.11, so only the first two steps are held to kRtol there.
constexpr int kExactStepsOtherTorch = 2;
// Relative tolerance for those: float32 rounds at 6e-8 relative per operation, and a ResNet-18
// forward and backward sums thousands of products per output, so the same math in another
// summation order (another thread split, another oneDNN kernel on another CPU) differs by up to
// ~1e-6; measured: at most 4e-7 in the first three steps.
constexpr double kRtol = 2e-5;
// Later steps: the chaotic run (batch norm + SGD) within 50%, the others within 1%.
constexpr double kLaterRtolChaotic = 0.5;
constexpr double kLaterRtol = 1e-2;

uint32_t Crc(const at::Tensor& t) {
  const at::Tensor c = t.detach().contiguous();
  return static_cast<uint32_t>(crc32(0L, static_cast<const Bytef*>(c.data_ptr()),
                                     static_cast<uInt>(c.numel() * c.element_size())));
}

double Norm(const at::Tensor& t) { return t.detach().to(at::kDouble).norm().item<double>(); }

bool Near(double got, double want, double rtol) {
  return std::abs(got - want) <= rtol * std::max(1.0, std::abs(want));
}

// The generator's batch: x.flat[i] = ((37 i + 11) mod 101) / 50 - 1, label[b] = (3b + 1) mod 10.
std::pair<at::Tensor, at::Tensor> Batch(int64_t n) {
  const at::Tensor i = at::arange(n * 3 * 32 * 32, at::kLong);
  const at::Tensor x = ((i * 37 + 11).remainder(101).to(at::kDouble) / 50.0 - 1.0)
                           .to(at::kFloat)
                           .reshape({n, 3, 32, 32});
  const at::Tensor y = (at::arange(n, at::kLong) * 3 + 1).remainder(10);
  return {x, y};
}

// (index of the golden run, intra-op threads)
class TrainingGolden : public ::testing::TestWithParam<std::tuple<int, int>> {
 protected:
  static void SetUpTestSuite() {
    std::ifstream in("tests/testdata/golden/training_golden.json");
    ASSERT_TRUE(in) << "golden file missing";
    golden_ = new json(json::parse(in));
  }
  static const json& golden() { return *golden_; }
  static json* golden_;
};
json* TrainingGolden::golden_ = nullptr;

TEST_P(TrainingGolden, MatchesPyTorchSeedForSeed) {
  const json& g = golden();
  const auto [index, threads] = GetParam();
  const json& run = g["runs"][index];
  const bool bn = run["batch_norm"];
  const std::string opt_name = run["optimizer"];
  SCOPED_TRACE(std::string(bn ? "resnet18" : "resnet18_no_bn") + " + " + opt_name + ", " +
               std::to_string(threads) + " thread(s)");
  at::set_num_threads(threads);

  torch::manual_seed(g["seed"].get<uint64_t>());
  absl::StatusOr<std::shared_ptr<ClassifierImpl>> made =
      MakeModel(bn ? "resnet18" : "resnet18_no_bn", {});
  ASSERT_TRUE(made.ok()) << made.status();
  ClassifierImpl& model = **made;

  // Initial weights: same names in the same order, same bits.
  const auto params = model.named_parameters();
  ASSERT_EQ(params.size(), run["init"].size());
  for (size_t k = 0; k < params.size(); ++k) {
    const json& want = run["init"][k];
    ASSERT_EQ(params[k].key(), want["name"].get<std::string>());
    EXPECT_EQ(Crc(params[k].value()), want["crc32"].get<uint32_t>()) << params[k].key();
  }

  absl::StatusOr<const OptimizerEntry*> entry = OptimizerRegistry::Global().Find(opt_name);
  ASSERT_TRUE(entry.ok());
  OptimizerSettings settings;  // the lab's
  ASSERT_EQ(settings.lr, g["lr"].get<double>());
  ASSERT_EQ(settings.weight_decay, g["weight_decay"].get<double>());
  ASSERT_EQ(settings.momentum, g["momentum"].get<double>());
  auto opt = (*entry)->make(model.parameters(), settings);
  ASSERT_TRUE(opt.ok());

  const auto [x, y] = Batch(g["batch"].get<int64_t>());
  model.train();
  const int steps = g["steps"];
  // "1.13.0a0" and TORCH_VERSION "1.13.1": the same major.minor, the same kernels.
  const std::string golden_torch = g["torch"];
  const std::string ours =
      std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + ".";
  const int exact_steps = golden_torch.rfind(ours, 0) == 0 ? kExactSteps : kExactStepsOtherTorch;
  if (exact_steps != kExactSteps) {
    std::printf("LibTorch %s against golden values from PyTorch %s: %d exact steps\n",
                TORCH_VERSION, golden_torch.c_str(), exact_steps);
  }
  for (int step = 0; step < steps; ++step) {
    (*opt)->zero_grad();
    at::Tensor loss = torch::nn::functional::cross_entropy(model.forward(x), y);
    loss.backward();
    if (step == 0) {
      for (size_t k = 0; k < params.size(); ++k) {
        const double want = run["grad_norm"][k]["norm"];
        const double got = Norm(params[k].value().grad());
        EXPECT_TRUE(Near(got, want, kRtol)) << params[k].key() << ": " << got << " vs " << want;
      }
    }
    (*opt)->step();
    if (step == 0) {
      std::map<std::string, at::Tensor> buffers;
      for (const auto& b : model.named_buffers()) buffers[b.key()] = b.value();
      size_t checked = 0;
      for (const json& want : run["buffers"]) {
        const std::string name = want["name"];
        ASSERT_TRUE(buffers.count(name)) << name;
        const at::Tensor b = buffers[name].to(at::kDouble);
        EXPECT_TRUE(Near(b.sum().item<double>(), want["sum"], kRtol)) << name;
        EXPECT_TRUE(Near(b.norm().item<double>(), want["norm"], kRtol)) << name;
        ++checked;
      }
      EXPECT_EQ(checked, bn ? 40u : 0u);  // 20 BatchNorms x running mean, running var
    }
    const double want = run["loss"][step], got = loss.item<double>();
    const double rel = std::abs(got - want) / std::abs(want);
    std::printf("%s %s, %d thread(s), step %d: loss %.7f, PyTorch %.7f, relative difference %.1e\n",
                bn ? "bn" : "no_bn", opt_name.c_str(), threads, step + 1, got, want, rel);
    if (step < exact_steps) {
      EXPECT_TRUE(Near(got, want, kRtol)) << "step " << step + 1;
    } else {
      // Later steps: still the same trajectory, not a different one.
      EXPECT_LT(rel, bn && opt_name == "sgd" ? kLaterRtolChaotic : kLaterRtol)
          << "step " << step + 1;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BatchNormOptimizerThreads, TrainingGolden,
                         ::testing::Combine(::testing::Range(0, 4), ::testing::Values(1, 2)));

}  // namespace
}  // namespace trainlab
