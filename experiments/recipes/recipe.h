// Training recipes for time_to_accuracy: named sets of settings a run takes unless the user gave
// the flag (or `all --preset` chose it): any flag given wins over the recipe.
//
//   lab    the lab's settings, as the flags' defaults have them: SGD (momentum 0.9, weight decay
//          5e-4) at a constant lr 0.1, batch 128, no label smoothing, no test-time augmentation,
//          eager.
//   fast   chosen for time to accuracy on ResNet-18 (docs/time_to_accuracy.md says where each
//          choice comes from): SGD with Nesterov momentum, batch 512 with the lr scaled linearly
//          (0.1 x 512/128 = 0.4), a one-cycle schedule (linear warm-up over the first fifth of the
//          epochs, then linear decay to zero), label smoothing 0.2, flip test-time augmentation,
//          and the compile strategies that help on the device at hand (CPU: channels_last, plus
//          amp_bf16 where the CPU has native bf16; CUDA: channels_last+amp_bf16+cudnn_autotune).
//
// Example:
//   std::vector<std::string> set;
//   TRAINLAB_ASSIGN_OR_RETURN(RunConfig fast, ApplyRecipe("fast", session.options, base, &set));
#ifndef TRAINLAB_EXPERIMENTS_RECIPES_RECIPE_H_
#define TRAINLAB_EXPERIMENTS_RECIPES_RECIPE_H_

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/harness/options.h"
#include "experiments/harness/run_config.h"

namespace trainlab::experiments {

// The recipes, in the order --help lists them.
const std::vector<std::string>& RecipeNames();

// What the fast recipe runs on a CPU with (`native_bf16`: avx512_bf16 or amx_bf16) or on CUDA.
std::string FastStrategies(bool cuda, bool native_bf16);

// `base` (the session's run on its device) with recipe `name`'s settings, each only where
// `options` did not choose the flag; `set`, when given, receives the flags the recipe set, in
// order. An unknown name is an error naming the recipes; so is a combination the schedule
// refuses (a --warmup_epochs past the epochs given).
absl::StatusOr<RunConfig> ApplyRecipe(const std::string& name, const ExperimentOptions& options,
                                      RunConfig base, std::vector<std::string>* set = nullptr);

// Every setting of a run that decides its result, named as the flags name them (results files).
nlohmann::json RunSettingsJson(const RunConfig& run);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_RECIPES_RECIPE_H_
