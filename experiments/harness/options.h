// What an experiment binary was asked to do: its flags, read in one place.
//
// Two kinds of flags. The shared ones (options.cc) are those every training binary takes: the
// data, the run (RunConfig), output, checkpoints, performance. An experiment's own flags are
// defined in its own file, next to its code (c3.cc: --workers, --max_workers), named in its
// FlagSpec, and read there into its own struct by FlagSpec::read_own; the struct travels in
// ExperimentOptions::own (experiment.h's RegisterExperiment hands it to the run, typed).
//
// The command line is parsed once into FlagValues (each flag's text, its type, and whether the
// user gave it). An experiment's ExperimentOptions are a pure function of those values and its
// FlagSpec (the flags it takes, its own defaults, its preset defaults), so the `all` driver
// makes the options of every experiment from one command line, and a flag given by the user
// always wins. Nothing below main() reads a FLAGS_ variable.
//
// Example:
//   absl::StatusOr<std::optional<ExperimentOptions>> o = ReadOptions(argc, argv, "c8", spec);
//   if (o.ok() && !*o) return 0;            // --help was printed
//   RunConfig run = (*o)->run;             // the run the shared flags describe
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_OPTIONS_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_OPTIONS_H_

#include <nlohmann/json.hpp>

#include <any>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/cli.h"
#include "experiments/harness/run_config.h"

namespace trainlab::experiments {

// A default of one experiment or preset for a flag the user did not give.
struct FlagDefault {
  std::string flag, value;
  bool cpu_only = false;  // only when the session trains on the CPU (`all` knows the device)
};

// The values of the flags a binary takes, after parsing: each one's text, type and origin.
class FlagValues {
 public:
  struct Value {
    std::string text;  // as gflags holds it
    std::string type;  // gflags' type name: "int32", "bool", "string", ...
    bool given = false;
    bool from_preset = false;  // set by `all --preset` (a recipe does not override it)
  };
  // The flags named (those this binary defines), as they are now (after ParseFlags).
  static FlagValues Current(const std::vector<std::string>& names);
  // Sets each default whose flag the user did not give (cpu_only ones only when `on_cpu`);
  // `from_preset` marks the values `all --preset` chose.
  void ApplyDefaults(const std::vector<FlagDefault>& defaults, bool on_cpu,
                     bool from_preset = false);
  // Sets `flag` as if the user had typed --flag=text (tests and drivers).
  void Set(const std::string& flag, const std::string& text);

  bool has(const std::string& flag) const { return values_.count(flag) > 0; }
  const Value& at(const std::string& flag) const;  // a flag of this binary
  bool given(const std::string& flag) const { return at(flag).given; }
  nlohmann::json Typed(const std::string& flag) const;  // the value as typed JSON

  // Typed reads; a value that does not parse, or lies outside [min, max], is an error naming the
  // flag, its value and what it must be ("--max_workers=-1: must be >= 0").
  std::string Str(const std::string& flag) const { return at(flag).text; }
  bool Bool(const std::string& flag) const { return at(flag).text == "true"; }
  absl::StatusOr<int64_t> Int(const std::string& flag) const;
  absl::StatusOr<int64_t> IntIn(const std::string& flag, int64_t min, int64_t max,
                                const std::string& want = "") const;
  absl::StatusOr<uint64_t> Uint(const std::string& flag) const;
  absl::StatusOr<double> Double(const std::string& flag) const;
  // "a,b,c": no empty item, no name twice.
  absl::StatusOr<std::vector<std::string>> List(const std::string& flag) const;
  // "0,4,8": each an integer in [min, max]; `what` names one in errors ("a worker count").
  absl::StatusOr<std::vector<int64_t>> IntList(const std::string& flag, int64_t min, int64_t max,
                                               const std::string& what) const;

