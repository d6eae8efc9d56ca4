#include "experiments/harness/options.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/host.h"
#include "core/model.h"
#include "core/nvtx.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "experiments/harness/user_path.h"

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
DEFINE_string(lr_schedule, "constant", "constant | step | cosine | onecycle, set per batch.");
DEFINE_double(warmup_epochs, 0, "Linear warm-up to --lr over this many (fractional) epochs.");
DEFINE_string(lr_milestones, "", "step: epochs at which the rate is multiplied by --lr_gamma.");
DEFINE_double(lr_gamma, 0.1, "step: the factor at each milestone.");
DEFINE_double(label_smoothing, 0, "Cross-entropy label smoothing in [0, 1) (PyTorch's).");
DEFINE_string(tta, "none", "none | flip: evaluate each test image and its mirror (mean logits).");
DEFINE_double(target_accuracy, 0,
              "Stop after the first epoch whose test top-1 reaches this % (implies --evaluate).");
DEFINE_string(strategy, "eager",
              "eager, channels_last, amp_bf16, cudnn_autotune, conv_autotune, cuda_graph, or a+b.");
DEFINE_string(model, "resnet18", "Model by name (listed below); torchscript needs --model_path.");
DEFINE_string(model_path, "",
              "TorchScript file (torch.jit.script(m).save) of --model=torchscript.");
DEFINE_bool(batch_norm, true, "false: --model=resnet18_no_bn (the lab's C7 switch).");
DEFINE_string(save_model, "", "Write the trained weights here (a PyTorch state_dict).");
DEFINE_bool(keep_best, false, "--save_model: the weights of the best test epoch, not the last.");
DEFINE_uint64(seed, 0, "Seed for weights, epoch order and augmentation.");
DEFINE_bool(evaluate, false, "Also report test-set loss and top-1 after each epoch.");
// --- Performance -------------------------------------------------------------------------------
DEFINE_string(device, "auto", "auto | cpu | cuda. auto: CUDA when available.");
DEFINE_bool(disable_cuda, false, "Train on the CPU even when CUDA is there.");
DEFINE_int32(dist_timeout, 300, "Data-parallel: seconds to wait for the other ranks, then fail.");
DEFINE_string(dist_backend, "auto",
              "Data-parallel: auto | gloo | nccl (auto: NCCL on GPUs of a --config=cuda build).");
DEFINE_int32(threads, 0, "LibTorch intra-op threads; 0 = every core (LibTorch alone: half).");
DEFINE_bool(portable_kernels, false,
            "ATen and oneDNN on AVX2 kernels: the same bits on any AVX2+ x86-64.");
DEFINE_bool(malloc_tuning, true,
            "glibc keeps freed memory (no mmap, no trim): ~30% of a CPU step.");
// --- Output ------------------------------------------------------------------------------------
DEFINE_string(results_dir, "", "Write <experiment>.json and <experiment>_batches.csv here.");
DEFINE_string(progress, "auto", "auto | on | off: progress line on stderr (auto: on a terminal).");
DEFINE_string(trace, "", "Chrome trace of every batch (ui.perfetto.dev) to this file.");
DEFINE_string(nvtx, "off", "off | phases | layers: NVTX ranges for nsys (--nvtx alone: phases).");
DEFINE_string(tensorboard_dir, "",
              "TensorBoard event files here: DIR/<experiment>/<run> (docs/tensorboard.md).");
DEFINE_string(checkpoint_dir, "",
              "Save <experiment>.ckpt here each epoch (and --checkpoint_every).");
