#include "experiments/session.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/host.h"
#include "core/model.h"
#include "core/status_macros.h"
#include "experiments/json_reader.h"
#include "experiments/stop.h"
#include "experiments/user_path.h"
#include "plugins/data/cifar10.h"
#include "plugins/data/fashion_mnist.h"
#include "plugins/data/synthetic.h"

namespace trainlab::experiments {
namespace {

// The device to train on; data-parallel on CUDA, this rank's GPU (LOCAL_RANK), as torchrun's
// one-process-per-GPU layout expects.
absl::StatusOr<c10::Device> ChooseDevice(const ExperimentOptions& c, int local_rank = 0) {
  const bool cuda = torch::cuda::is_available();
  const bool want_cuda = c.device == "cuda" || (c.device == "auto" && cuda && !c.disable_cuda);
  if (c.device == "cuda" && !cuda) {
    return absl::FailedPreconditionError("--device=cuda: no CUDA device is available");
  }
  if (!want_cuda) return c10::Device(c10::kCPU);
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (local_rank >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("LOCAL_RANK=", local_rank, ": this machine has ", count,
                     " CUDA device(s); run at most one rank per GPU (--nproc_per_node=", count,
                     ") or pass --device=cpu"));
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

int LocalRank(const Session& s) { return s.comm ? s.comm->env().local_rank : 0; }

// The images and labels, hashed: the dataset's identity in a checkpoint's fingerprint.
std::string DatasetDigest(const data::ImageDataset& d) {
  Fnv1a h;
  h.Add(d.pixels.data(), d.pixels.size());
  h.Add(d.labels.data(), d.labels.size());
  return h.Hex();
}

// Opens the session's checkpoint file when --checkpoint_dir is set. Data-parallel, rank 0 opens
// it and the others hold what it read (checkpointer.h). A worker that torchrun restarted
// (TORCHELASTIC_RESTART_COUNT > 0) continues the checkpoint when there is one (--resume=auto).
absl::Status OpenCheckpointer(Session& s) {
  if (s.options.checkpoint_dir.empty()) return absl::OkStatus();
  std::string holder = absl::StrJoin(s.options.command_line, " ");
  absl::StrAppend(&holder, " (pid ", getpid(), ")");
  Checkpointer::Options o{.dir = UserPath(s.options.checkpoint_dir),
                          .experiment = s.options.experiment,
                          .fingerprint = s.Fingerprint(),
                          .resume = s.options.resume,
                          .resume_if_present = s.options.resume_auto || s.restarted(),
                          .holder = EscapeInvalidUtf8(holder)};
  // A schedule over the whole run (cosine, onecycle) depends on the total epochs: a longer run is
  // another schedule, not the same one extended.
  const std::string& schedule = s.options.run.lr_schedule;
  if (schedule == "cosine" || schedule == "onecycle") o.extendable.erase("epochs");
  if (s.comm) {
    o.share = [comm = s.comm](const std::string& bytes) { return comm->BroadcastBytes(bytes); };
    o.writes = s.comm->rank() == 0;
  }
  TRAINLAB_ASSIGN_OR_RETURN(s.checkpointer, Checkpointer::Open(std::move(o)));
  return absl::OkStatus();
}

// Every file the run writes at the end is checked before the first batch: hours of training
// are not lost to a typo in an output path.
absl::Status CheckOutputPaths(const ExperimentOptions& c) {
  if (!c.results_dir.empty()) {
    TRAINLAB_RETURN_IF_ERROR(PrepareWritableDir(UserPath(c.results_dir), "--results_dir"));
  }
  if (!c.trace.empty()) TRAINLAB_RETURN_IF_ERROR(CheckOutputFile(UserPath(c.trace), "--trace"));
  if (!c.run.save_model.empty()) {
    TRAINLAB_RETURN_IF_ERROR(CheckOutputFile(c.run.save_model, "--save_model"));
  }
  return absl::OkStatus();
}

absl::Status CheckBatchSize(const Session& s) {
  if (s.train && s.options.run.batch_size > s.train->size) {
    return absl::InvalidArgumentError(absl::StrCat("--batch_size=", s.options.run.batch_size,
                                                   ": larger than the training set (",
                                                   s.train->size, " images)"));
  }
  return absl::OkStatus();
}

bool WantProgress(const std::string& mode) {
  if (mode == "on") return true;
  if (mode == "off") return false;
  return isatty(STDERR_FILENO) == 1;
}

}  // namespace

absl::StatusOr<ChosenData> ChooseData(const ExperimentOptions& c) {
  const std::string dir = UserPath(c.data_dir);
  std::string kind = c.dataset;
  ChosenData out;
  std::string cifar_dir = dir;
  if (!dir.empty() && !data::LooksLikeCifar10Dir(dir) &&
      data::LooksLikeCifar10Dir(dir + "/cifar-10-batches-bin")) {
    cifar_dir = dir + "/cifar-10-batches-bin";
  }
  if (kind == "auto") {
    if (!dir.empty() && data::LooksLikeCifar10Dir(cifar_dir)) {
      kind = "cifar10";
      out.note = absl::StrCat("auto chose CIFAR-10 from ", cifar_dir);
    } else {
      kind = "fashion_mnist";
      out.note =
          dir.empty()
              ? "auto chose Fashion-MNIST (no --data_dir with CIFAR-10 given)"
              : absl::StrCat("auto chose Fashion-MNIST (no CIFAR-10 binary files in ", dir, ")");
    }
  }
  if (kind == "cifar10") {
    if (dir.empty()) {
      return absl::InvalidArgumentError(
          "--dataset=cifar10 needs --data_dir (the cifar-10-batches-bin folder)");
    }
    TRAINLAB_ASSIGN_OR_RETURN(out.train, data::ReadCifar10(cifar_dir, data::Split::kTrain));
    TRAINLAB_ASSIGN_OR_RETURN(out.test, data::ReadCifar10(cifar_dir, data::Split::kTest));
  } else if (kind == "fashion_mnist") {
    const std::string fdir =
        (c.dataset == "fashion_mnist" && !dir.empty()) ? dir : data::kDebianFashionMnistDir;
    if (!std::filesystem::exists(fdir)) {
      return absl::NotFoundError(absl::StrCat(
          fdir,
          ": Fashion-MNIST not found; install Debian's dataset-fashion-mnist (./bazelw does) "
          "or pass --data_dir with CIFAR-10"));
    }
    TRAINLAB_ASSIGN_OR_RETURN(out.train, data::ReadFashionMnist(fdir, data::Split::kTrain));
    TRAINLAB_ASSIGN_OR_RETURN(out.test, data::ReadFashionMnist(fdir, data::Split::kTest));
  } else if (kind == "synthetic") {
    out.train = data::MakeSyntheticDataset(c.synthetic_train, c.run.seed + 1000);
    out.test = data::MakeSyntheticDataset(c.synthetic_test, c.run.seed + 2000);
    out.train.name = "synthetic/train (generated, not CIFAR-10)";
    out.test.name = "synthetic/test (generated, not CIFAR-10)";
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--dataset=", c.dataset, ": unknown dataset (auto, cifar10, fashion_mnist or synthetic)"));
  }
  return out;
}

std::vector<c10::Device> AvailableDevices(bool disable_cuda) {
  std::vector<c10::Device> devices = {c10::Device(c10::kCPU)};
  if (torch::cuda::is_available() && !disable_cuda) devices.emplace_back(c10::kCUDA, 0);
  return devices;
}

namespace {

// The model can be made (a TorchScript file loads and gives 10 logits).
absl::Status CheckModel(const RunConfig& r) {
  return MakeModel(r.model, {.path = r.model_path}).status();
}

// What ranks other than 0 of a data-parallel job write: nothing (no results, trace, progress
// or saved model). Their checkpointer holds rank 0's state and writes nothing either.
void ApplyRankRules(ExperimentOptions& c) {
  c.results_dir.clear();
  c.trace.clear();
  c.progress = "off";
  c.run.save_model.clear();
}

absl::Status SilenceStdout() {
  if (std::freopen("/dev/null", "w", stdout) == nullptr) {
    return absl::InternalError("cannot silence stdout on a rank other than 0");
  }
  return absl::OkStatus();
}

// Under torchrun (or RANK/WORLD_SIZE/MASTER_* set by hand) picks this rank's device and joins the
// process group. Ranks other than 0 then write nothing: no stdout, results, trace, progress or
// saved model.
absl::Status JoinDataParallel(Session& s) {
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<distributed::DistEnv> env, distributed::ReadDistEnv());
  ExperimentOptions& c = s.options;
  TRAINLAB_ASSIGN_OR_RETURN(s.device, ChooseDevice(c, env ? env->local_rank : 0));
  if (!env) return absl::OkStatus();
  TRAINLAB_ASSIGN_OR_RETURN(const distributed::Backend backend,
                            distributed::ChooseBackend(c.dist_backend, s.device));
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<distributed::Communicator> comm,
                            distributed::Communicator::Connect(
                                *env, std::chrono::seconds(c.dist_timeout_s), backend, s.device));
  s.comm = std::move(comm);
  if (env->rank != 0) {
    ApplyRankRules(c);
    TRAINLAB_RETURN_IF_ERROR(SilenceStdout());
  }
  return absl::OkStatus();
}

// The flag a fingerprint key comes from, for the agreement's error line.
std::string FlagOf(const std::string& key) {
  if (key == "dataset") return "the data (--dataset, --data_dir, --synthetic_train/_test)";
  if (key == "test_digest") return "the test data (--dataset, --data_dir, --synthetic_test)";
  if (key == "checkpointing") return "--checkpoint_dir (given or not)";
  if (key == "experiment") return "the experiment (binary)";
  return "--" + key;
}

std::string ValueText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "nothing";
  return v.dump();
}

