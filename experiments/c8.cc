// C8: compile strategies against eager over 10 epochs. For each strategy that can run here:
// every epoch's block, then the lab's table: first-epoch time (capture and autotuning
// included), mean epoch time of epochs 6-10, and the speed-up of each over eager. Strategies
// that cannot run here are listed as skipped, with the reason.
//
//   bazel run //experiments:c8 -- --max_batches_per_epoch=5 --epochs=3
#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/strategy.h"
#include "experiments/common.h"

DEFINE_string(strategies, "eager,channels_last,amp_bf16,cudnn_autotune,cuda_graph,cuda_graph+channels_last+amp_bf16",
              "Strategies (or '+' combinations) to compare with eager, in order.");

namespace trainlab::experiments {
namespace {

absl::Status Run() {
  TRAINLAB_ASSIGN_OR_RETURN(std::vector<std::string> names, SplitList("strategies", FLAGS_strategies));
  if (std::find(names.begin(), names.end(), "eager") == names.end()) names.insert(names.begin(), "eager");
  TRAINLAB_ASSIGN_OR_RETURN(Setup setup, Setup::FromFlags());
  std::vector<RunResult> runs;
  std::vector<std::pair<std::string, std::string>> skipped;
  for (const std::string& name : names) {
    if (absl::StatusOr<StepOptions> o = ResolveStrategies(name, setup.device); !o.ok()) {
      skipped.emplace_back(name, std::string(o.status().message()));
      continue;
    }
    RunConfig c = setup.DefaultRun();
    c.strategy = name;
    c.label = name;
    std::printf("\n##### Strategy: %s #####\n", name.c_str());
    absl::StatusOr<RunResult> r = RunTraining(setup, c);
    if (!r.ok()) {  // e.g. cuda_graph refusing a non-capturable optimizer
      skipped.emplace_back(name, std::string(r.status().message()));
      continue;
    }
    runs.push_back(std::move(*r));
  }
  // The lab's steady state is epochs 6-10; shorter runs use what they have after the first.
  const int first_steady = FLAGS_epochs >= 6 ? 6 : std::min(2, FLAGS_epochs);
  auto steady = [&](const RunResult& r) {
    double sum = 0;
    int n = 0;
    for (const EpochStats& e : r.epochs) {
      if (e.epoch >= first_steady) {
        sum += e.epoch_s;
        ++n;
      }
    }
    return n ? sum / n : 0.0;
  };
  std::printf("\n===== C8: compile strategies on %s =====\n", setup.device.str().c_str());
  std::printf("%-36s %14s %20s %12s %12s\n", "strategy", "first epoch",
              absl::StrCat("mean epochs ", first_steady, "-", FLAGS_epochs).c_str(), "speed-up 1st",
              "speed-up");
  const RunResult* eager = runs.empty() ? nullptr : &runs.front();
  for (const RunResult& r : runs) {
    const double first = r.epochs.empty() ? 0 : r.epochs.front().epoch_s;
    const double e_first = eager->epochs.empty() ? 0 : eager->epochs.front().epoch_s;
    std::printf("%-36s %14s %20s %11.2fx %11.2fx%s\n", r.label.c_str(), FormatSeconds(first).c_str(),
                FormatSeconds(steady(r)).c_str(), first > 0 ? e_first / first : 0.0,
                steady(r) > 0 ? steady(*eager) / steady(r) : 0.0, r.diverged ? "  (diverged)" : "");
  }
  for (const auto& [name, why] : skipped) std::printf("%-36s skipped: %s\n", name.c_str(), why.c_str());
  if (FLAGS_epochs < 6) {
    std::printf("(Fewer than 6 epochs: the steady-state column averages epochs %d-%d.)\n", first_steady, FLAGS_epochs);
  }
  return setup.Finish();
}

}  // namespace
}  // namespace trainlab::experiments

int main(int argc, char** argv) {
  return trainlab::experiments::RunMain(argc, argv, "C8: compile strategies against eager.",
                                        trainlab::experiments::Run, {{"epochs", "10"}});
}