DEFINE_int64(checkpoint_every, 0, "Also checkpoint every N batches (0: at epoch ends only).");
DEFINE_string(resume, "no", "no | yes | auto: continue the checkpoint (auto: if one is there).");
DEFINE_int32(repeats, 1, "Runs per configuration; tables show median (min-max).");
namespace trainlab::experiments {
namespace {

// Flags of the run (RunConfig) defined here but taken only by the experiments that name them in
// their FlagSpec (c2: --save_model, --keep_best).
const std::vector<std::string>& OptionalRunFlags() {
  static const auto* flags = new std::vector<std::string>{"save_model", "keep_best"};
  return *flags;
}

// Every flag defined here, and the experiment's own.
std::vector<std::string> KnownFlags(const FlagSpec& spec);

absl::Status Bad(const std::string& flag, const auto& value, const std::string& want) {
  return FlagError(flag, absl::StrCat(value), want);
}

absl::Status Validate(const ExperimentOptions& c) {
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
  if ((c.resume || c.resume_auto) && c.checkpoint_dir.empty()) {
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
  if (!nvtx::ParseLevel(c.nvtx)) return Bad("nvtx", c.nvtx, "must be off, phases or layers");
  if (c.progress != "auto" && c.progress != "on" && c.progress != "off") {
    return Bad("progress", c.progress, "must be auto, on or off");
  }
  if (c.device != "auto" && c.device != "cpu" && c.device != "cuda") {
    return Bad("device", c.device, "unknown device (auto, cpu or cuda)");
  }
  if (c.device == "cuda" && c.disable_cuda) {
    return absl::InvalidArgumentError("--device=cuda contradicts --disable_cuda");
  }
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

std::vector<std::string> FlagsIn(const std::vector<FlagGroup>& groups) {
  std::vector<std::string> out;
  for (const FlagGroup& g : groups) out.insert(out.end(), g.flags.begin(), g.flags.end());
  return out;
}

std::vector<FlagGroup> GroupsOf(const std::string& name, const FlagSpec& spec) {
  std::vector<FlagGroup> groups;
  if (!spec.flags.empty()) groups.push_back({absl::StrCat("Flags of ", name), spec.flags});
  if (!spec.passed_on.empty()) {
    groups.push_back({"Each experiment's own flags (--help of its binary describes them)",
                      spec.passed_on, /*compact=*/true});
  }
  if (spec.trains) {
    for (const FlagGroup& g : TrainingFlagGroups()) groups.push_back(g);
  }
  return groups;
}

// The presets of `spec` for --help, one line: "Presets: lab = the flags' defaults; quick =
// --epochs=2 --batch_size=32 ...".
std::string PresetHelp(const FlagSpec& spec) {
  std::vector<std::string> presets;
  for (const auto& [name, defaults] : spec.presets) {
    std::vector<std::string> parts;
    for (const FlagDefault& d : defaults) {
      parts.push_back(absl::StrCat("--", d.flag, "=", d.value, d.cpu_only ? " (on a CPU)" : ""));
    }
    presets.push_back(absl::StrCat(
        name, " = ", parts.empty() ? "the flags' defaults" : absl::StrJoin(parts, " ")));
  }
  return presets.empty() ? "" : absl::StrCat("Presets: ", absl::StrJoin(presets, "; "), "\n");
}

// Reads typed values out of FlagValues; a value that does not parse is our own bug (gflags
// checked what the user typed), and says which flag.
class Reader {
 public:
  explicit Reader(const FlagValues& v) : v_(v) {}
  absl::Status status() const { return status_; }
  std::string Str(const std::string& f) { return v_.Str(f); }
  bool Bool(const std::string& f) { return v_.Bool(f); }
  int64_t Int(const std::string& f) { return Keep(v_.Int(f)); }
  uint64_t Uint(const std::string& f) { return Keep(v_.Uint(f)); }
  double Double(const std::string& f) { return Keep(v_.Double(f)); }

 private:
  template <class T>
  T Keep(absl::StatusOr<T> v) {
    if (v.ok()) return *v;
    if (status_.ok()) status_ = v.status();
    return T{};
  }
  const FlagValues& v_;
  absl::Status status_;
};

// The options of `name` from `values` (defaults already applied).
absl::StatusOr<ExperimentOptions> Build(const FlagValues& values, const std::string& name,
                                        const FlagSpec& spec,
                                        std::vector<std::string> command_line) {
  ExperimentOptions c;
  c.experiment = name;
  c.command_line = std::move(command_line);
  for (const std::string& f : FlagsTaken(spec)) {
    c.settings[f] = values.Typed(f);
    if (values.given(f)) c.given_flags.insert(f);
    if (values.at(f).from_preset) c.preset_flags.insert(f);
  }
  Reader r(values);
  c.dataset = r.Str("dataset");
  c.data_dir = r.Str("data_dir");
  c.synthetic_train = r.Int("synthetic_train");
  c.synthetic_test = r.Int("synthetic_test");
  c.device = r.Str("device");
  c.disable_cuda = r.Bool("disable_cuda");
  c.threads = static_cast<int>(r.Int("threads"));
  c.malloc_tuning = r.Bool("malloc_tuning");
  c.portable_kernels = r.Bool("portable_kernels");
  c.trace = r.Str("trace");
  c.nvtx = r.Str("nvtx");
  c.tensorboard_dir = r.Str("tensorboard_dir");
  c.results_dir = r.Str("results_dir");
  c.progress = r.Str("progress");
  c.repeats = static_cast<int>(r.Int("repeats"));
  c.dist_timeout_s = static_cast<int>(r.Int("dist_timeout"));
  c.checkpoint_dir = r.Str("checkpoint_dir");
  c.checkpoint_every = r.Int("checkpoint_every");
  {
    const std::string resume = r.Str("resume");
    if (resume == "yes" || resume == "true" || resume == "1") {
      c.resume = true;
    } else if (resume == "auto") {
      c.resume_auto = true;
    } else if (resume != "no" && resume != "false" && resume != "0") {
      return absl::InvalidArgumentError(absl::StrCat("--resume=", resume, ": not no, yes or auto"));
    }
  }
  c.dist_backend = r.Str("dist_backend");
  if (c.dist_backend != "auto" && c.dist_backend != "gloo" && c.dist_backend != "nccl") {
    return absl::InvalidArgumentError(
        absl::StrCat("--dist_backend=", c.dist_backend, ": not auto, gloo or nccl"));
  }

  RunConfig& run = c.run;
  run.optimizer = r.Str("optimizer");
  run.label = run.optimizer;
  run.optimizer_settings =
      OptimizerSettings{r.Double("lr"), r.Double("weight_decay"), r.Double("momentum")};
  run.lr_schedule = r.Str("lr_schedule");
  run.warmup_epochs = r.Double("warmup_epochs");
  run.lr_gamma = r.Double("lr_gamma");
  run.label_smoothing = r.Double("label_smoothing");
  run.target_accuracy = r.Double("target_accuracy");
  if (const std::string tta = r.Str("tta"); tta == "flip") {
    run.tta_flip = true;
  } else if (tta != "none") {
    return absl::InvalidArgumentError(absl::StrCat("--tta=", tta, ": not none or flip"));
  }
  if (const std::string m = r.Str("lr_milestones"); !m.empty()) {
    TRAINLAB_ASSIGN_OR_RETURN(std::vector<std::string> items, SplitList("lr_milestones", m));
    for (const std::string& item : items) {
      double epoch = 0;
      if (!absl::SimpleAtod(item, &epoch)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--lr_milestones=", m, ": '", item, "' is not an epoch"));
      }
      run.lr_milestones.push_back(epoch);
    }
  }
  run.strategy = r.Str("strategy");
  run.num_workers = static_cast<int>(r.Int("num_workers"));
  run.epochs = static_cast<int>(r.Int("epochs"));
  run.batch_size = r.Int("batch_size");
  run.max_batches_per_epoch = r.Int("max_batches_per_epoch");
  run.seed = r.Uint("seed");
  run.model = r.Str("model");
  run.model_path = UserPath(r.Str("model_path"));
  // (Taken by the experiments that name them: c2.)
  if (values.has("save_model")) run.save_model = UserPath(r.Str("save_model"));
  if (values.has("keep_best")) run.keep_best = r.Bool("keep_best");
  run.evaluate = r.Bool("evaluate");
  TRAINLAB_RETURN_IF_ERROR(r.status());
  if (!r.Bool("batch_norm")) {
    if (run.model != "resnet18" && run.model != "resnet18_no_bn") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--nobatch_norm selects --model=resnet18_no_bn; it does not apply to --model=",
          run.model));
    }
    run.model = "resnet18_no_bn";
  }
  if (absl::StatusOr<const ModelEntry*> m = ModelRegistry::Global().Find(run.model); !m.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--model: ", m.status().message()));
  }
  if (!run.save_model.empty() && c.repeats > 1) {
    return absl::InvalidArgumentError(
        "--save_model writes one run's weights; it takes --repeats=1");
  }
  TRAINLAB_RETURN_IF_ERROR(Validate(c));
  // The schedule's own checks, before any data is read (the steps per epoch come later).
  TRAINLAB_RETURN_IF_ERROR(LrSchedule::Make(ScheduleOptions(run, 1)).status());
  if (!(run.label_smoothing >= 0 && run.label_smoothing < 1)) {
    return Bad("label_smoothing", run.label_smoothing, "must be in [0, 1)");
  }
  if (!(run.target_accuracy >= 0 && run.target_accuracy <= 100)) {
    return Bad("target_accuracy", run.target_accuracy, "must be a test top-1 % in [0, 100]");
  }
  if (run.target_accuracy > 0) run.evaluate = true;  // a target is a test accuracy
  if (run.keep_best && (run.save_model.empty() || !run.evaluate)) {
    return absl::InvalidArgumentError(
        "--keep_best keeps the best test epoch's weights: it needs --save_model and --evaluate "
        "(or --target_accuracy)");
  }
  if (!run.lr_milestones.empty() && run.lr_schedule != "step") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--lr_milestones is for --lr_schedule=step, not --lr_schedule=", run.lr_schedule));
  }
  if (spec.read_own) {
    TRAINLAB_ASSIGN_OR_RETURN(c.own, spec.read_own(values));
  }
  return c;
}

