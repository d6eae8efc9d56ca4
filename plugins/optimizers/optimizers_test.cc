// Every optimizer plugin against PyTorch's own numbers (optimizer_golden.inc, made by
// tools/golden/make_optimizer_golden.py with Debian's python3-torch), plus registry and
// Adadelta state round-trip checks.
#include <ATen/ATen.h>
#include <torch/serialize.h>
#include <torch/serialize/archive.h>

#include <cstdio>
#include <set>

#include "core/optimizer.h"
#include "gtest/gtest.h"
#include "plugins/optimizers/adadelta.h"

namespace trainlab {
namespace {

#include "plugins/optimizers/optimizer_golden.inc"

at::Tensor FromArray(const double* v, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return at::from_blob(const_cast<double*>(v), {n}, at::kDouble).clone().reshape(shape);
}

std::unique_ptr<torch::optim::Optimizer> Make(const std::string& name,
                                              std::vector<at::Tensor> params) {
  absl::StatusOr<const OptimizerEntry*> entry = OptimizerRegistry::Global().Find(name);
  EXPECT_TRUE(entry.ok()) << entry.status();
  OptimizerSettings lab;  // lr 0.1, weight decay 5e-4, momentum 0.9
  auto opt = (*entry)->make(std::move(params), lab);
  EXPECT_TRUE(opt.ok()) << opt.status();
  return std::move(*opt);
}

class Golden : public testing::TestWithParam<GoldenRun> {};

TEST_P(Golden, MatchesPyTorchStepByStep) {
  const GoldenRun& run = GetParam();
  at::Tensor w = FromArray(kGoldenW0, {3, 2}).set_requires_grad(true);
  at::Tensor b = FromArray(kGoldenB0, {2}).set_requires_grad(true);
  const at::Tensor x = FromArray(kGoldenX, {4, 3});
  const at::Tensor t = FromArray(kGoldenT, {4, 2});
  auto opt = Make(run.name, {w, b});
  for (int step = 0; step < kGoldenSteps; ++step) {
    opt->zero_grad();
    at::Tensor loss = (at::matmul(x, w) + b - t).pow(2).mean();
    loss.backward();
    opt->step();
    const at::Tensor want_w = FromArray(run.w[step], {3, 2});
    const at::Tensor want_b = FromArray(run.b[step], {2});
    // float64 throughout; the only differences are in the order of floating-point operations.
    ASSERT_TRUE(at::allclose(w.detach(), want_w, /*rtol=*/1e-10, /*atol=*/1e-12))
        << run.name << " step " << step + 1 << "\n got " << w << "\n want " << want_w;
    ASSERT_TRUE(at::allclose(b.detach(), want_b, 1e-10, 1e-12)) << run.name << " step " << step + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(AllOptimizers, Golden, testing::ValuesIn(kGoldenRuns),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(OptimizerRegistry, HasEverySevenAndGoldenCoversThemAll) {
  const std::vector<std::string> want = {"adadelta", "adagrad", "adam",        "adamw",
                                         "rmsprop",  "sgd",     "sgd_nesterov"};
  EXPECT_EQ(OptimizerRegistry::Global().Names(), want);
  std::set<std::string> golden;
  for (const GoldenRun& r : kGoldenRuns) golden.insert(r.name);
  EXPECT_EQ(golden, std::set<std::string>(want.begin(), want.end()));
}

TEST(OptimizerRegistry, UnknownNameListsTheKnownOnes) {
  absl::StatusOr<const OptimizerEntry*> e = OptimizerRegistry::Global().Find("lamb");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(),
            "unknown optimizer 'lamb'; known: adadelta, adagrad, adam, adamw, rmsprop, sgd, "
            "sgd_nesterov");
}

TEST(OptimizerRegistry, NesterovWithoutMomentumIsRefused) {
  absl::StatusOr<const OptimizerEntry*> e = OptimizerRegistry::Global().Find("sgd_nesterov");
  ASSERT_TRUE(e.ok());
  OptimizerSettings s;
  s.momentum = 0;
  EXPECT_FALSE((*e)->make({at::zeros({2}, at::kDouble).set_requires_grad(true)}, s).ok());
}

TEST(Adadelta, StateSavesAndLoadsLikeLibTorchsOwn) {
  at::Tensor w = at::tensor({1.0, -2.0, 0.5}, at::kDouble).set_requires_grad(true);
  optim::Adadelta opt({w}, optim::AdadeltaOptions(0.1).weight_decay(5e-4));
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    (w * w).sum().backward();
    opt.step();
  }
  const std::string path = testing::TempDir() + "/adadelta.pt";
  torch::save(opt, path);

  at::Tensor w2 = w.detach().clone().set_requires_grad(true);
  optim::Adadelta restored({w2}, optim::AdadeltaOptions(0.1).weight_decay(5e-4));
  torch::load(restored, path);
  // One more step from the restored state equals one more step of the original.
  for (auto* o : {&opt, &restored}) {
    at::Tensor& p = o == &opt ? w : w2;
    o->zero_grad();
    (p * p).sum().backward();
    o->step();
  }
  EXPECT_TRUE(at::allclose(w.detach(), w2.detach(), 0, 0));
  ASSERT_EQ(restored.state().size(), 1u);
  const auto& st = static_cast<const optim::AdadeltaParamState&>(*restored.state().begin()->second);
  EXPECT_EQ(st.step(), 4);
}

}  // namespace
}  // namespace trainlab