// Every rank's settings against rank 0's: the fingerprint a checkpoint keeps, the dataset's
// content and what decides how many collectives follow. Any difference is one error, the same on
// every rank, naming each setting and the ranks that differ, before any training.
absl::Status AgreeOnSettings(const Session& s) {
  nlohmann::json mine = s.Fingerprint();
  mine["experiment"] = s.options.experiment;
  mine["checkpointing"] = !s.options.checkpoint_dir.empty();
  mine["checkpoint_every"] = s.options.checkpoint_every;
  mine["resume"] = s.options.resume ? "yes" : s.options.resume_auto ? "auto" : "no";
  mine["dist_timeout"] = s.options.dist_timeout_s;
  mine["dist_backend"] = s.options.dist_backend;
  mine["synthetic_test"] = s.options.synthetic_test;
  // (The fingerprint holds these only when not at their defaults; compared here always.)
  const RunConfig& r = s.options.run;
  mine["lr_schedule"] = r.lr_schedule;
  mine["warmup_epochs"] = r.warmup_epochs;
  mine["lr_milestones"] = r.lr_milestones;
  mine["lr_gamma"] = r.lr_gamma;
  mine["label_smoothing"] = r.label_smoothing;
  mine["tta"] = r.tta_flip ? "flip" : "none";
  mine["target_accuracy"] = r.target_accuracy;
  if (s.test) mine["test_digest"] = DatasetDigest(*s.test);
  TRAINLAB_ASSIGN_OR_RETURN(const std::vector<std::string> all,
                            s.comm->AllGatherBytes(mine.dump()));
  std::vector<nlohmann::json> ranks;
  for (const std::string& text : all) {
    ranks.push_back(nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false));
    if (ranks.back().is_discarded()) {
      return absl::InternalError("comparing settings: a rank sent unreadable settings");
    }
  }
  std::vector<std::string> differences;
  for (auto it = ranks[0].begin(); it != ranks[0].end(); ++it) {
    std::string line;
    for (size_t r = 1; r < ranks.size(); ++r) {
      const nlohmann::json theirs = ranks[r].contains(it.key()) ? ranks[r][it.key()] : nullptr;
      if (theirs == *it) continue;
      const bool nested = it->is_object();  // the dataset: name, sizes, digest
      if (line.empty()) {
        line = absl::StrCat(FlagOf(it.key()), ": rank 0 has ",
                            nested ? (*it).value("name", std::string("?")) + " " +
                                         (*it).value("digest", std::string())
                                   : ValueText(*it));
      }
      absl::StrAppend(&line, ", rank ", r, " has ",
                      nested && theirs.is_object() ? theirs.value("name", std::string("?")) + " " +
                                                         theirs.value("digest", std::string())
                                                   : ValueText(theirs));
    }
    if (!line.empty()) differences.push_back(std::move(line));
  }
  if (differences.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the ranks were started with different settings (", absl::StrJoin(differences, "; "),
      "); start every rank with the same flags and data"));
}

