// What an experiment binary was asked to do, read from its flags in one place.
//
// Flags are read once, by ReadConfig(), into an ExperimentConfig; nothing below main() reads a
// FLAGS_ variable, so any run can be made in-process with other values (the `all` driver runs
// every experiment this way). Each experiment says which flags it takes (Experiment::flags in
// experiment.h); a flag it does not take is refused by name instead of silently ignored.
//
// Example:
//   absl::StatusOr<ExperimentConfig> c = ReadConfig(argc, argv, experiment);
//   RunConfig run = c->run;   // the run the shared flags describe
//   run.num_workers = 4;
#ifndef TRAINLAB_EXPERIMENTS_CONFIG_H_
#define TRAINLAB_EXPERIMENTS_CONFIG_H_

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/cli.h"
#include "core/optimizer.h"

namespace trainlab::experiments {

// One training run, complete: all that RunTraining needs besides the data.
struct RunConfig {
  std::string label;  // how tables name this run ("sgd", "4 workers", ...)
  std::string optimizer = "sgd";
  OptimizerSettings optimizer_settings;  // lr, weight decay, momentum
  std::string strategy = "eager";
  int num_workers = 2;
  int epochs = 5;
  int64_t batch_size = 128;
  int64_t max_batches_per_epoch = 0;  // 0 = the whole training set
  uint64_t seed = 0;
  std::string model = "resnet18";  // a ModelRegistry name (core/model.h)
  std::string model_path;          // the file of a loaded model (--model=torchscript)
  std::string save_model;          // write the trained weights here (PyTorch state_dict)
  c10::Device device = c10::kCPU;
  bool evaluate = false;     // test-set loss and top-1 after each epoch
  bool print_blocks = true;  // the lab's per-epoch block on stdout
  bool record_trace = true;  // spans into the session's trace, when --trace is set
  // For tests: LoaderOptions::before_batch of the training loader (a failure to inject).
  std::function<void(int64_t epoch, int64_t batch)> loader_fault;
};

// Everything one binary was asked to do.
struct ExperimentConfig {
  std::string experiment;                 // "c3"
  std::vector<std::string> command_line;  // argv as given
  std::set<std::string> explicit_flags;   // flags given on the command line

  // Data
  std::string dataset = "auto";
  std::string data_dir;  // as given; resolved against the user's directory by UserPath
  int64_t synthetic_train = 5000, synthetic_test = 1000;
  // Performance
  std::string device = "auto";  // auto | cpu | cuda
  bool disable_cuda = false;
  int threads = 0;  // 0 = every core
  bool malloc_tuning = true;
  bool portable_kernels = false;  // ATen and oneDNN pinned to avx2 (core/kernels.h)
  // Output
  std::string trace;        // Chrome trace file
  std::string results_dir;  // <experiment>.json and <experiment>_batches.csv go here
  std::string progress = "auto";
  int repeats = 1;
  int dist_timeout_s = 300;  // data-parallel: how long a rank waits for the others
  // Checkpoints
  std::string checkpoint_dir;
  int64_t checkpoint_every = 0;  // batches; 0: at epoch ends only
  bool resume = false;
  // Experiment-specific
  std::vector<int> workers;  // c3: explicit worker counts (empty: the automatic sweep)
  int max_workers = 64;      // c3: upper bound of the automatic sweep
  int best_workers = -1;     // c4-c8: -1 = from c3's results, else c4's short sweep or the flag
  std::vector<std::string> optimizers;  // c6
  std::vector<std::string> strategies;  // c8
  std::string profile;                  // all: quick | lab

  RunConfig run;  // the run the shared flags describe (device still "auto": see Session)
  nlohmann::json settings = nlohmann::json::object();  // every flag taken, after defaults, typed

  bool IsExplicit(const std::string& flag) const { return explicit_flags.count(flag) > 0; }
};

// The flags every training experiment takes, grouped as --help lists them.
const std::vector<FlagGroup>& TrainingFlagGroups();

// Parses argv for the experiment `name`, which takes the training flags (when `trains`) plus
// `own_flags`. --help prints `usage` and those flags, then exits. `defaults` overrides flag
// defaults for this binary ({{"epochs", "10"}} for c8). Errors name the flag and the problem:
// a value out of range, an unexpected argument, or a flag this experiment does not take.
absl::StatusOr<ExperimentConfig> ReadConfig(
    int argc, char** argv, const std::string& name, const std::string& usage, bool trains,
    const std::vector<std::string>& own_flags,
    const std::vector<std::pair<std::string, std::string>>& defaults);

// A path from the user's command line: relative to where they ran `bazel run`, not the runfiles.
std::string UserPath(const std::string& path);

// Parses "a,b,c" into names; empty items are an error naming the flag.
absl::StatusOr<std::vector<std::string>> SplitList(const std::string& flag,
                                                   const std::string& value);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_CONFIG_H_
