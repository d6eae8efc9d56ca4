// The schedules at their boundaries, against the formulas in lr_schedule.h worked out by hand,
// and the rate really set on an optimizer's parameter groups.
#include "core/lr_schedule.h"

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <cmath>
#include <numbers>

#include "gtest/gtest.h"

namespace trainlab {
namespace {

LrSchedule Make(LrScheduleOptions o) {
  absl::StatusOr<LrSchedule> s = LrSchedule::Make(std::move(o));
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

TEST(LrSchedule, ConstantIsTheRateEverywhere) {
  const LrSchedule s = Make({.kind = "constant", .lr = 0.1, .epochs = 3, .steps_per_epoch = 4});
  for (int64_t step : {0, 5, 11, 100}) EXPECT_EQ(s.At(step), 0.1);
}

TEST(LrSchedule, WarmupIsLinearAndNeverZero) {
  // 0.5 epochs of 10 steps: 5 warm-up steps at 0.1 x 1/5 ... 5/5, then the schedule.
  const LrSchedule s = Make(
      {.kind = "constant", .lr = 0.1, .warmup_epochs = 0.5, .epochs = 2, .steps_per_epoch = 10});
  EXPECT_DOUBLE_EQ(s.At(0), 0.02);
  EXPECT_DOUBLE_EQ(s.At(3), 0.08);
  EXPECT_DOUBLE_EQ(s.At(4), 0.1);
  EXPECT_DOUBLE_EQ(s.At(5), 0.1);
}

TEST(LrSchedule, StepMultipliesByGammaFromEachMilestone) {
  const LrSchedule s = Make({.kind = "step",
                             .lr = 0.1,
                             .milestones = {2, 3},
                             .gamma = 0.5,
                             .epochs = 4,
                             .steps_per_epoch = 10});
  EXPECT_DOUBLE_EQ(s.At(19), 0.1);   // last step of epoch 2 (0-based epoch 1)
  EXPECT_DOUBLE_EQ(s.At(20), 0.05);  // first step at epoch 2.0
  EXPECT_DOUBLE_EQ(s.At(29), 0.05);
  EXPECT_DOUBLE_EQ(s.At(30), 0.025);
}

TEST(LrSchedule, CosineFromThePeakToZero) {
  // 2 warm-up steps of 12: the cosine runs over steps 2..12 (t = (s - 2) / 10).
  const LrSchedule s =
      Make({.kind = "cosine", .lr = 0.2, .warmup_epochs = 0.5, .epochs = 3, .steps_per_epoch = 4});
  EXPECT_DOUBLE_EQ(s.At(1), 0.2);    // the warm-up's last step reaches the peak
  EXPECT_DOUBLE_EQ(s.At(2), 0.2);    // t = 0
  EXPECT_NEAR(s.At(7), 0.1, 1e-15);  // t = 0.5: half
  EXPECT_DOUBLE_EQ(s.At(11), 0.2 * 0.5 * (1 + std::cos(std::numbers::pi * 0.9)));
  EXPECT_NEAR(s.At(12), 0, 1e-15);  // past the run: 0
}

TEST(LrSchedule, OneCycleRisesThenFallsLinearlyToZero) {
  // 4 warm-up steps, 20 in all: up 0.25, 0.5, 0.75, 1 x lr, then (20 - s) / 16 x lr.
  const LrSchedule s =
      Make({.kind = "onecycle", .lr = 0.4, .warmup_epochs = 1, .epochs = 5, .steps_per_epoch = 4});
  EXPECT_DOUBLE_EQ(s.At(0), 0.1);
  EXPECT_DOUBLE_EQ(s.At(3), 0.4);
  EXPECT_DOUBLE_EQ(s.At(4), 0.4);
  EXPECT_DOUBLE_EQ(s.At(12), 0.4 * 8 / 16);
  EXPECT_DOUBLE_EQ(s.At(19), 0.4 / 16);  // the last step
  EXPECT_DOUBLE_EQ(s.At(20), 0);
}

TEST(LrSchedule, BadSettingsAreNamed) {
  auto error = [](LrScheduleOptions o) {
    absl::StatusOr<LrSchedule> s = LrSchedule::Make(std::move(o));
    return s.ok() ? std::string("ok") : std::string(s.status().message());
  };
  EXPECT_EQ(error({.kind = "linear"}),
            "--lr_schedule=linear: not constant, step, cosine or onecycle");
  EXPECT_EQ(error({.lr = 0}), "--lr=0: must be > 0");
  EXPECT_EQ(error({.warmup_epochs = -1}), "--warmup_epochs=-1: must be >= 0");
  EXPECT_EQ(error({.kind = "onecycle", .warmup_epochs = 5, .epochs = 5}),
            "--warmup_epochs=5: must be shorter than the run (--epochs=5)");
  EXPECT_EQ(error({.kind = "step", .milestones = {3, 2}}),
            "--lr_milestones: epochs must be > 0 and increasing (e.g. 100,150)");
  EXPECT_EQ(error({.gamma = 0}), "--lr_gamma=0: must be > 0");
}

TEST(LrSchedule, SetsEveryGroupOfAnyOptimizer) {
  torch::Tensor a = torch::zeros({2}, torch::requires_grad()),
                b = torch::zeros({3}, torch::requires_grad());
  torch::optim::SGD sgd(
      {torch::optim::OptimizerParamGroup({a}), torch::optim::OptimizerParamGroup({b})},
      torch::optim::SGDOptions(0.1));
  SetLearningRate(sgd, 0.025);
  for (auto& g : sgd.param_groups()) EXPECT_EQ(g.options().get_lr(), 0.025);
  torch::optim::Adam adam({a}, torch::optim::AdamOptions(1e-3));
  SetLearningRate(adam, 0.5);
  EXPECT_EQ(adam.param_groups()[0].options().get_lr(), 0.5);
}

}  // namespace
}  // namespace trainlab
