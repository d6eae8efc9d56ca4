// The compile-strategy registry: plugins under plugins/compile/ register how they change a step.
//
// A strategy edits StepOptions (step.h) and says whether it can run on a device. Strategies
// combine with '+': "cuda_graph+channels_last+amp_bf16" applies each in order.
//
// Example:
//   absl::StatusOr<StepOptions> o = ResolveStrategies("channels_last+amp_bf16", torch::kCPU);
#ifndef TRAINLAB_CORE_STRATEGY_H_
#define TRAINLAB_CORE_STRATEGY_H_

#include <c10/core/Device.h>

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/registry.h"
#include "core/step.h"

namespace trainlab {

struct StrategyEntry {
  static constexpr std::string_view kKind = "strategy";

  std::string description;
  // OkStatus when the strategy can run on `device`, else why not ("cuda_graph needs a CUDA
  // device"). Null means it runs anywhere.
  std::function<absl::Status(const c10::Device& device)> can_run;
  // Turns the strategy's knobs on.
  std::function<void(StepOptions& options)> apply;
};

using StrategyRegistry = Registry<StrategyEntry>;

// Parses "a+b+c", checks each strategy can run on `device`, and applies them in order.
inline absl::StatusOr<StepOptions> ResolveStrategies(std::string_view spec,
                                                     const c10::Device& device) {
  StepOptions options;
  // Debian's Abseil has its own string_view type: split a std::string, compare std::strings.
  const std::string whole(spec);
  for (const std::string& name : std::vector<std::string>(absl::StrSplit(whole, '+'))) {
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("empty strategy name in '", whole, "'"));
    }
    if (std::find(options.names.begin(), options.names.end(), name) != options.names.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("strategy '", name, "' given twice in '", whole, "'"));
    }
    absl::StatusOr<const StrategyEntry*> entry = StrategyRegistry::Global().Find(name);
    if (!entry.ok()) return entry.status();
    if ((*entry)->can_run) {
      if (absl::Status s = (*entry)->can_run(device); !s.ok()) return StrategyCannotRun(s);
    }
    if ((*entry)->apply) (*entry)->apply(options);
    options.names.push_back(name);
  }
  return options;
}

// Every part of every name of `specs` ("a+b") is a registered strategy: an unknown name is a
// typo, an error naming it and the strategies this binary knows, not a strategy skipped here.
inline absl::Status CheckStrategyNames(const std::vector<std::string>& specs) {
  for (const std::string& spec : specs) {
    for (const std::string& part : std::vector<std::string>(absl::StrSplit(spec, '+'))) {
      if (absl::Status s = StrategyRegistry::Global().Find(part).status(); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_STRATEGY_H_