 private:
  std::map<std::string, Value> values_;
};

// The flags an experiment takes and its defaults, declared next to its code.
struct FlagSpec {
  std::string usage;               // --help's first lines
  bool trains = true;              // takes the training flags and needs the data
  std::vector<std::string> flags;  // its own flags, beyond the training ones
  // A driver's (`all`): the experiments' own flags it takes and passes on to each, listed by
  // --help as one paragraph.
  std::vector<std::string> passed_on;
  std::vector<FlagDefault> defaults;  // e.g. c8: {"epochs", "10"}
  // Under `all --preset=NAME`, on top of the driver's preset: e.g. c8's quick preset.
  std::map<std::string, std::vector<FlagDefault>> presets;
  // Reads and checks the experiment's own flags into its own struct (experiment.h's
  // RegisterExperiment sets it); unset: it has none beyond the shared ones.
  std::function<absl::StatusOr<std::any>(const FlagValues&)> read_own;
};

// Everything one binary was asked to do.
struct ExperimentOptions {
  std::string experiment;                 // "c3"
  std::vector<std::string> command_line;  // argv as given
  std::set<std::string> given_flags;      // flags given on the command line
  std::set<std::string> preset_flags;     // flags whose value `all --preset` chose

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
  std::string trace;            // Chrome trace file
  std::string nvtx = "off";     // off | phases | layers: NVTX ranges (core/nvtx.h)
  std::string results_dir;      // <experiment>.json and <experiment>_batches.csv go here
  std::string tensorboard_dir;  // TensorBoard event files (experiments/tensorboard/board.h)
  std::string progress = "auto";
  int repeats = 1;
  int dist_timeout_s = 300;  // data-parallel: how long a rank waits for the others
  // Checkpoints
  std::string checkpoint_dir;
  int64_t checkpoint_every = 0;       // batches; 0: at epoch ends only
  bool resume = false;                // --resume=yes: there must be a checkpoint to continue
  bool resume_auto = false;           // --resume=auto: continue one when it is there
  std::string dist_backend = "auto";  // data-parallel: auto | gloo | nccl

  RunConfig run;  // the run the shared flags describe (device still "auto": see Session)
  // Every flag taken (shared and the experiment's own), after defaults, typed: what results
  // files record and what a checkpoint's fingerprint is made of (Session::Fingerprint).
  nlohmann::json settings = nlohmann::json::object();
  std::any own;  // the experiment's own flags, read by FlagSpec::read_own (experiment.h)

  bool IsGiven(const std::string& flag) const { return given_flags.count(flag) > 0; }
  // Given, or chosen by a preset: what a recipe (time_to_accuracy) leaves as it is.
  bool IsChosen(const std::string& flag) const {
    return IsGiven(flag) || preset_flags.count(flag) > 0;
  }
};

// The flags every training experiment takes, grouped as --help lists them.
const std::vector<FlagGroup>& TrainingFlagGroups();

// The names of the flags `spec` takes: its own, then (when it trains) every training flag.
std::vector<std::string> FlagsTaken(const FlagSpec& spec);

// Parses argv for the experiment `name` and returns its options; nullopt when --help was asked
// for (it is printed). `values`, when given, receives every flag's value (the `all` driver makes
// the other experiments' options from them). Errors name the flag and the problem: a value out
// of range, an unexpected argument, a flag this experiment does not take, a name listed twice.
absl::StatusOr<std::optional<ExperimentOptions>> ReadOptions(int argc, char** argv,
                                                             const std::string& name,
                                                             const FlagSpec& spec,
                                                             FlagValues* values = nullptr);

// The options of experiment `name` from flag values read once: `driver_preset` (the driver's
// preset defaults), then the experiment's own defaults, then its preset's, each for the flags
// the user did not give. `command_line` is the driver's.
absl::StatusOr<ExperimentOptions> OptionsFor(FlagValues values, const std::string& name,
                                             const FlagSpec& spec, const std::string& preset,
                                             const std::vector<FlagDefault>& driver_preset,
                                             bool on_cpu, std::vector<std::string> command_line);

// Parses "a,b,c" into names; empty items and duplicates are errors naming the flag.
absl::StatusOr<std::vector<std::string>> SplitList(const std::string& flag,
                                                   const std::string& value);

// "--flag=value: want", the one form of a bad flag's error.
absl::Status FlagError(const std::string& flag, const std::string& value, const std::string& want);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_OPTIONS_H_