std::vector<std::string> KnownFlags(const FlagSpec& spec) {
  std::vector<std::string> names = FlagsIn(TrainingFlagGroups());
  names.insert(names.end(), OptionalRunFlags().begin(), OptionalRunFlags().end());
  for (const auto* list : {&spec.flags, &spec.passed_on}) {
    for (const std::string& f : *list) {
      if (std::find(names.begin(), names.end(), f) == names.end()) names.push_back(f);
    }
  }
  return names;
}

}  // namespace

std::vector<std::string> FlagsTaken(const FlagSpec& spec) { return FlagsIn(GroupsOf("", spec)); }

const std::vector<FlagGroup>& TrainingFlagGroups() {
  static const auto* groups = new std::vector<FlagGroup>{
      {"Data",
       {"dataset", "data_dir", "batch_size", "num_workers", "max_batches_per_epoch",
        "synthetic_train", "synthetic_test"}},
      {"Training",
       {"epochs", "optimizer", "lr", "weight_decay", "momentum", "strategy", "model", "model_path",
        "batch_norm", "seed"}},
      // (One paragraph: the screen is full. --helpfull describes each.)
      {"Output (--results_dir: JSON/CSV; --tensorboard_dir: event files; --trace: Perfetto "
       "timeline; --nvtx=phases|layers: nsys)",
       {"results_dir", "tensorboard_dir", "repeats", "progress", "trace", "nvtx"},
       /*compact=*/true},
      {"Performance", {"device", "disable_cuda", "threads", "malloc_tuning", "portable_kernels"}},
      // Compact groups (one paragraph each; --helpfull describes every flag): settings with a
      // page of their own, and the learning rate (the lab trains at a constant one).
      {"Checkpoints and data-parallel runs (docs/checkpoints.md, docs/distributed.md)",
       {"checkpoint_dir", "checkpoint_every", "resume", "dist_timeout", "dist_backend"},
       /*compact=*/true},
      {"Learning rate (constant | step | cosine | onecycle), label smoothing, evaluation "
       "(--tta=none|flip)",
       {"lr_schedule", "warmup_epochs", "lr_milestones", "lr_gamma", "label_smoothing", "evaluate",
        "tta", "target_accuracy"},
       /*compact=*/true},
  };
  return *groups;
}

