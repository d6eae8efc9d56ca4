// C8: compile strategies against eager over 10 epochs. For each strategy that can run here:
// every epoch's block, then the lab's table (c8_report.cc): first-epoch time (capture and
// autotuning included), mean epoch time of epochs 6-10, and the speed-up of each over eager
// (wherever eager stands in --strategies; it is added first when missing). Strategies that
// cannot run here are listed as skipped, with the reason; any other error stops c8.
//
//   bazel run //experiments:c8 -- --max_batches_per_epoch=5 --epochs=3
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "experiments/harness/experiment.h"
#include "experiments/training/run.h"
#include "experiments/training/strategies_flag.h"
#include "experiments/training/workers.h"

namespace trainlab::experiments {
namespace {

struct C8Flags {
  std::vector<std::string> strategies;  // eager among them (first when not given)
};

absl::StatusOr<C8Flags> ReadC8Flags(const FlagValues& f) {
  C8Flags c;
  TRAINLAB_ASSIGN_OR_RETURN(c.strategies, ReadStrategiesFlag(f));
  if (std::find(c.strategies.begin(), c.strategies.end(), "eager") == c.strategies.end()) {
    c.strategies.insert(c.strategies.begin(), "eager");
  }
  return c;
}

absl::StatusOr<ExperimentResult> RunC8(Session& session, const C8Flags& flags) {
  const std::vector<std::string>& names = flags.strategies;
  TRAINLAB_ASSIGN_OR_RETURN(const RunConfig base, RunWithChosenWorkers(session));
  ExperimentResult result;
  for (const std::string& name : names) {
    Variant v{.label = name,
              .header = absl::StrCat("Strategy: ", name),
              .config = base,
              .params = {{"strategy", name}}};
    v.config.strategy = name;
    if (absl::StatusOr<StepOptions> o = ResolveStrategies(name, session.device); !o.ok()) {
      if (!IsStrategyCannotRun(o.status())) return o.status();
      result.variants.push_back(SkippedVariant(v, std::string(o.status().message())));
      continue;
    }
    // e.g. cuda_graph refusing a non-capturable optimizer: that strategy is skipped, not c8.
    TRAINLAB_ASSIGN_OR_RETURN(VariantResult r, RunVariant(session, v, /*can_skip=*/true));
    result.variants.push_back(std::move(r));
  }
  result.summary = {{"num_workers", base.num_workers}};
  return result;
}

const bool kRegistered = RegisterExperiment<C8Flags>(
    "c8",
    {.usage = "c8: compile strategies against eager (C8), 10 epochs: first-epoch time, mean of "
              "epochs\n"
              "6-10 and the speed-ups; strategies that cannot run here are listed with the "
              "reason.",
     .flags = {"strategies"},
     .defaults = {{"epochs", "10"}},
     // `all --preset=quick`: short epochs, and on a CPU only the strategies that can help
     // there (amp_bf16 without native bf16 is ~30x slower; the CUDA ones cannot run).
     .presets = {{"quick",
                  {{"max_batches_per_epoch", "4"},
                   {"strategies", "eager,channels_last", /*cpu_only=*/true}}}}},
    ReadC8Flags, RunC8);

}  // namespace
}  // namespace trainlab::experiments
