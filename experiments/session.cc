#include "experiments/session.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/host.h"
#include "core/model.h"
#include "core/status_macros.h"
#include "experiments/json_reader.h"
#include "experiments/user_path.h"
#include "plugins/data/cifar10.h"
#include "plugins/data/fashion_mnist.h"
#include "plugins/data/synthetic.h"

namespace trainlab::experiments {
namespace {

absl::StatusOr<c10::Device> ChooseDevice(const ExperimentOptions& c) {
  const bool cuda = torch::cuda::is_available();
  if (c.device == "cuda") {
    if (!cuda) return absl::FailedPreconditionError("--device=cuda: no CUDA device is available");
    return c10::Device(c10::kCUDA, 0);
  }
  if (c.device == "auto" && cuda && !c.disable_cuda) return c10::Device(c10::kCUDA, 0);
  return c10::Device(c10::kCPU);
}

// The images and labels, hashed: the dataset's identity in a checkpoint's fingerprint.
std::string DatasetDigest(const data::ImageDataset& d) {
  Fnv1a h;
  h.Add(d.pixels.data(), d.pixels.size());
  h.Add(d.labels.data(), d.labels.size());
  return h.Hex();
}

// Opens the session's checkpoint file when --checkpoint_dir is set.
absl::Status OpenCheckpointer(Session& s) {
  if (s.options.checkpoint_dir.empty()) return absl::OkStatus();
  std::string holder = absl::StrJoin(s.options.command_line, " ");
  absl::StrAppend(&holder, " (pid ", getpid(), ")");
  TRAINLAB_ASSIGN_OR_RETURN(s.checkpointer,
                            Checkpointer::Open({.dir = UserPath(s.options.checkpoint_dir),
                                                .experiment = s.options.experiment,
                                                .fingerprint = s.Fingerprint(),
                                                .resume = s.options.resume,
                                                .holder = EscapeInvalidUtf8(holder)}));
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

// Under torchrun (or RANK/WORLD_SIZE/MASTER_* set by hand) joins the process group. Ranks other
// than 0 then write nothing: no stdout, results, trace, progress or saved model.
absl::Status JoinDataParallel(Session& s) {
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<distributed::DistEnv> env, distributed::ReadDistEnv());
  if (!env) return absl::OkStatus();
  ExperimentOptions& c = s.options;
  if (!c.checkpoint_dir.empty()) {
    return absl::UnimplementedError(
        absl::StrCat("--checkpoint_dir with WORLD_SIZE=", env->world_size,
                     ": checkpoints of data-parallel runs are not supported yet"));
  }
  TRAINLAB_ASSIGN_OR_RETURN(
      std::unique_ptr<distributed::Communicator> comm,
      distributed::Communicator::Connect(*env, std::chrono::seconds(c.dist_timeout_s)));
  s.comm = std::move(comm);
  if (env->rank != 0) {
    c.results_dir.clear();
    c.trace.clear();
    c.progress = "off";
    c.run.save_model.clear();
    if (std::freopen("/dev/null", "w", stdout) == nullptr) {
      return absl::InternalError("cannot silence stdout on a rank other than 0");
    }
  }
  return absl::OkStatus();
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
  TRAINLAB_ASSIGN_OR_RETURN(s.device, ChooseDevice(c));

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
  if (r.max_batches_per_epoch > 0) {
    std::printf("- Epochs cut to %" PRId64 " batches (--max_batches_per_epoch)\n",
                r.max_batches_per_epoch);
  }
  if (c.repeats > 1) std::printf("- Each configuration runs %d times (--repeats)\n", c.repeats);
  if (s.comm) {
    std::printf("- Data-parallel over %d ranks (c10d, Gloo): %s; --batch_size is per rank (%" PRId64
                " images per step in all); loss and top-1 over all ranks, times rank 0's; "
                "batch norm statistics per rank\n",
                s.comm->world_size(), s.comm->env().str().c_str(),
                r.batch_size * s.comm->world_size());
  }
  if (s.checkpointer) {
    std::printf("- Checkpoints: %s%s\n", s.checkpointer->path().c_str(),
                c.resume ? " (resuming)" : "");
  }
  std::fflush(stdout);
  return s;
}

absl::StatusOr<Session> Session::Bare(ExperimentOptions options) {
  Session s;
  s.options = std::move(options);
  TRAINLAB_RETURN_IF_ERROR(CheckOutputPaths(s.options));
  s.allocator = "not set (nothing trains)";
  s.kernels = KernelsInUse();
  return s;
}

absl::StatusOr<Session> Session::With(ExperimentOptions other) const {
  Session s;
  s.options = std::move(other);
  TRAINLAB_RETURN_IF_ERROR(CheckOutputPaths(s.options));
  TRAINLAB_ASSIGN_OR_RETURN(s.device, ChooseDevice(s.options));
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
      {"device", device.str()},
      {"portable_kernels", options.portable_kernels},
  };
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

absl::Status Session::WriteTrace() const {
  if (!trace) return absl::OkStatus();
  const std::string path = UserPath(options.trace);
  TRAINLAB_RETURN_IF_ERROR(trace->WriteJson(path));
  std::printf("Trace written to %s (open in ui.perfetto.dev or chrome://tracing)\n", path.c_str());
  return absl::OkStatus();
}

}  // namespace trainlab::experiments