// --portable_kernels pins ATen's and oneDNN's kernels; either way, reads back those in use. Runs
// before the first tensor operation of the process (kernels are chosen there, once).
absl::Status ChooseKernels(Session& s) {
  if (s.options.portable_kernels) {
    if (absl::Status st = PinKernels(kPortableKernels); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("--portable_kernels: ", st.message()));
    }
  }
  s.kernels = KernelsInUse();
  return absl::OkStatus();
}

std::string KernelsLine(const Session& s) {
  return absl::StrCat(
      s.kernels.str(),
      s.options.portable_kernels
          ? " (--portable_kernels: the same bits on any x86-64 CPU with AVX2)"
          : " (LibTorch's choice on this CPU; --portable_kernels pins bits that repeat on others)",
      "; BLAS ", LoadedBlas());
}

}  // namespace

absl::StatusOr<Session> Session::Start(ExperimentOptions options) {
  Session s;
  s.options = std::move(options);
  const ExperimentOptions& c = s.options;
  TRAINLAB_RETURN_IF_ERROR(ChooseKernels(s));
  TRAINLAB_RETURN_IF_ERROR(JoinDataParallel(s));
  // Fail before an hour of training, not after it.
  TRAINLAB_RETURN_IF_ERROR(CheckOutputPaths(c));
  TRAINLAB_RETURN_IF_ERROR(CheckModel(c.run));

  at::set_num_threads(c.threads > 0 ? c.threads : AllCores());
  s.allocator = "glibc defaults (--nomalloc_tuning)";
  if (c.malloc_tuning) {
    KeepFreedHeapMemory();
    s.allocator = absl::StrCat(kKeepFreedHeapMemory, " (--malloc_tuning)");
  }
  s.progress = WantProgress(c.progress);

  TRAINLAB_ASSIGN_OR_RETURN(ChosenData chosen, ChooseData(c));
  s.data_note = chosen.note;
  s.train = std::make_shared<const data::ImageDataset>(std::move(chosen.train));
  s.test = std::make_shared<const data::ImageDataset>(std::move(chosen.test));
  if (!c.trace.empty()) s.trace = std::make_unique<TraceRecorder>();
  TRAINLAB_RETURN_IF_ERROR(CheckBatchSize(s));
  if (s.comm) TRAINLAB_RETURN_IF_ERROR(AgreeOnSettings(s));
  TRAINLAB_RETURN_IF_ERROR(OpenCheckpointer(s));

  const RunConfig& r = c.run;
  std::printf("Settings:\n");
  if (!s.data_note.empty()) std::printf("- Data: %s\n", s.data_note.c_str());
  std::printf("- Dataset: %s (%" PRId64 " images, read in %.2fs), test %s (%" PRId64 " images)\n",
              s.train->name.c_str(), s.train->size, s.train->load_seconds, s.test->name.c_str(),
              s.test->size);
  std::printf(
      "- Device: %s%s\n", s.device.str().c_str(),
      s.device.is_cpu() && torch::cuda::is_available() ? " (CUDA available but not used)" : "");
  std::printf("- Model: %s%s\n", r.model.c_str(),
              r.model_path.empty() ? "" : absl::StrCat(" from ", r.model_path).c_str());
  std::printf("- Intra-op threads: %d; allocator: %s\n", at::get_num_threads(),
              s.allocator.c_str());
  std::printf("- CPU kernels: %s\n", KernelsLine(s).c_str());
  std::printf("- Batch size %" PRId64
              ", loader workers %d, lr %g, weight decay %g, momentum %g, seed %" PRIu64 "\n",
              r.batch_size, r.num_workers, r.optimizer_settings.lr,
              r.optimizer_settings.weight_decay, r.optimizer_settings.momentum, r.seed);
  if (r.lr_schedule != "constant" || r.warmup_epochs > 0 || r.label_smoothing > 0) {
    std::string line = absl::StrCat("- Learning rate: ", r.lr_schedule, " from ",
                                    r.optimizer_settings.lr, " over ", r.epochs, " epochs");
    if (r.lr_schedule == "step") {
      absl::StrAppend(&line, ", x", r.lr_gamma, " at epochs ",
                      r.lr_milestones.empty() ? "(none)" : absl::StrJoin(r.lr_milestones, ","));
    }
    if (r.warmup_epochs > 0) absl::StrAppend(&line, ", warm-up ", r.warmup_epochs, " epochs");
    std::printf("%s (set per batch); label smoothing %g\n", line.c_str(), r.label_smoothing);
  }
  if (r.tta_flip || r.target_accuracy > 0) {
    std::printf(
        "- Evaluation:%s%s\n", r.tta_flip ? " each test image and its mirror (--tta=flip)" : "",
        r.target_accuracy > 0 ? absl::StrFormat("%s stop at %.2f%% test top-1 (--target_accuracy)",
                                                r.tta_flip ? ";" : "", r.target_accuracy)
                                    .c_str()
                              : "");
  }
  if (r.max_batches_per_epoch > 0) {
    std::printf("- Epochs cut to %" PRId64 " batches (--max_batches_per_epoch)\n",
                r.max_batches_per_epoch);
  }
  if (c.repeats > 1) std::printf("- Each configuration runs %d times (--repeats)\n", c.repeats);
  if (s.comm) {
    std::printf("- Data-parallel over %d ranks (c10d, Gloo): %s; --batch_size is per rank (%" PRId64
                " images per step in all); loss and top-1 over all ranks, times rank 0's; "
                "batch norm: rank 0's running statistics, broadcast before every forward (DDP's "
                "default)\n",
                s.comm->world_size(), s.comm->env().str().c_str(),
                r.batch_size * s.comm->world_size());
  }
  if (s.checkpointer) {
    std::printf("- Checkpoints: %s%s%s\n", s.checkpointer->path().c_str(),
                s.checkpointer->resuming() ? " (resuming)" : "",
                s.comm ? " (rank 0 writes; every rank restores what it wrote)" : "");
  }
  if (s.restarted()) {
    std::printf("- Restarted by torchrun (attempt %d of this job)%s\n", s.comm->env().restart_count,
                s.checkpointer ? "" : ": no --checkpoint_dir, so training starts over");
  }
  std::fflush(stdout);
  return s;
}

