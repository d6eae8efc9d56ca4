#include "experiments/config.h"

#include <gflags/gflags.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/model.h"
#include "core/status_macros.h"
#include "core/strategy.h"

// --- Data --------------------------------------------------------------------------------------
DEFINE_string(dataset, "auto",
              "auto | cifar10 | fashion_mnist | synthetic (auto: CIFAR-10 if found).");
DEFINE_string(data_dir, "", "CIFAR-10 binary folder (data_batch_*.bin ...), or Fashion-MNIST's.");
DEFINE_int64(synthetic_train, 5000,
             "Training images of --dataset=synthetic (generated, for tests).");
DEFINE_int64(synthetic_test, 1000, "Test images of --dataset=synthetic.");
DEFINE_int64(batch_size, 128, "Images per batch.");
DEFINE_int32(num_workers, 2, "Loader worker threads (0: batches made in the training thread).");
DEFINE_int64(max_batches_per_epoch, 0, "Batches per epoch; 0 = the whole training set.");
// --- Training ----------------------------------------------------------------------------------
DEFINE_int32(epochs, 5, "Epochs per training run.");
DEFINE_string(optimizer, "sgd", "Optimizer by name (listed below).");
DEFINE_double(lr, 0.1, "Learning rate (the lab's 0.1 for every optimizer).");
DEFINE_double(weight_decay, 5e-4, "Weight decay (the lab's 5e-4).");
DEFINE_double(momentum, 0.9, "Momentum (SGD, Nesterov).");
DEFINE_string(strategy, "eager",
              "eager, channels_last, amp_bf16, cudnn_autotune, cuda_graph, or a+b.");
DEFINE_string(model, "resnet18", "Model by name (listed below); torchscript needs --model_path.");
DEFINE_string(model_path, "",
              "TorchScript file (torch.jit.script(m).save) of --model=torchscript.");
DEFINE_bool(batch_norm, true, "false: --model=resnet18_no_bn (the lab's C7 switch).");
DEFINE_string(save_model, "", "Write the trained weights here (a PyTorch state_dict).");
DEFINE_uint64(seed, 0, "Seed for weights, epoch order and augmentation.");
DEFINE_bool(evaluate, false, "Also report test-set loss and top-1 after each epoch.");
// --- Performance -------------------------------------------------------------------------------
DEFINE_string(device, "auto", "auto | cpu | cuda. auto: CUDA when available.");
DEFINE_bool(disable_cuda, false, "Train on the CPU even when CUDA is there.");
DEFINE_int32(dist_timeout, 300, "Data-parallel: seconds to wait for the other ranks, then fail.");
DEFINE_int32(threads, 0, "LibTorch intra-op threads; 0 = every core (LibTorch alone: half).");
DEFINE_bool(portable_kernels, false,
            "ATen and oneDNN on AVX2 kernels: the same bits on every AVX2+ x86-64 CPU.");
DEFINE_bool(malloc_tuning, true,
            "glibc keeps freed memory (no mmap, no trim): ~30% of a CPU step.");
// --- Output ------------------------------------------------------------------------------------
DEFINE_string(results_dir, "", "Write <experiment>.json and <experiment>_batches.csv here.");
DEFINE_string(progress, "auto", "auto | on | off: progress line on stderr (auto: on a terminal).");
DEFINE_string(trace, "", "Chrome trace of every batch (ui.perfetto.dev) to this file.");
DEFINE_string(checkpoint_dir, "",
              "Save <experiment>.ckpt here each epoch (and --checkpoint_every).");
DEFINE_int64(checkpoint_every, 0, "Also checkpoint every N batches (0: at epoch ends only).");
DEFINE_bool(resume, false,
            "Continue from --checkpoint_dir's checkpoint, exactly where it stopped.");
DEFINE_int32(repeats, 1, "Runs per configuration; tables show median (min-max).");
// --- Experiment-specific -----------------------------------------------------------------------
DEFINE_string(workers, "",
              "Counts to run, e.g. 0,1,2 (default: 0, 4, 8, ... while loading falls).");
