// What an experiment binary was asked to do: its flags, read in one place.
//
// The command line is parsed once into FlagValues (every flag of options.cc: its value, its
// type, and whether the user gave it). An experiment's ExperimentOptions are a pure function of
// those values and the experiment's FlagSpec (the flags it takes, its own defaults, its profile
// defaults), so the `all` driver makes the options of every experiment from one command line,
// and a flag given by the user always wins. Nothing below main() reads a FLAGS_ variable.
//
// Example:
//   absl::StatusOr<std::optional<ExperimentOptions>> o = ReadOptions(argc, argv, "c8", spec);
//   if (o.ok() && !*o) return 0;            // --help was printed
//   RunConfig run = (*o)->run;             // the run the shared flags describe
#ifndef TRAINLAB_EXPERIMENTS_OPTIONS_H_
#define TRAINLAB_EXPERIMENTS_OPTIONS_H_

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/cli.h"
#include "experiments/config.h"

namespace trainlab::experiments {

// A default of one experiment or profile for a flag the user did not give.
struct FlagDefault {
  std::string flag, value;
  bool cpu_only = false;  // only when the session trains on the CPU (`all` knows the device)
};

// The flags an experiment takes and its defaults, declared next to its code.
struct FlagSpec {
  std::string usage;                  // --help's first lines
  bool trains = true;                 // takes the training flags and needs the data
  std::vector<std::string> flags;     // its own flags, beyond the training ones
  std::vector<FlagDefault> defaults;  // e.g. c8: {"epochs", "10"}
  // Under `all --profile=NAME`, on top of the driver's profile: e.g. c8's quick profile.
  std::map<std::string, std::vector<FlagDefault>> profiles;
};

// Every flag of the experiments' command line, after parsing.
class FlagValues {
 public:
  struct Value {
    std::string text;  // as gflags holds it
    std::string type;  // gflags' type name: "int32", "bool", "string", ...
    bool given = false;
    bool from_profile = false;  // set by a --profile (a recipe does not override it)
  };
  // The flags options.cc defines, as they are now (after ParseFlags).
  static FlagValues Current();
  // Sets each default whose flag the user did not give (cpu_only ones only when `on_cpu`);
  // `from_profile` marks the values a --profile chose.
  void ApplyDefaults(const std::vector<FlagDefault>& defaults, bool on_cpu,
                     bool from_profile = false);
  const Value& at(const std::string& flag) const;  // a flag options.cc defines
  bool given(const std::string& flag) const { return at(flag).given; }
  nlohmann::json Typed(const std::string& flag) const;  // the value as typed JSON

 private:
  std::map<std::string, Value> values_;
};

// Everything one binary was asked to do.
struct ExperimentOptions {
  std::string experiment;                 // "c3"
  std::vector<std::string> command_line;  // argv as given
  std::set<std::string> given_flags;      // flags given on the command line
  std::set<std::string> profile_flags;    // flags whose value `all --profile` chose

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
  int64_t checkpoint_every = 0;       // batches; 0: at epoch ends only
  bool resume = false;                // --resume=yes: there must be a checkpoint to continue
  bool resume_auto = false;           // --resume=auto: continue one when it is there
  std::string dist_backend = "auto";  // data-parallel: auto | gloo | nccl
  // Experiment-specific
  std::vector<int> workers;  // c3: explicit worker counts (empty: the automatic sweep)
  int max_workers = 64;      // c3: upper bound of the automatic sweep
  int best_workers = -1;     // c4-c8: -1 = from c3's results, else c4's short sweep or the flag
  std::vector<std::string> optimizers;  // c6
  std::vector<std::string> strategies;  // c8, profile
  int profile_steps = 5;                // profile: steps timed per strategy, each way
  std::vector<std::string> recipes = {"lab", "fast"};  // time_to_accuracy
  int64_t test_images = 0;  // time_to_accuracy: evaluate on the first N test images (0: all)
  std::string profile;      // all: quick | lab

  RunConfig run;  // the run the shared flags describe (device still "auto": see Session)
  nlohmann::json settings = nlohmann::json::object();  // every flag taken, after defaults, typed

  bool IsGiven(const std::string& flag) const { return given_flags.count(flag) > 0; }
  // Given, or chosen by a profile: what a recipe (time_to_accuracy) leaves as it is.
  bool IsChosen(const std::string& flag) const {
    return IsGiven(flag) || profile_flags.count(flag) > 0;
  }
};

// The flags every training experiment takes, grouped as --help lists them.
const std::vector<FlagGroup>& TrainingFlagGroups();

// Parses argv for the experiment `name` and returns its options; nullopt when --help was asked
// for (it is printed). `values`, when given, receives every flag's value (the `all` driver makes
// the other experiments' options from them). Errors name the flag and the problem: a value out
// of range, an unexpected argument, a flag this experiment does not take, a name listed twice.
absl::StatusOr<std::optional<ExperimentOptions>> ReadOptions(int argc, char** argv,
                                                             const std::string& name,
                                                             const FlagSpec& spec,
                                                             FlagValues* values = nullptr);

// The options of experiment `name` from flag values read once: `driver_profile` (the driver's
// profile defaults), then the experiment's own defaults, then its profile's, each for the flags
// the user did not give. `command_line` is the driver's.
absl::StatusOr<ExperimentOptions> OptionsFor(FlagValues values, const std::string& name,
                                             const FlagSpec& spec, const std::string& profile,
                                             const std::vector<FlagDefault>& driver_profile,
                                             bool on_cpu, std::vector<std::string> command_line);

// Parses "a,b,c" into names; empty items and duplicates are errors naming the flag.
absl::StatusOr<std::vector<std::string>> SplitList(const std::string& flag,
                                                   const std::string& value);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_OPTIONS_H_