absl::StatusOr<Session> Session::Bare(ExperimentOptions options) {
  Session s;
  s.options = std::move(options);
  // Nothing is exchanged, but under torchrun rank 0 alone prints and writes.
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<distributed::DistEnv> env, distributed::ReadDistEnv());
  if (env && env->rank != 0) {
    ApplyRankRules(s.options);
    TRAINLAB_RETURN_IF_ERROR(SilenceStdout());
  }
  TRAINLAB_RETURN_IF_ERROR(CheckOutputPaths(s.options));
  s.allocator = "not set (nothing trains)";
  s.kernels = KernelsInUse();
  return s;
}

absl::StatusOr<Session> Session::With(ExperimentOptions other) const {
  Session s;
  s.options = std::move(other);
  if (!writes()) ApplyRankRules(s.options);
  TRAINLAB_RETURN_IF_ERROR(CheckOutputPaths(s.options));
  TRAINLAB_ASSIGN_OR_RETURN(s.device, ChooseDevice(s.options, LocalRank(*this)));
  s.train = train;
  s.test = test;
  s.comm = comm;
  s.data_note = data_note;
  s.allocator = allocator;
  s.kernels = kernels;
  s.progress = progress;
  if (!s.options.trace.empty()) s.trace = std::make_unique<TraceRecorder>();
  TRAINLAB_RETURN_IF_ERROR(CheckBatchSize(s));
  TRAINLAB_RETURN_IF_ERROR(OpenCheckpointer(s));
  return s;
}