DEFINE_int32(max_workers, 64, "Upper bound of the automatic sweep.");
DEFINE_int32(best_workers, -1, "The best worker count; -1: C3's from --results_dir, else a sweep.");
DEFINE_string(optimizers, "sgd,sgd_nesterov,adagrad,adadelta,adam",
              "Optimizers to compare, in order.");
DEFINE_string(
    strategies,
    "eager,channels_last,amp_bf16,cudnn_autotune,cuda_graph,cuda_graph+channels_last+amp_bf16",
    "Strategies (or a+b) to compare with eager, in order.");
DEFINE_string(profile, "quick", "quick: ~10 min on 2 cores (batch 32, short epochs); lab: the lab's.");

namespace trainlab::experiments {
namespace {

absl::Status Bad(const std::string& flag, const auto& value, const std::string& want) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": ", want));
}

constexpr int kMaxThreads = 1024;

absl::Status Validate(const ExperimentConfig& c) {
  const RunConfig& r = c.run;
  if (r.num_workers < 0) return Bad("num_workers", r.num_workers, "must be >= 0");
  if (r.epochs < 1) return Bad("epochs", r.epochs, "must be >= 1");
  if (r.batch_size < 1) return Bad("batch_size", r.batch_size, "must be >= 1");
  if (r.max_batches_per_epoch < 0) {
    return Bad("max_batches_per_epoch", r.max_batches_per_epoch, "must be >= 0 (0 = all)");
  }
  if (c.threads < 0) return Bad("threads", c.threads, "must be >= 0 (0 = every core)");
  if (c.synthetic_train < 1) return Bad("synthetic_train", c.synthetic_train, "must be >= 1");
  if (c.synthetic_test < 1) return Bad("synthetic_test", c.synthetic_test, "must be >= 1");
  if (c.repeats < 1) return Bad("repeats", c.repeats, "must be >= 1");
  if (c.dist_timeout_s < 1) return Bad("dist_timeout", c.dist_timeout_s, "must be >= 1 (seconds)");
  if (c.checkpoint_every < 0) return Bad("checkpoint_every", c.checkpoint_every, "must be >= 0");
  if (c.resume && c.checkpoint_dir.empty()) {
    return absl::InvalidArgumentError("--resume needs --checkpoint_dir (where the checkpoint is)");
  }
  if (c.checkpoint_every > 0 && c.checkpoint_dir.empty()) {
    return absl::InvalidArgumentError("--checkpoint_every needs --checkpoint_dir");
  }
  // Past these, a typo would start thousands of threads or ask for terabytes.
  if (c.threads > kMaxThreads)
    return Bad("threads", c.threads, absl::StrCat("must be <= ", kMaxThreads));
  if (r.num_workers > kMaxThreads) {
    return Bad("num_workers", r.num_workers, absl::StrCat("must be <= ", kMaxThreads));
  }
  if (c.max_workers > kMaxThreads) {
    return Bad("max_workers", c.max_workers, absl::StrCat("must be <= ", kMaxThreads));
  }
  if (c.max_workers < 0) return Bad("max_workers", c.max_workers, "must be >= 0");
  if (c.best_workers < -1)
    return Bad("best_workers", c.best_workers, "must be >= 0 (or -1: find it)");
  if (c.progress != "auto" && c.progress != "on" && c.progress != "off") {
    return Bad("progress", c.progress, "must be auto, on or off");
  }
  if (c.device != "auto" && c.device != "cpu" && c.device != "cuda") {
    return Bad("device", c.device, "unknown device (auto, cpu or cuda)");
  }
  if (c.device == "cuda" && c.disable_cuda) {
    return absl::InvalidArgumentError("--device=cuda contradicts --disable_cuda");
  }
  if (c.profile != "quick" && c.profile != "lab")
    return Bad("profile", c.profile, "must be quick or lab");
  if (absl::Status st = ValidateOptimizerSettings(r.optimizer_settings); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--lr/--weight_decay/--momentum: ", st.message()));
  }
  return absl::OkStatus();
}

// What this binary has linked, by kind: "Models (--model): resnet18, resnet18_no_bn, ...".
template <class Entry>
std::string ListEntries(const std::string& title) {
  return absl::StrCat(title, ": ", absl::StrJoin(Registry<Entry>::Global().Names(), ", "), "\n");
}