absl::StatusOr<std::optional<ExperimentOptions>> ReadOptions(int argc, char** argv,
                                                             const std::string& name,
                                                             const FlagSpec& spec,
                                                             FlagValues* values_out) {
  std::vector<std::string> command_line;
  for (int i = 0; i < argc; ++i) command_line.emplace_back(argv[i]);
  const std::vector<FlagGroup> groups = GroupsOf(name, spec);
  // --resume was a switch, and still is: --resume alone means --resume=yes, --noresume no.
  // --nvtx alone means --nvtx=phases, --nonvtx off.
  static std::vector<std::string> rewritten;
  static std::vector<char*> rewritten_argv;
  rewritten.assign(argv, argv + argc);
  for (std::string& a : rewritten) {
    if (a == "--resume" || a == "-resume") a = "--resume=yes";
    if (a == "--noresume" || a == "-noresume") a = "--resume=no";
    if (a == "--nvtx" || a == "-nvtx") a = "--nvtx=phases";
    if (a == "--nonvtx" || a == "-nonvtx") a = "--nvtx=off";
  }
  rewritten_argv.clear();
  for (std::string& a : rewritten) rewritten_argv.push_back(a.data());
  rewritten_argv.push_back(nullptr);
  argv = rewritten_argv.data();
  // This binary's own defaults show in its --help (c8: --epochs=10).
  for (const FlagDefault& d : spec.defaults) {
    gflags::SetCommandLineOptionWithMode(d.flag.c_str(), d.value.c_str(),
                                         gflags::SET_FLAGS_DEFAULT);
  }
  const bool picks_model =
      spec.trains || std::find(spec.flags.begin(), spec.flags.end(), "model") != spec.flags.end();
  const bool takes_preset =
      std::find(spec.flags.begin(), spec.flags.end(), "preset") != spec.flags.end();
  const std::string epilogue = absl::StrCat(takes_preset ? PresetHelp(spec) : "",
                                            picks_model ? PluginHelp(spec.trains) : "");
  TRAINLAB_ASSIGN_OR_RETURN(const Parsed parsed,
                            ParseFlags(&argc, &argv, spec.usage, groups, epilogue));
  if (parsed == Parsed::kHelpShown) return std::optional<ExperimentOptions>();
  if (argc > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", argv[1], "' (flags are --name=value)"));
  }
  FlagValues values = FlagValues::Current(KnownFlags(spec));
  // A shared flag that this experiment does not take is refused by name, never ignored (another
  // experiment's own flags are not defined in this binary: gflags refuses them as unknown).
  const std::vector<std::string> taken = FlagsIn(groups);
  for (const std::string& f : KnownFlags(spec)) {
    if (values.given(f) && std::find(taken.begin(), taken.end(), f) == taken.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--", f, " is not a flag of ", name,
                                                     " (it takes: --", absl::StrJoin(taken, ", --"),
                                                     ")"));
    }
  }
  TRAINLAB_ASSIGN_OR_RETURN(ExperimentOptions options,
                            Build(values, name, spec, std::move(command_line)));
  if (values_out != nullptr) *values_out = std::move(values);
  return std::optional<ExperimentOptions>(std::move(options));
}

absl::StatusOr<ExperimentOptions> OptionsFor(FlagValues values, const std::string& name,
                                             const FlagSpec& spec, const std::string& preset,
                                             const std::vector<FlagDefault>& driver_preset,
                                             bool on_cpu, std::vector<std::string> command_line) {
  values.ApplyDefaults(driver_preset, on_cpu, /*from_preset=*/true);
  values.ApplyDefaults(spec.defaults, on_cpu);
  if (auto it = spec.presets.find(preset); it != spec.presets.end()) {
    values.ApplyDefaults(it->second, on_cpu, /*from_preset=*/true);
  }
  return Build(values, name, spec, std::move(command_line));
}

}  // namespace trainlab::experiments