nlohmann::json Session::Fingerprint() const {
  const RunConfig& r = options.run;
  nlohmann::json f = {
      {"lr", r.optimizer_settings.lr},
      {"weight_decay", r.optimizer_settings.weight_decay},
      {"momentum", r.optimizer_settings.momentum},
      {"optimizer", r.optimizer},
      {"strategy", r.strategy},
      {"model", r.model},
      {"model_path", r.model_path},
      {"batch_size", r.batch_size},
      {"seed", r.seed},
      {"epochs", r.epochs},
      {"max_batches_per_epoch", r.max_batches_per_epoch},
      {"evaluate", r.evaluate},
      {"repeats", options.repeats},
      {"workers", options.workers},
      {"max_workers", options.max_workers},
      {"best_workers", options.best_workers},
      {"optimizers", options.optimizers},
      {"strategies", options.strategies},
      // Data-parallel ranks train on cuda:LOCAL_RANK: the device's kind is the setting.
      {"device", comm ? c10::DeviceTypeName(device.type(), /*lower_case=*/true) : device.str()},
      {"portable_kernels", options.portable_kernels},
  };
  // Settings added later enter only when not at their default, so older checkpoints still match.
  if (r.lr_schedule != "constant") f["lr_schedule"] = r.lr_schedule;
  if (r.warmup_epochs != 0) f["warmup_epochs"] = r.warmup_epochs;
  if (!r.lr_milestones.empty()) f["lr_milestones"] = r.lr_milestones;
  if (r.lr_gamma != 0.1) f["lr_gamma"] = r.lr_gamma;
  if (r.label_smoothing != 0) f["label_smoothing"] = r.label_smoothing;
  if (r.tta_flip) f["tta"] = "flip";
  if (r.target_accuracy != 0) f["target_accuracy"] = r.target_accuracy;
  if (comm) f["world_size"] = comm->world_size();  // the shards, and so every batch, depend on it
  if (train) {
    f["dataset"] = {{"name", train->name},
                    {"train_images", train->size},
                    {"test_images", test ? test->size : 0},
                    {"digest", DatasetDigest(*train)}};
  }
  return f;
}

