#include "experiments/recipes/recipe.h"

#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/host.h"
#include "core/lr_schedule.h"
#include "core/status_macros.h"

namespace trainlab::experiments {
namespace {

// The fast recipe's figures (docs/time_to_accuracy.md: where each comes from).
constexpr int64_t kFastBatch = 512;
constexpr double kLabLr = 0.1, kLabBatch = 128;  // the lab's rate, and the batch it is for
constexpr double kFastWarmupDivisor = 5;         // a fifth of the epochs (3 / 5 = 0.6, not 0.2 x 3)
constexpr double kFastLabelSmoothing = 0.2;

}  // namespace

const std::vector<std::string>& RecipeNames() {
  static const auto* names = new std::vector<std::string>{"lab", "fast"};
  return *names;
}

std::string FastStrategies(bool cuda, bool native_bf16) {
  if (cuda) return "channels_last+amp_bf16+cudnn_autotune";
  // Without native bf16, amp_bf16 is many times slower on a CPU (docs/profile.md); there the
  // float32 step is 9-26% faster with conv_autotune (docs/measurements.md, docs/profile.md: AVX2
  // EPYC). With native bf16 (AMX), conv_autotune takes the bf16 step from 1.70 to 1.12 s and
  // fused_bn_relu to 1.07 s (tools/lab/side_by_side.sh, docs/measurements.md: 0.61x PyTorch
  // 2.15's best there); fused_bn_relu is not measured on the AVX2 CPU: left out there.
  return native_bf16 ? "channels_last+amp_bf16+conv_autotune+fused_bn_relu"
                     : "channels_last+conv_autotune";
}

absl::StatusOr<RunConfig> ApplyRecipe(const std::string& name, const ExperimentOptions& options,
                                      RunConfig run, std::vector<std::string>* set) {
  std::vector<std::string> applied;
  auto unless_chosen = [&](const char* flag, const std::function<void()>& apply) {
    if (options.IsChosen(flag)) return;
    apply();
    applied.push_back(flag);
  };
  if (name == "lab") {
    // The lab's settings are the flags' defaults: nothing to change.
  } else if (name == "fast") {
    unless_chosen("optimizer", [&] { run.optimizer = "sgd_nesterov"; });
    unless_chosen("batch_size", [&] { run.batch_size = kFastBatch; });
    // Linear scaling (Goyal et al. 2017), from whatever batch the run ends up with.
    unless_chosen("lr", [&] {
      run.optimizer_settings.lr = kLabLr * static_cast<double>(run.batch_size) / kLabBatch;
    });
    unless_chosen("lr_schedule", [&] { run.lr_schedule = "onecycle"; });
    unless_chosen("warmup_epochs", [&] { run.warmup_epochs = run.epochs / kFastWarmupDivisor; });
    unless_chosen("label_smoothing", [&] { run.label_smoothing = kFastLabelSmoothing; });
    unless_chosen("tta", [&] { run.tta_flip = true; });
    unless_chosen("strategy", [&] {
      run.strategy =
          FastStrategies(run.device.is_cuda(), CpuHasFlag("avx512_bf16") || CpuHasFlag("amx_bf16"));
    });
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--recipe: unknown recipe '", name, "' (known: ", absl::StrJoin(RecipeNames(), ", "), ")"));
  }
  if (absl::Status st = LrSchedule::Make(ScheduleOptions(run, 1)).status(); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--recipe=", name, ": ", st.message()));
  }
  if (set != nullptr) *set = std::move(applied);
  return run;
}

nlohmann::json RunSettingsJson(const RunConfig& run) {
  return {{"optimizer", run.optimizer},
          {"lr", run.optimizer_settings.lr},
          {"weight_decay", run.optimizer_settings.weight_decay},
          {"momentum", run.optimizer_settings.momentum},
          {"lr_schedule", run.lr_schedule},
          {"warmup_epochs", run.warmup_epochs},
          {"lr_milestones", run.lr_milestones},
          {"lr_gamma", run.lr_gamma},
          {"label_smoothing", run.label_smoothing},
          {"tta", run.tta_flip ? "flip" : "none"},
          {"target_accuracy", run.target_accuracy},
          {"strategy", run.strategy},
          {"epochs", run.epochs},
          {"batch_size", run.batch_size},
          {"max_batches_per_epoch", run.max_batches_per_epoch},
          {"num_workers", run.num_workers},
          {"seed", run.seed},
          {"model", run.model},
          {"device", run.device.str()},
          {"evaluate", run.evaluate}};
}

}  // namespace trainlab::experiments
