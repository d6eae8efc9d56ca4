// What every experiment binary does: the flags they share, process settings (threads, glibc's
// allocator), data and device choice, one training run, and the error boundary.
//
// Flags defined here (see --help of any experiment): --dataset --data_dir --num_workers --epochs
// --batch_size --lr --weight_decay --momentum --optimizer --strategy --device --disable_cuda
// --max_batches_per_epoch --seed --threads --malloc_tuning --trace --evaluate --batch_norm
// --synthetic_train --synthetic_test.
//
// Example (experiments/c2.cc):
//   int main(int argc, char** argv) {
//     return RunMain(argc, argv, "usage", [] {
//       TRAINLAB_ASSIGN_OR_RETURN(Setup setup, Setup::FromFlags());
//       return RunTraining(setup, setup.DefaultRun()).status();
//     });
//   }
#ifndef TRAINLAB_EXPERIMENTS_COMMON_H_
#define TRAINLAB_EXPERIMENTS_COMMON_H_

#include <c10/core/Device.h>
#include <gflags/gflags.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/stats.h"
#include "core/trace.h"
#include "plugins/data/dataset.h"
#include "plugins/data/loader.h"

DECLARE_string(dataset);
DECLARE_string(data_dir);
DECLARE_int32(num_workers);
DECLARE_int32(epochs);
DECLARE_int64(batch_size);
DECLARE_double(lr);
DECLARE_double(weight_decay);
DECLARE_double(momentum);
DECLARE_string(optimizer);
DECLARE_string(strategy);
DECLARE_string(device);
DECLARE_bool(disable_cuda);
DECLARE_int64(max_batches_per_epoch);
DECLARE_uint64(seed);
DECLARE_int32(threads);
DECLARE_bool(malloc_tuning);
DECLARE_string(trace);
DECLARE_bool(evaluate);
DECLARE_bool(batch_norm);

#define TRAINLAB_RETURN_IF_ERROR(expr)         \
  do {                                         \
    if (absl::Status _s = (expr); !_s.ok()) {  \
      return _s;                               \
    }                                          \
  } while (0)

#define TRAINLAB_CONCAT_INNER(a, b) a##b
#define TRAINLAB_CONCAT(a, b) TRAINLAB_CONCAT_INNER(a, b)
#define TRAINLAB_ASSIGN_OR_RETURN(lhs, expr)                                 \
  auto TRAINLAB_CONCAT(_statusor_, __LINE__) = (expr);                       \
  if (!TRAINLAB_CONCAT(_statusor_, __LINE__).ok())                           \
    return TRAINLAB_CONCAT(_statusor_, __LINE__).status();                   \
  lhs = std::move(*TRAINLAB_CONCAT(_statusor_, __LINE__))

namespace trainlab::experiments {

// One training run's parameters; Setup::DefaultRun() fills it from the flags.
struct RunConfig {
  std::string label;              // how the recap names this run ("sgd", "4 workers", ...)
  std::string optimizer = "sgd";
  std::string strategy = "eager";
  int num_workers = 2;
  int epochs = 5;
  bool batch_norm = true;
  c10::Device device = c10::kCPU;
  bool evaluate = false;          // test-set loss and top-1 after each epoch
  bool print_blocks = true;       // the lab's per-epoch block on stdout
  TraceRecorder* trace = nullptr;
};

struct RunResult {
  std::string label;
  std::vector<EpochStats> epochs;
  std::vector<data::LoaderStageTimes> loader_stages;  // per epoch
  std::vector<EvalStats> test;                         // per epoch, when evaluated
  std::optional<Divergence> diverged;
  double total_s = 0;  // sum of epoch times

  double mean(double EpochStats::*field) const;
  double total(double EpochStats::*field) const;
};

// Data, device and process settings, chosen once from the flags.
struct Setup {
  std::shared_ptr<const data::ImageDataset> train, test;
  c10::Device device = c10::kCPU;
  std::string data_note;  // which dataset was chosen and why
  std::unique_ptr<TraceRecorder> trace;  // when --trace is set

  // Validates the shared flags, applies threads and allocator settings, loads the data and
  // prints one "Settings:" paragraph.
  static absl::StatusOr<Setup> FromFlags();
  RunConfig DefaultRun() const;
  // Writes the trace file when --trace was given (call once, at the end).
  absl::Status Finish() const;
};

// Trains `config.epochs` epochs, printing the lab's block per epoch when asked. A NaN or
// infinite loss ends the run early with RunResult::diverged set (not an error).
absl::StatusOr<RunResult> RunTraining(const Setup& setup, const RunConfig& config);

// The devices this process can train on: CPU, and CUDA when available and not disabled.
std::vector<c10::Device> AvailableDevices();

// A path from the user's command line: relative to where they ran `bazel run`, not the runfiles.
std::string UserPath(const std::string& path);

// Parses flags, runs `body`, and turns any error (absl::Status or exception) into one line
// "<program>: error: <message>" on stderr and exit code 1. `defaults` overrides shared flags'
// defaults for this binary (c8 trains 10 epochs): {{"epochs", "10"}}.
int RunMain(int argc, char** argv, const char* usage, const std::function<absl::Status()>& body,
            const std::vector<std::pair<std::string, std::string>>& defaults = {});

// The lab's recap of several runs (C6, C7): average training time per epoch, average loss and
// average top-1 over the epochs, then a ranking by each. Diverged runs are listed as such.
void PrintRecap(const std::vector<RunResult>& runs);

// Parses "a,b,c" into names; empty items are an error naming the flag.
absl::StatusOr<std::vector<std::string>> SplitList(const std::string& flag, const std::string& value);

// "1.2345" style seconds for recaps.
std::string FormatSeconds(double s);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_COMMON_H_
