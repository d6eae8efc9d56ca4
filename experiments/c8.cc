// C8: compile strategies against eager over 10 epochs. For each strategy that can run here:
// every epoch's block, then the lab's table: first-epoch time (capture and autotuning
// included), mean epoch time of epochs 6-10, and the speed-up of each over eager (wherever
// eager stands in --strategies; it is added first when missing). Strategies that cannot run
// here are listed as skipped, with the reason.
//
//   bazel run //experiments:c8 -- --max_batches_per_epoch=5 --epochs=3
#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "experiments/experiment.h"

namespace trainlab::experiments {
namespace {

// The lab's steady state is epochs 6-10; shorter runs use what they have after the first.
int FirstSteadyEpoch(int epochs) { return epochs >= 6 ? 6 : std::min(2, epochs); }

double SteadyMean(const RunResult& r, int first_steady) {
  double sum = 0;
  int n = 0;
  for (const EpochStats& e : r.epochs) {
    if (e.epoch >= first_steady) {
      sum += e.epoch_s;
      ++n;
    }
  }
  return n ? sum / n : 0.0;
}

double FirstEpoch(const RunResult& r) { return r.epochs.empty() ? 0 : r.epochs.front().epoch_s; }

absl::StatusOr<ExperimentResult> RunC8(Session& session) {
  std::vector<std::string> names = session.config.strategies;
  if (std::find(names.begin(), names.end(), "eager") == names.end())
    names.insert(names.begin(), "eager");
  for (const std::string& name : names) {  // a typo is an error, not a strategy skipped here
    for (const std::string& part : std::vector<std::string>(absl::StrSplit(name, '+'))) {
      TRAINLAB_RETURN_IF_ERROR(StrategyRegistry::Global().Find(part).status());
    }
  }
  TRAINLAB_ASSIGN_OR_RETURN(const RunConfig base, RunWithChosenWorkers(session));
  ExperimentResult result;
  for (const std::string& name : names) {
    Variant v{.label = name,
              .header = absl::StrCat("Strategy: ", name),
              .config = base,
              .params = {{"strategy", name}}};
    v.config.strategy = name;
    if (absl::StatusOr<StepOptions> o = ResolveStrategies(name, session.device); !o.ok()) {
      result.configs.push_back({.label = name,
                                .config = v.config,
                                .params = v.params,
                                .skipped = std::string(o.status().message())});
      continue;
    }
    // e.g. cuda_graph refusing a non-capturable optimizer: that strategy is skipped, not c8.
    TRAINLAB_ASSIGN_OR_RETURN(ConfigResult r, RunVariant(session, v, /*skip_on_error=*/true));
    result.configs.push_back(std::move(r));
  }
  const int epochs = session.config.run.epochs;
  const int first_steady = FirstSteadyEpoch(epochs);
  auto steady = [first_steady](const RunResult& r) { return SteadyMean(r, first_steady); };
  const ConfigResult* eager = nullptr;
  for (const ConfigResult& c : result.configs) {
    if (c.label == "eager" && !c.repeats.empty()) eager = &c;
  }
  std::printf("\n===== C8: compile strategies on %s =====\n", session.device.str().c_str());
  std::printf("%-36s %14s %20s %12s %12s\n", "strategy", "first epoch",
              absl::StrCat("mean epochs ", first_steady, "-", epochs).c_str(), "speed-up 1st",
              "speed-up");
  for (const ConfigResult& c : result.configs) {
    if (!c.skipped.empty()) continue;
    const Spread first = c.Of(FirstEpoch), steady_s = c.Of(steady);
    std::string up_first = "n/a", up_steady = "n/a";
    if (eager != nullptr) {
      up_first = FormatRatio(eager->Of(FirstEpoch), first);
      up_steady = FormatRatio(eager->Of(steady), steady_s);
    }
    std::printf("%-36s %14s %20s %12s %12s%s\n", c.label.c_str(), FormatSeconds(first).c_str(),
                FormatSeconds(steady_s).c_str(), up_first.c_str(), up_steady.c_str(),
                c.diverged() ? "  (diverged)" : "");
  }
  for (const ConfigResult& c : result.configs) {
    if (!c.skipped.empty()) std::printf("%-36s skipped: %s\n", c.label.c_str(), c.skipped.c_str());
  }
  if (epochs < 6) {
    std::printf("(Fewer than 6 epochs: the steady-state column averages epochs %d-%d.)\n",
                first_steady, epochs);
  }
  result.summary = {{"first_steady_epoch", first_steady}, {"num_workers", base.num_workers}};
  return result;
}

const bool kRegistered = ExperimentRegistry::Global().Register(
    "c8",
    {.usage =
         "c8: compile strategies against eager (C8), 10 epochs: first-epoch time, mean of epochs\n"
         "6-10 and the speed-ups; strategies that cannot run here are listed with the reason.",
     .flags = {"strategies"},
     .defaults = {{"epochs", "10"}},
     .run = RunC8});

}  // namespace
}  // namespace trainlab::experiments
