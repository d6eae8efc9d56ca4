// time_to_accuracy: how fast each training recipe (experiments/recipes/recipe.h: lab, fast) reaches
// --target_accuracy test top-1, --repeats times each: the wall time to the target (evaluations
// included) and the training time alone, the epochs it took, and the final test top-1; the
// section (time_to_accuracy_report.cc) adds test top-1 against wall time per recipe. Every
// epoch is evaluated (the target is a test accuracy); a run stops at the first epoch that
// reaches the target. Any flag given wins over the recipe; every setting of each recipe's run
// is in the results file (its variant's params).
//
//   bazel run //experiments:time_to_accuracy -- --target_accuracy=94            # a GPU's bar
//   bazel run //experiments:time_to_accuracy -- --dataset=fashion_mnist --epochs=2
//       --target_accuracy=90 --recipe=fast                  # a CPU's hour (one command line)
#include <cstdio>
#include <memory>

#include <gflags/gflags.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "experiments/harness/experiment.h"
#include "experiments/recipes/recipe.h"
#include "experiments/training/run.h"
#include "experiments/training/workers.h"
#include "plugins/data/dataset.h"

DEFINE_string(recipe, "lab,fast",
              "Recipes to train to --target_accuracy, in order: lab (the lab's settings), fast.");
DEFINE_int64(test_images, 0,
             "Evaluate on the first N test images (0: all); --preset=quick's shortcut.");

namespace trainlab::experiments {
namespace {

struct TimeToAccuracyFlags {
  std::vector<std::string> recipes;  // each in RecipeNames()
  int64_t test_images = 0;           // evaluate on the first N (0: all)
};

absl::StatusOr<TimeToAccuracyFlags> ReadTimeToAccuracyFlags(const FlagValues& f) {
  TimeToAccuracyFlags t;
  TRAINLAB_ASSIGN_OR_RETURN(t.recipes, f.List("recipe"));
  TRAINLAB_ASSIGN_OR_RETURN(
      t.test_images,
      f.IntIn("test_images", 0, std::numeric_limits<int64_t>::max(), "must be >= 0 (0 = all)"));
  return t;
}

// "--optimizer=sgd_nesterov --batch_size=512 ...": what a recipe set, as flags would say it
// (RunSettingsJson names each setting as its flag).
std::string RecipeLine(const std::vector<std::string>& set, const nlohmann::json& settings) {
  std::vector<std::string> parts;
  for (const std::string& flag : set) {
    const nlohmann::json& value = settings.at(flag);
    parts.push_back(
        absl::StrCat("--", flag, "=", value.is_string() ? value.get<std::string>() : value.dump()));
  }
  return parts.empty() ? "nothing (the flags' defaults, and those given)"
                       : absl::StrJoin(parts, " ");
}

absl::StatusOr<ExperimentResult> RunTimeToAccuracy(Session& session,
                                                   const TimeToAccuracyFlags& flags) {
  const ExperimentOptions& options = session.options;
  if (options.run.target_accuracy <= 0) {
    return absl::InvalidArgumentError(
        "--target_accuracy: time_to_accuracy needs a target test top-1 % above 0");
  }
  TRAINLAB_ASSIGN_OR_RETURN(const RunConfig base, RunWithChosenWorkers(session));
  std::vector<std::pair<RunConfig, std::vector<std::string>>> runs;
  for (const std::string& name : flags.recipes) {  // every recipe known before any trains
    std::vector<std::string> set;
    TRAINLAB_ASSIGN_OR_RETURN(RunConfig run, ApplyRecipe(name, options, base, &set));
    runs.emplace_back(std::move(run), std::move(set));
  }
  if (flags.test_images > 0 && flags.test_images < session.test->size) {
    const int64_t all = session.test->size;
    session.test = std::make_shared<const data::ImageDataset>(
        data::FirstImages(*session.test, flags.test_images));
    std::printf("- Test set: the first %lld of %lld images (--test_images)\n",
                static_cast<long long>(session.test->size), static_cast<long long>(all));
  }
  ExperimentResult result;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string& name = flags.recipes[i];
    const auto& [run, set] = runs[i];
    const nlohmann::json settings = RunSettingsJson(run);
    Variant v{.label = name,
              .header = absl::StrCat("Recipe: ", name),
              .config = run,
              .params = {{"recipe", name}, {"settings", settings}, {"recipe_set", set}}};
    if (absl::StatusOr<StepOptions> o = ResolveStrategies(run.strategy, session.device); !o.ok()) {
      if (!IsStrategyCannotRun(o.status())) return o.status();
      result.variants.push_back(SkippedVariant(v, std::string(o.status().message())));
      continue;
    }
    std::printf("Recipe %s sets: %s\n", name.c_str(), RecipeLine(set, settings).c_str());
    TRAINLAB_ASSIGN_OR_RETURN(VariantResult r, RunVariant(session, v, /*can_skip=*/true));
    result.variants.push_back(std::move(r));
  }
  return result;
}

const bool kRegistered = RegisterExperiment<TimeToAccuracyFlags>(
    "time_to_accuracy",
    {.usage = "time_to_accuracy: each --recipe (lab, fast) trained to --target_accuracy "
              "test top-1: time to target\n"
              "(wall and training alone), epochs, final top-1; any flag given wins over "
              "the recipe.",
     .flags = {"recipe", "test_images"},
     .defaults = {{"epochs", "20"}, {"target_accuracy", "94"}},
     // `all --preset=quick`: 3 short epochs, evaluated on 1,000 test images (a full
     // flip evaluation of 10,000 takes minutes on 2 cores), to a target they can reach.
     .presets = {{"quick", {{"epochs", "3"}, {"target_accuracy", "60"}, {"test_images", "1000"}}}}},
    ReadTimeToAccuracyFlags, RunTimeToAccuracy);

}  // namespace
}  // namespace trainlab::experiments
