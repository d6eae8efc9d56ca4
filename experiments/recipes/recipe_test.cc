// The recipes of time_to_accuracy: what `fast` sets, that any flag given (or chosen by
// `all --preset`) wins over it, that the lr follows the batch the run ends up with, and that a
// bad recipe or combination is one error naming it.
#include "experiments/recipes/recipe.h"

#include <gflags/gflags.h>
#include <gtest/gtest.h>

#include "core/host.h"

namespace trainlab::experiments {
namespace {

// time_to_accuracy's flags, as its FlagSpec has them (without linking the experiment).
FlagSpec Spec() { return {.usage = "test", .defaults = {{"epochs", "20"}}}; }

ExperimentOptions Options(const std::vector<FlagDefault>& driver_preset = {}) {
  absl::StatusOr<ExperimentOptions> o = OptionsFor(
      FlagValues::Current(FlagsTaken(Spec())), "time_to_accuracy", Spec(), "quick", driver_preset,
      /*on_cpu=*/true, {});
  EXPECT_TRUE(o.ok()) << o.status();
  return *o;
}

class Recipe : public ::testing::Test {
 protected:
  gflags::FlagSaver saver_;  // each test's SetCommandLineOption undone after it
};

TEST_F(Recipe, LabChangesNothing) {
  const ExperimentOptions o = Options();
  std::vector<std::string> set = {"stale"};
  absl::StatusOr<RunConfig> lab = ApplyRecipe("lab", o, o.run, &set);
  ASSERT_TRUE(lab.ok()) << lab.status();
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(RunSettingsJson(*lab), RunSettingsJson(o.run));
  EXPECT_EQ(lab->optimizer, "sgd");
  EXPECT_EQ(lab->lr_schedule, "constant");
}

TEST_F(Recipe, FastSetsEveryLever) {
  const ExperimentOptions o = Options();
  std::vector<std::string> set;
  absl::StatusOr<RunConfig> fast = ApplyRecipe("fast", o, o.run, &set);
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_EQ(set, (std::vector<std::string>{"optimizer", "batch_size", "lr", "lr_schedule",
                                           "warmup_epochs", "label_smoothing", "tta", "strategy"}));
  EXPECT_EQ(fast->optimizer, "sgd_nesterov");
  EXPECT_EQ(fast->batch_size, 512);
  EXPECT_DOUBLE_EQ(fast->optimizer_settings.lr, 0.4);  // 0.1 x 512 / 128
  EXPECT_EQ(fast->lr_schedule, "onecycle");
  EXPECT_DOUBLE_EQ(fast->warmup_epochs, 4.0);  // a fifth of the spec's 20 epochs
  EXPECT_DOUBLE_EQ(fast->label_smoothing, 0.2);
  EXPECT_TRUE(fast->tta_flip);
  EXPECT_EQ(fast->strategy,
            FastStrategies(/*cuda=*/false, CpuHasFlag("avx512_bf16") || CpuHasFlag("amx_bf16")));
  // What the results record is what it trains with.
  const nlohmann::json settings = RunSettingsJson(*fast);
  EXPECT_EQ(settings["optimizer"], "sgd_nesterov");
  EXPECT_EQ(settings["tta"], "flip");
  EXPECT_EQ(settings["batch_size"], 512);
}

TEST_F(Recipe, StrategiesFollowTheDevice) {
  EXPECT_EQ(FastStrategies(/*cuda=*/true, false), "channels_last+amp_bf16+cudnn_autotune");
  EXPECT_EQ(FastStrategies(false, /*native_bf16=*/true),
            "channels_last+amp_bf16+conv_autotune+fused_bn_relu");
  // amp_bf16 is slower without bf16; conv_autotune is faster in float32.
  EXPECT_EQ(FastStrategies(false, false), "channels_last+conv_autotune");
}

TEST_F(Recipe, AFlagGivenWinsAndTheLrFollowsTheBatch) {
  gflags::SetCommandLineOption("batch_size", "256");
  gflags::SetCommandLineOption("label_smoothing", "0");
  gflags::SetCommandLineOption("epochs", "5");
  const ExperimentOptions o = Options();
  std::vector<std::string> set;
  absl::StatusOr<RunConfig> fast = ApplyRecipe("fast", o, o.run, &set);
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_EQ(fast->batch_size, 256);
  EXPECT_DOUBLE_EQ(fast->optimizer_settings.lr, 0.2);  // scaled from the batch given
  EXPECT_DOUBLE_EQ(fast->label_smoothing, 0.0);        // given as the default value: still given
  EXPECT_DOUBLE_EQ(fast->warmup_epochs, 1.0);          // a fifth of the epochs given
  EXPECT_EQ(std::count(set.begin(), set.end(), "batch_size"), 0);
  EXPECT_EQ(std::count(set.begin(), set.end(), "label_smoothing"), 0);

  gflags::SetCommandLineOption("lr", "0.05");
  const ExperimentOptions given_lr = Options();
  fast = ApplyRecipe("fast", given_lr, given_lr.run);
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_DOUBLE_EQ(fast->optimizer_settings.lr, 0.05);
}

TEST_F(Recipe, AProfilesChoiceWinsButNotAnExperimentsDefault) {
  // `all --preset=quick` chose batch 32: the fast recipe keeps it and scales the lr from it;
  // the spec's default epochs (20) is no choice of the user's, and the recipe's warm-up follows.
  const ExperimentOptions o = Options({{"batch_size", "32"}, {"max_batches_per_epoch", "10"}});
  EXPECT_TRUE(o.IsChosen("batch_size"));
  EXPECT_FALSE(o.IsGiven("batch_size"));
  EXPECT_FALSE(o.IsChosen("epochs"));
  absl::StatusOr<RunConfig> fast = ApplyRecipe("fast", o, o.run);
  ASSERT_TRUE(fast.ok()) << fast.status();
  EXPECT_EQ(fast->batch_size, 32);
  EXPECT_DOUBLE_EQ(fast->optimizer_settings.lr, 0.025);
  EXPECT_EQ(fast->max_batches_per_epoch, 10);
}

TEST_F(Recipe, AnUnknownRecipeIsOneErrorNamingTheKnownOnes) {
  const ExperimentOptions o = Options();
  absl::StatusOr<RunConfig> r = ApplyRecipe("slow", o, o.run);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "--recipe: unknown recipe 'slow' (known: lab, fast)");
}

TEST_F(Recipe, AWarmUpPastTheEpochsIsRefusedByName) {
  gflags::SetCommandLineOption("warmup_epochs", "30");  // past the 20 epochs
  absl::StatusOr<ExperimentOptions> o =
      OptionsFor(FlagValues::Current(FlagsTaken(Spec())), "time_to_accuracy", Spec(), "quick", {},
                 /*on_cpu=*/true, {});
  if (!o.ok()) {  // the flags' own check refused it first: also one line naming the flag
    EXPECT_NE(o.status().message().find("warmup_epochs"), std::string::npos) << o.status();
    return;
  }
  absl::StatusOr<RunConfig> r = ApplyRecipe("fast", *o, o->run);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--recipe=fast"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace trainlab::experiments
