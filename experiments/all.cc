// all: the lab's driver (its driver.py). Runs C2, C3, then C4 to C8 with C3's best worker count,
// and Q1-Q4, in one process over one copy of the data, writing each experiment's results into
// --results_dir as it finishes, then DIR/REPORT.md with its plots.
//
//   bazel run //experiments:all -- --results_dir=/tmp/r                  # quick: ~10 min, 2 cores
//   bazel run //experiments:all -- --results_dir=/tmp/r --profile=lab    # the lab's settings
//
// --profile sets defaults; any flag given on the command line still wins (--data_dir, --device,
// --epochs ...). quick: 2 epochs of 10 batches of 32 images (C8: 10 epochs of 4 batches, and on
// a CPU only the strategies that can help there), C3 up to 12 workers. lab: 5 epochs (C8: 10) of
// the full data at batch 128, as the lab ran.
#include <glog/logging.h>
#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experiments/config.h"
#include "experiments/experiment.h"
#include "experiments/report.h"
#include "experiments/stop.h"

namespace trainlab::experiments {
namespace {

// The profile's flag defaults, applied before the command line is read.
std::vector<std::pair<std::string, std::string>> ProfileDefaults(std::string_view profile) {
  if (profile == "lab") return {};
  return {{"epochs", "2"},
          {"max_batches_per_epoch", "10"},
          {"batch_size", "32"},
          {"max_workers", "12"}};
}

std::string ProfileOf(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    for (std::string_view prefix : {"--profile=", "-profile="}) {
      if (a.substr(0, prefix.size()) == prefix) return std::string(a.substr(prefix.size()));
    }
  }
  return "quick";
}

// Records a setting the driver changed for one experiment in the settings its results keep
// (the caller changes the config itself).
void Set(ExperimentConfig& c, const std::string& flag, const nlohmann::json& value) {
  c.settings[flag] = value;
}

// `stopped_in`: the session of the experiment a stop (Ctrl-C) interrupted, for the resume message.
absl::Status RunAll(const ExperimentConfig& config, std::unique_ptr<Session>* stopped_in) {
  if (config.results_dir.empty()) {
    return absl::InvalidArgumentError(
        "--results_dir is required: the report is made from the results written there");
  }
  const auto start = std::chrono::steady_clock::now();
  ExperimentConfig base_config = config;  // checkpoints are per experiment, not the driver's
  base_config.checkpoint_dir.clear();
  base_config.resume = false;
  base_config.checkpoint_every = 0;
  TRAINLAB_ASSIGN_OR_RETURN(Session base, Session::Start(base_config));
  std::printf("- Profile: %s; results and report in %s\n", config.profile.c_str(),
              base.ResultsDir().c_str());
  for (const std::string& name : LabOrder()) {
    ExperimentConfig c = config;
    c.experiment = name;
    Set(c, "driver", absl::StrCat("all --profile=", config.profile));
    if (name == "c8") {
      if (!c.IsExplicit("epochs")) {
        c.run.epochs = 10;
        Set(c, "epochs", 10);
      }
      if (config.profile == "quick" && !c.IsExplicit("max_batches_per_epoch")) {
        c.run.max_batches_per_epoch = 4;
        Set(c, "max_batches_per_epoch", 4);
      }
      // On a CPU, amp_bf16 without native bf16 is ~30x slower and the CUDA ones cannot run:
      // the quick profile keeps the CPU strategies that can help there.
      if (config.profile == "quick" && !c.IsExplicit("strategies") && base.device.is_cpu()) {
        c.strategies = {"eager", "channels_last"};
        Set(c, "strategies", "eager,channels_last");
      }
    }
    // --resume continues the experiments that had started; the others start afresh.
    if (c.resume &&
        !std::filesystem::exists(absl::StrCat(UserPath(c.checkpoint_dir), "/", name, ".ckpt"))) {
      c.resume = false;
    }
    std::printf("\n==================== %s ====================\n", name.c_str());
    std::fflush(stdout);
    const auto t0 = std::chrono::steady_clock::now();
    TRAINLAB_ASSIGN_OR_RETURN(Session s, base.With(std::move(c)));
    if (absl::Status st = RunAndWrite(name, s).status(); !st.ok()) {
      if (absl::IsCancelled(st)) *stopped_in = std::make_unique<Session>(std::move(s));
      return st;
    }
    TRAINLAB_RETURN_IF_ERROR(s.WriteTrace());
    std::printf("(%s took %.1fs)\n", name.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  TRAINLAB_ASSIGN_OR_RETURN(ReportFiles files, RenderReport(base.ResultsDir()));
  std::printf("\nReport written to %s with %zu plots, in %.1fs in all\n", files.report.c_str(),
              files.plots.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!files.plot_problem.empty()) std::printf("Plots: %s\n", files.plot_problem.c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace trainlab::experiments

int main(int argc, char** argv) {
  using namespace trainlab::experiments;
  const std::string program = std::filesystem::path(argv[0]).filename().string();
  const std::string profile = ProfileOf(argc, argv);
  absl::StatusOr<ExperimentConfig> config =
      ReadConfig(argc, argv, "all",
                 "all: the lab's driver: C2, C3, C4-C8 with C3's best worker count, Q1-Q4, then "
                 "REPORT.md.\n"
                 "  all --results_dir=DIR [--profile=quick|lab] [any experiment flag]",
                 /*trains=*/true,
                 {"profile", "workers", "max_workers", "best_workers", "optimizers", "strategies"},
                 ProfileDefaults(profile));
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (!config.ok()) return ReportError(program, config.status());
  InstallStopHandlers();
  std::unique_ptr<Session> stopped_in;
  const absl::Status status = Guarded([&] { return RunAll(*config, &stopped_in); });
  if (stopped_in) stopped_in->config.command_line = config->command_line;
  return ExitCode(program, status, stopped_in.get());
}
