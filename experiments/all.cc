// all: the lab's driver (its driver.py). Runs every experiment of experiments.bzl in the lab's
// order (C2, C3, then C4 to C8 with C3's best worker count, batch_sweep, the profile,
// time_to_accuracy, Q1-Q4) in one process over one copy of the data, writing each experiment's
// results into --results_dir as it finishes, then DIR/REPORT.md with its plots.
//
//   bazel run //experiments:all -- --results_dir=/tmp/r                  # quick: ~10 min, 2 cores
//   bazel run //experiments:all -- --results_dir=/tmp/r --preset=lab    # the lab's settings
//
// --preset sets defaults (FlagSpec::presets: the driver's here, an experiment's own in its
// file, e.g. c8's); any flag given on the command line still wins (--data_dir, --device,
// --epochs ...). quick: 2 epochs of 10 batches of 32 images (C8: 10 epochs of 4 batches, and on
// a CPU only the strategies that can help there), C3 up to 12 workers. lab: 5 epochs (C8: 10) of
// the full data at batch 128, as the lab ran.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experiments/harness/error_boundary.h"
#include "experiments/harness/experiment.h"
#include "experiments/harness/experiment_main.h"
#include "experiments/harness/options.h"
#include "experiments/harness/stop.h"
#include "experiments/harness/user_path.h"
#include "experiments/reporting/experiment_report.h"
#include "experiments/reporting/lab_order.h"
#include "experiments/reporting/report.h"

DEFINE_string(preset, "quick",
              "quick: ~10 min on 2 cores (batch 32, short epochs); lab: the lab's.");

namespace trainlab::experiments {
namespace {

// `all` takes its preset and every flag of every experiment linked in (the registry's union).
const FlagSpec& AllSpec() {
  static const auto* spec = [] {
    auto* spec = new FlagSpec{
        .usage =
            "all --results_dir=DIR [--preset=quick|lab] [flags]: the lab's driver; every "
            "experiment "
            "of\n"
            "experiments.bzl in the lab's order (C4-C8 with C3's best workers), then REPORT.md",
        .trains = true,
        .flags = {"preset"},
        .presets = {{"quick",
                     {{"epochs", "2"},
                      {"max_batches_per_epoch", "10"},
                      {"batch_size", "32"},
                      {"max_workers", "12"}}},
                    {"lab", {}}}};
    const std::vector<std::string> shared = FlagsTaken({});
    for (const std::string& name : LabOrder()) {
      absl::StatusOr<const Experiment*> e = ExperimentRegistry::Global().Find(name);
      if (!e.ok()) continue;  // RunAll says so
      for (const std::string& f : (*e)->cli.flags) {
        if (std::find(shared.begin(), shared.end(), f) == shared.end() &&
            std::find(spec->passed_on.begin(), spec->passed_on.end(), f) == spec->passed_on.end()) {
          spec->passed_on.push_back(f);
        }
      }
    }
    return spec;
  }();
  return *spec;
}

// `stopped_in`: the session of the experiment a stop (Ctrl-C) interrupted, for the resume message.
absl::Status RunAll(const ExperimentOptions& given, const FlagValues& values,
                    std::unique_ptr<Session>* stopped_in) {
  const FlagSpec& spec = AllSpec();
  const std::string preset = values.Str("preset");
  if (!spec.presets.count(preset)) return FlagError("preset", preset, "must be quick or lab");
  const std::vector<FlagDefault>& defaults = spec.presets.at(preset);
  TRAINLAB_ASSIGN_OR_RETURN(ExperimentOptions base_options,
                            OptionsFor(values, "all", spec, preset, defaults,
                                       /*on_cpu=*/true, given.command_line));
  if (base_options.results_dir.empty()) {
    return absl::InvalidArgumentError(
        "--results_dir is required: the report is made from the results written there");
  }
  const auto start = std::chrono::steady_clock::now();
  ExperimentOptions session_options = base_options;  // checkpoints are per experiment
  session_options.checkpoint_dir.clear();
  session_options.resume = false;
  session_options.resume_auto = false;
  session_options.checkpoint_every = 0;
  TRAINLAB_ASSIGN_OR_RETURN(Session base, Session::Start(session_options));
  std::printf("- Preset: %s; results and report in %s\n", preset.c_str(),
              base.ResultsDir().c_str());
  for (const std::string& name : LabOrder()) {
    TRAINLAB_ASSIGN_OR_RETURN(const Experiment* experiment,
                              ExperimentRegistry::Global().Find(name));
    TRAINLAB_ASSIGN_OR_RETURN(ExperimentOptions o,
                              OptionsFor(values, name, experiment->cli, preset, defaults,
                                         base.device.is_cpu(), given.command_line));
    o.settings["driver"] = absl::StrCat("all --preset=", preset);
    // --resume continues the experiments that had started; the others start afresh (whether
    // one had started is rank 0's to say, data-parallel: checkpointer.h).
    if (o.resume) {
      o.resume = false;
      o.resume_auto = true;
    }
    std::printf("\n==================== %s ====================\n", name.c_str());
    std::fflush(stdout);
    const auto t0 = std::chrono::steady_clock::now();
    TRAINLAB_ASSIGN_OR_RETURN(Session s, base.With(std::move(o)));
    if (absl::Status st = RunAndWrite(name, s).status(); !st.ok()) {
      if (absl::IsCancelled(st)) *stopped_in = std::make_unique<Session>(std::move(s));
      return st;
    }
    TRAINLAB_RETURN_IF_ERROR(s.WriteTrace());
    std::printf("(%s took %.1fs)\n", name.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (!base.writes()) return absl::OkStatus();  // data-parallel: rank 0 alone writes the report
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
  InstallStopHandlers();
  // --profile=quick|lab was this flag's name before "profile" became an experiment's: still read.
  std::vector<std::string> args(argv, argv + argc);
  std::vector<char*> rewritten;
  for (std::string& a : args) {
    if (a.rfind("--profile=", 0) == 0) a = "--preset=" + a.substr(10);
    rewritten.push_back(a.data());
  }
  rewritten.push_back(nullptr);
  argv = rewritten.data();
  FlagValues values;
  absl::StatusOr<std::optional<ExperimentOptions>> options =
      ReadOptions(argc, argv, "all", AllSpec(), &values);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (!options.ok()) return ReportError(program, options.status());
  if (!*options) return 0;  // --help
  std::unique_ptr<Session> stopped_in;
  const absl::Status status = Guarded([&] { return RunAll(**options, values, &stopped_in); });
  return ExitCode(program, status, stopped_in.get());
}