// The plugins linked into this binary, for the flags that pick them.
std::string PluginHelp(bool trains) {
  std::string out = ListEntries<ModelEntry>("Models (--model)");
  if (trains) {
    absl::StrAppend(&out, ListEntries<OptimizerEntry>("Optimizers (--optimizer)"),
                    ListEntries<StrategyEntry>("Strategies (--strategy, a+b combines)"));
  }
  return out;
}

// The flag's current value as typed JSON.
nlohmann::json FlagValue(const gflags::CommandLineFlagInfo& info) {
  const std::string& v = info.current_value;
  if (info.type == "bool") return v == "true";
  if (info.type == "int32" || info.type == "int64") {
    int64_t n = 0;
    if (absl::SimpleAtoi(v, &n)) return n;
  }
  if (info.type == "uint64" || info.type == "uint32") {
    uint64_t n = 0;
    if (absl::SimpleAtoi(v, &n)) return n;
  }
  if (info.type == "double") {
    double d = 0;
    if (absl::SimpleAtod(v, &d) && std::isfinite(d)) return d;
  }
  return v;
}

std::vector<std::string> FlagsIn(const std::vector<FlagGroup>& groups) {
  std::vector<std::string> out;
  for (const FlagGroup& g : groups) out.insert(out.end(), g.flags.begin(), g.flags.end());
  return out;
}

}  // namespace

const std::vector<FlagGroup>& TrainingFlagGroups() {
  static const auto* groups = new std::vector<FlagGroup>{
      {"Data",
       {"dataset", "data_dir", "batch_size", "num_workers", "max_batches_per_epoch",
        "synthetic_train", "synthetic_test"}},
      {"Training",
       {"epochs", "optimizer", "lr", "weight_decay", "momentum", "strategy", "model", "model_path",
        "batch_norm", "seed", "evaluate"}},
      {"Output", {"results_dir", "repeats", "progress", "trace"}},
      {"Performance",
       {"device", "disable_cuda", "threads", "malloc_tuning", "portable_kernels", "dist_timeout"}},
      {"Checkpoints", {"checkpoint_dir", "checkpoint_every", "resume"}},
  };
  return *groups;
}

std::string UserPath(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr && *wd != '\0') {
    return (std::filesystem::path(wd) / path).string();
  }
  return path;
}

absl::StatusOr<std::vector<std::string>> SplitList(const std::string& flag,
                                                   const std::string& value) {
  std::vector<std::string> out;
  for (const std::string& item : std::vector<std::string>(absl::StrSplit(value, ','))) {
    if (item.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=", value, ": empty item in the list"));
    }
    out.push_back(item);
  }
  return out;
}

