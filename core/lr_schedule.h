// Learning-rate schedules, set per batch: a pure function of the global step (the batch index
// over the whole run, from 0), so a resumed run continues the schedule exactly. The trainer sets
// the rate of every parameter group of any optimizer before each step (SetLearningRate): no
// optimizer plugin knows about schedules.
//
//   constant   lr
//   step       lr x gamma^k, k = the milestones (in epochs) reached: epoch >= milestone
//   cosine     lr x (1 + cos(pi t)) / 2, t from 0 to 1 over the steps after the warm-up
//   onecycle   linear warm-up to lr, then linear decay to 0 at the last step: the shape of
//              airbench and of Myrtle's "How to train your ResNet" (a triangle), not PyTorch's
//              OneCycleLR (cosine annealing, momentum cycling)
// Every kind starts with an optional linear warm-up over `warmup_epochs` (fractional): step s of
// W warm-up steps trains at lr x (s + 1) / W, so the first batch never trains at 0.
//
// Example:
//   absl::StatusOr<LrSchedule> s = LrSchedule::Make({.kind = "cosine", .lr = 0.1,
//       .warmup_epochs = 1, .epochs = 30, .steps_per_epoch = 391});
//   double lr = s->At(step);
#ifndef TRAINLAB_CORE_LR_SCHEDULE_H_
#define TRAINLAB_CORE_LR_SCHEDULE_H_

#include <torch/optim/optimizer.h>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace trainlab {

struct LrScheduleOptions {
  std::string kind = "constant";  // constant | step | cosine | onecycle
  double lr = 0.1;                // the peak (after warm-up) rate
  double warmup_epochs = 0;
  std::vector<double> milestones;  // step: epochs at which the rate is multiplied by gamma
  double gamma = 0.1;
  int64_t epochs = 1;  // the whole run's, for cosine and onecycle
  int64_t steps_per_epoch = 1;
};

class LrSchedule {
 public:
  // Errors name the setting: an unknown kind, a rate <= 0, steps or epochs < 1, a warm-up that
  // is negative or not shorter than the run (onecycle), milestones out of order, gamma <= 0.
  static absl::StatusOr<LrSchedule> Make(LrScheduleOptions o) {
    if (o.kind != "constant" && o.kind != "step" && o.kind != "cosine" && o.kind != "onecycle") {
      return absl::InvalidArgumentError(
          absl::StrCat("--lr_schedule=", o.kind, ": not constant, step, cosine or onecycle"));
    }
    if (!(o.lr > 0) || !std::isfinite(o.lr)) {
      return absl::InvalidArgumentError(absl::StrCat("--lr=", o.lr, ": must be > 0"));
    }
    if (o.epochs < 1 || o.steps_per_epoch < 1) {
      return absl::InvalidArgumentError(absl::StrCat("lr schedule: ", o.epochs, " epochs of ",
                                                     o.steps_per_epoch,
                                                     " steps: both must be >= 1"));
    }
    if (!(o.warmup_epochs >= 0) || !std::isfinite(o.warmup_epochs)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--warmup_epochs=", o.warmup_epochs, ": must be >= 0"));
    }
    if ((o.kind == "cosine" || o.kind == "onecycle") &&
        o.warmup_epochs >= static_cast<double>(o.epochs)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--warmup_epochs=", o.warmup_epochs,
                       ": must be shorter than the run (--epochs=", o.epochs, ")"));
    }
    if (!(o.gamma > 0) || !std::isfinite(o.gamma)) {
      return absl::InvalidArgumentError(absl::StrCat("--lr_gamma=", o.gamma, ": must be > 0"));
    }
    for (size_t i = 0; i < o.milestones.size(); ++i) {
      if (!(o.milestones[i] > 0) || (i > 0 && o.milestones[i] <= o.milestones[i - 1])) {
        return absl::InvalidArgumentError(
            "--lr_milestones: epochs must be > 0 and increasing (e.g. 100,150)");
      }
    }
    return LrSchedule(std::move(o));
  }

  // The rate of global step `step` (0-based).
  double At(int64_t step) const {
    const double s = static_cast<double>(step);
    const double total = static_cast<double>(o_.epochs * o_.steps_per_epoch);
    const double warmup = std::floor(o_.warmup_epochs * static_cast<double>(o_.steps_per_epoch));
    if (s < warmup) return o_.lr * (s + 1) / warmup;
    if (o_.kind == "step") {
      const double epoch = s / static_cast<double>(o_.steps_per_epoch);
      double lr = o_.lr;
      for (double m : o_.milestones) {
        if (epoch >= m) lr *= o_.gamma;
      }
      return lr;
    }
    if (o_.kind == "cosine") {
      const double t = std::min(1.0, (s - warmup) / std::max(1.0, total - warmup));
      return o_.lr * 0.5 * (1 + std::cos(std::numbers::pi * t));
    }
    if (o_.kind == "onecycle") {
      return o_.lr * std::max(0.0, (total - s) / std::max(1.0, total - warmup));
    }
    return o_.lr;
  }

  const LrScheduleOptions& options() const { return o_; }

 private:
  explicit LrSchedule(LrScheduleOptions o) : o_(std::move(o)) {}
  LrScheduleOptions o_;
};

// Sets the rate of every parameter group of `optimizer` (any torch::optim optimizer).
inline void SetLearningRate(torch::optim::Optimizer& optimizer, double lr) {
  for (torch::optim::OptimizerParamGroup& group : optimizer.param_groups()) {
    group.options().set_lr(lr);
  }
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_LR_SCHEDULE_H_