RunConfig Session::DefaultRun() const {
  RunConfig r = options.run;
  r.device = device;
  return r;
}

std::string Session::ResultsDir() const { return UserPath(options.results_dir); }

bool Session::writes() const { return !comm || comm->rank() == 0; }

bool Session::restarted() const { return comm && comm->env().restart_count > 0; }

absl::StatusOr<int64_t> Session::FromRank0(int64_t value) const {
  if (!comm) return value;
  TRAINLAB_ASSIGN_OR_RETURN(const std::string got, comm->BroadcastBytes(absl::StrCat(value)));
  int64_t out = 0;
  if (!absl::SimpleAtoi(got, &out)) return absl::InternalError("a garbled decision from rank 0");
  return out;
}

absl::StatusOr<int> Session::AgreedStopSignal() const {
  const int mine = StopSignal();
  if (!comm) return mine;
  TRAINLAB_ASSIGN_OR_RETURN(const std::vector<double> max,
                            comm->MaxOverRanks({static_cast<double>(mine)}));
  const int agreed = static_cast<int>(max[0]);
  if (agreed != 0) RequestStop(agreed);
  return agreed;
}

absl::Status Session::WriteTrace() const {
  if (!trace) return absl::OkStatus();
  const std::string path = UserPath(options.trace);
  TRAINLAB_RETURN_IF_ERROR(trace->WriteJson(path));
  std::printf("Trace written to %s (open in ui.perfetto.dev or chrome://tracing)\n", path.c_str());
  return absl::OkStatus();
}

}  // namespace trainlab::experiments