absl::StatusOr<ExperimentConfig> ReadConfig(
    int argc, char** argv, const std::string& name, const std::string& usage, bool trains,
    const std::vector<std::string>& own_flags,
    const std::vector<std::pair<std::string, std::string>>& defaults) {
  ExperimentConfig c;
  c.experiment = name;
  for (int i = 0; i < argc; ++i) c.command_line.emplace_back(argv[i]);

  std::vector<FlagGroup> groups;
  if (!own_flags.empty()) groups.push_back({absl::StrCat("Flags of ", name), own_flags});
  if (trains) {
    for (const FlagGroup& g : TrainingFlagGroups()) groups.push_back(g);
  }
  for (const auto& [flag, value] : defaults) {
    gflags::SetCommandLineOptionWithMode(flag.c_str(), value.c_str(), gflags::SET_FLAGS_DEFAULT);
  }
  const bool picks_model =
      trains || std::find(own_flags.begin(), own_flags.end(), "model") != own_flags.end();
  const std::string plugins = picks_model ? PluginHelp(trains) : "";
  if (std::string error = ParseFlags(&argc, &argv, usage, groups, plugins); !error.empty()) {
    return absl::InvalidArgumentError(error);
  }
  if (argc > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", argv[1], "' (flags are --name=value)"));
  }

  // A flag this binary does not take is refused by name, never silently ignored.
  const std::vector<std::string> taken = FlagsIn(groups);
  const std::set<std::string> taken_set(taken.begin(), taken.end());
  std::vector<gflags::CommandLineFlagInfo> all;
  gflags::GetAllFlags(&all);
  for (const gflags::CommandLineFlagInfo& info : all) {
    if (info.is_default) continue;
    c.explicit_flags.insert(info.name);
    const bool ours = info.filename.find("experiments/") != std::string::npos;
    if (ours && taken_set.count(info.name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--", info.name, " is not a flag of ", name,
                                                     " (it takes: --", absl::StrJoin(taken, ", --"),
                                                     ")"));
    }
  }
  for (const std::string& flag : taken) {
    gflags::CommandLineFlagInfo info;
    if (gflags::GetCommandLineFlagInfo(flag.c_str(), &info)) c.settings[flag] = FlagValue(info);
  }

  c.dataset = FLAGS_dataset;
  c.data_dir = FLAGS_data_dir;
  c.synthetic_train = FLAGS_synthetic_train;
  c.synthetic_test = FLAGS_synthetic_test;
  c.device = FLAGS_device;
  c.disable_cuda = FLAGS_disable_cuda;
  c.threads = FLAGS_threads;
  c.malloc_tuning = FLAGS_malloc_tuning;
  c.portable_kernels = FLAGS_portable_kernels;
  c.trace = FLAGS_trace;
  c.results_dir = FLAGS_results_dir;
  c.progress = FLAGS_progress;
  c.repeats = FLAGS_repeats;
  c.dist_timeout_s = FLAGS_dist_timeout;
  c.checkpoint_dir = FLAGS_checkpoint_dir;
  c.checkpoint_every = FLAGS_checkpoint_every;
  c.resume = FLAGS_resume;
  c.max_workers = FLAGS_max_workers;
  c.best_workers = FLAGS_best_workers;
  c.profile = FLAGS_profile;
  if (!FLAGS_workers.empty()) {
    TRAINLAB_ASSIGN_OR_RETURN(std::vector<std::string> items, SplitList("workers", FLAGS_workers));
    for (const std::string& s : items) {
      int n = -1;
      if (!absl::SimpleAtoi(s, &n) || n < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--workers=", FLAGS_workers, ": '", s, "' is not a worker count >= 0"));
      }
      c.workers.push_back(n);
    }
  }
  TRAINLAB_ASSIGN_OR_RETURN(c.optimizers, SplitList("optimizers", FLAGS_optimizers));
  TRAINLAB_ASSIGN_OR_RETURN(c.strategies, SplitList("strategies", FLAGS_strategies));

  RunConfig& r = c.run;
  r.label = FLAGS_optimizer;
  r.optimizer = FLAGS_optimizer;
  r.optimizer_settings = OptimizerSettings{FLAGS_lr, FLAGS_weight_decay, FLAGS_momentum};
  r.strategy = FLAGS_strategy;
  r.num_workers = FLAGS_num_workers;
  r.epochs = FLAGS_epochs;
  r.batch_size = FLAGS_batch_size;
  r.max_batches_per_epoch = FLAGS_max_batches_per_epoch;
  r.seed = FLAGS_seed;
  r.model = FLAGS_model;
  r.model_path = UserPath(FLAGS_model_path);
  r.save_model = UserPath(FLAGS_save_model);
  if (!FLAGS_batch_norm) {
    if (r.model != "resnet18" && r.model != "resnet18_no_bn") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--nobatch_norm selects --model=resnet18_no_bn; it does not apply to --model=", r.model));
    }
    r.model = "resnet18_no_bn";
  }
  if (absl::StatusOr<const ModelEntry*> m = ModelRegistry::Global().Find(r.model); !m.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--model: ", m.status().message()));
  }
  if (!r.save_model.empty() && c.repeats > 1) {
    return absl::InvalidArgumentError(
        "--save_model writes one run's weights; it takes --repeats=1");
  }
  r.evaluate = FLAGS_evaluate;
  TRAINLAB_RETURN_IF_ERROR(Validate(c));
  return c;
}

}  // namespace trainlab::experiments
