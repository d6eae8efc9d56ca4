#include "experiments/common.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <glog/logging.h>
#include <torch/cuda.h>
#include <torch/optim/optimizer.h>
#include <torch/utils.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/host.h"
#include "core/optimizer.h"
#include "core/strategy.h"
#include "core/trainer.h"
#include "plugins/data/cifar10.h"
#include "plugins/data/fashion_mnist.h"
#include "plugins/data/synthetic.h"
#include "plugins/models/resnet18.h"

DEFINE_string(dataset, "auto",
              "auto | cifar10 | fashion_mnist | synthetic. auto: CIFAR-10 from --data_dir when it "
              "holds cifar-10-batches-bin files, else Fashion-MNIST from Debian's package.");
DEFINE_string(data_dir, "",
              "CIFAR-10 binary folder (data_batch_1.bin ... test_batch.bin), or a Fashion-MNIST "
              "folder for --dataset=fashion_mnist (default: Debian's /usr/share/datasets/fashion-mnist).");
DEFINE_int32(num_workers, 2, "Loader worker threads (0: batches made in the training thread).");
DEFINE_int32(epochs, 5, "Epochs per training run.");
DEFINE_int64(batch_size, 128, "Images per batch.");
DEFINE_double(lr, 0.1, "Learning rate (the lab's 0.1 for every optimizer).");
DEFINE_double(weight_decay, 5e-4, "Weight decay (the lab's 5e-4).");
DEFINE_double(momentum, 0.9, "Momentum, for the optimizers that have it (SGD, Nesterov).");
DEFINE_string(optimizer, "sgd", "Optimizer plugin by name (sgd, sgd_nesterov, adagrad, adadelta, adam, ...).");
DEFINE_string(strategy, "eager",
              "Compile strategy, or several joined with '+' (eager, channels_last, amp_bf16, "
              "cudnn_autotune, cuda_graph).");
DEFINE_string(device, "auto", "auto | cpu | cuda. auto: CUDA when available.");
DEFINE_bool(disable_cuda, false, "Train on the CPU even when CUDA is available (as in the lab).");
DEFINE_int64(max_batches_per_epoch, 0, "Batches per epoch; 0 = the whole training set. For quick CPU runs.");
DEFINE_uint64(seed, 0, "Seed for weights, epoch order and augmentation.");
DEFINE_int32(threads, 0, "Intra-op threads for LibTorch; 0 = every core (LibTorch alone would use half).");
DEFINE_bool(malloc_tuning, true,
            "Keep freed memory in glibc's heap (mmap off, no trimming): avoids ~30% of a CPU step "
            "spent page-faulting fresh activations (see README).");
DEFINE_string(trace, "", "Write a Chrome trace (Perfetto, chrome://tracing) of every batch to this JSON file.");
DEFINE_bool(evaluate, false, "Also report test-set loss and top-1 after each epoch.");
DEFINE_bool(batch_norm, true, "Build ResNet-18 with batch norm.");
DEFINE_int64(synthetic_train, 5000, "Training images of --dataset=synthetic.");
DEFINE_int64(synthetic_test, 1000, "Test images of --dataset=synthetic.");

namespace trainlab::experiments {
namespace {

absl::Status ValidateFlags() {
  auto bad = [](const char* flag, auto value, const char* want) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": ", want));
  };
  if (FLAGS_num_workers < 0) return bad("num_workers", FLAGS_num_workers, "must be >= 0");
  if (FLAGS_epochs < 1) return bad("epochs", FLAGS_epochs, "must be >= 1");
  if (FLAGS_batch_size < 1) return bad("batch_size", FLAGS_batch_size, "must be >= 1");
  if (FLAGS_max_batches_per_epoch < 0) {
    return bad("max_batches_per_epoch", FLAGS_max_batches_per_epoch, "must be >= 0 (0 = all)");
  }
  if (FLAGS_threads < 0) return bad("threads", FLAGS_threads, "must be >= 0 (0 = every core)");
  if (FLAGS_synthetic_train < 1) return bad("synthetic_train", FLAGS_synthetic_train, "must be >= 1");
  if (FLAGS_synthetic_test < 1) return bad("synthetic_test", FLAGS_synthetic_test, "must be >= 1");
  OptimizerSettings s{FLAGS_lr, FLAGS_weight_decay, FLAGS_momentum};
  if (absl::Status st = ValidateOptimizerSettings(s); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--lr/--weight_decay/--momentum: ", st.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<c10::Device> ChooseDevice() {
  const bool cuda = torch::cuda::is_available();
  const std::string& d = FLAGS_device;
  if (d != "auto" && d != "cpu" && d != "cuda") {
    return absl::InvalidArgumentError(absl::StrCat("--device=", d, ": unknown device (auto, cpu or cuda)"));
  }
  if (d == "cuda") {
    if (FLAGS_disable_cuda) return absl::InvalidArgumentError("--device=cuda contradicts --disable_cuda");
    if (!cuda) return absl::FailedPreconditionError("--device=cuda: no CUDA device is available");
    return c10::Device(c10::kCUDA, 0);
  }
  if (d == "auto" && cuda && !FLAGS_disable_cuda) return c10::Device(c10::kCUDA, 0);
  return c10::Device(c10::kCPU);
}

struct LoadedData {
  data::ImageDataset train, test;
  std::string note;
};

absl::StatusOr<LoadedData> LoadData() {
  const std::string dir = UserPath(FLAGS_data_dir);
  std::string kind = FLAGS_dataset;
  std::string note;
  std::string cifar_dir = dir;
  if (!dir.empty() && !data::LooksLikeCifar10Dir(dir) &&
      data::LooksLikeCifar10Dir(dir + "/cifar-10-batches-bin")) {
    cifar_dir = dir + "/cifar-10-batches-bin";
  }
  if (kind == "auto") {
    if (!dir.empty() && data::LooksLikeCifar10Dir(cifar_dir)) {
      kind = "cifar10";
      note = absl::StrCat("auto chose CIFAR-10 from ", cifar_dir);
    } else {
      kind = "fashion_mnist";
      note = dir.empty() ? "auto chose Fashion-MNIST (no --data_dir with CIFAR-10 given)"
                         : absl::StrCat("auto chose Fashion-MNIST (no CIFAR-10 binary files in ", dir, ")");
    }
  }
  LoadedData out;
  if (kind == "cifar10") {
    if (dir.empty()) return absl::InvalidArgumentError("--dataset=cifar10 needs --data_dir (the cifar-10-batches-bin folder)");
    TRAINLAB_ASSIGN_OR_RETURN(out.train, data::ReadCifar10(cifar_dir, data::Split::kTrain));
    TRAINLAB_ASSIGN_OR_RETURN(out.test, data::ReadCifar10(cifar_dir, data::Split::kTest));
  } else if (kind == "fashion_mnist") {
    const std::string fdir = (FLAGS_dataset == "fashion_mnist" && !dir.empty()) ? dir : data::kDebianFashionMnistDir;
    if (!std::filesystem::exists(fdir)) {
      return absl::NotFoundError(absl::StrCat(
          fdir, ": Fashion-MNIST not found; install Debian's dataset-fashion-mnist (./bazelw does) "
                "or pass --data_dir with CIFAR-10"));
    }
    TRAINLAB_ASSIGN_OR_RETURN(out.train, data::ReadFashionMnist(fdir, data::Split::kTrain));
    TRAINLAB_ASSIGN_OR_RETURN(out.test, data::ReadFashionMnist(fdir, data::Split::kTest));
  } else if (kind == "synthetic") {
    out.train = data::MakeSyntheticDataset(FLAGS_synthetic_train, FLAGS_seed + 1000);
    out.test = data::MakeSyntheticDataset(FLAGS_synthetic_test, FLAGS_seed + 2000);
    out.train.name = "synthetic/train (generated, not CIFAR-10)";
    out.test.name = "synthetic/test (generated, not CIFAR-10)";
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--dataset=", FLAGS_dataset, ": unknown dataset (auto, cifar10, fashion_mnist or synthetic)"));
  }
  out.note = note;
  return out;
}

}  // namespace

std::string UserPath(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr && *wd != '\0') {
    return (std::filesystem::path(wd) / path).string();
  }
  return path;
}

std::string FormatSeconds(double s) { return absl::StrFormat("%.4fs", s); }

double RunResult::total(double EpochStats::*field) const {
  double sum = 0;
  for (const EpochStats& e : epochs) sum += e.*field;
  return sum;
}

double RunResult::mean(double EpochStats::*field) const {
  return epochs.empty() ? 0.0 : total(field) / static_cast<double>(epochs.size());
}

std::vector<c10::Device> AvailableDevices() {
  std::vector<c10::Device> devices = {c10::Device(c10::kCPU)};
  if (torch::cuda::is_available() && !FLAGS_disable_cuda) devices.emplace_back(c10::kCUDA, 0);
  return devices;
}

absl::StatusOr<Setup> Setup::FromFlags() {
  TRAINLAB_RETURN_IF_ERROR(ValidateFlags());
  Setup setup;
  TRAINLAB_ASSIGN_OR_RETURN(setup.device, ChooseDevice());

  at::set_num_threads(FLAGS_threads > 0 ? FLAGS_threads : AllCores());
  std::string allocator = "glibc defaults (--nomalloc_tuning)";
  if (FLAGS_malloc_tuning) {
    KeepFreedHeapMemory();
    allocator = absl::StrCat(kKeepFreedHeapMemory, " (--malloc_tuning)");
  }

  TRAINLAB_ASSIGN_OR_RETURN(LoadedData loaded, LoadData());
  setup.data_note = loaded.note;
  setup.train = std::make_shared<const data::ImageDataset>(std::move(loaded.train));
  setup.test = std::make_shared<const data::ImageDataset>(std::move(loaded.test));
  if (!FLAGS_trace.empty()) setup.trace = std::make_unique<TraceRecorder>();

  std::printf("Settings:\n");
  if (!setup.data_note.empty()) std::printf("- Data: %s\n", setup.data_note.c_str());
  std::printf("- Dataset: %s (%" PRId64 " images, read in %.2fs), test %s (%" PRId64 " images)\n",
              setup.train->name.c_str(), setup.train->size, setup.train->load_seconds,
              setup.test->name.c_str(), setup.test->size);
  std::printf("- Device: %s%s\n", setup.device.str().c_str(),
              setup.device.is_cpu() && torch::cuda::is_available() ? " (CUDA available but not used)" : "");
  std::printf("- Intra-op threads: %d; allocator: %s\n", at::get_num_threads(), allocator.c_str());
  std::printf("- Batch size %" PRId64 ", loader workers %d, lr %g, weight decay %g, momentum %g, seed %" PRIu64 "\n",
              FLAGS_batch_size, FLAGS_num_workers, FLAGS_lr, FLAGS_weight_decay, FLAGS_momentum, FLAGS_seed);
  if (FLAGS_max_batches_per_epoch > 0) {
    std::printf("- Epochs cut to %" PRId64 " batches (--max_batches_per_epoch)\n", FLAGS_max_batches_per_epoch);
  }
  std::fflush(stdout);
  return setup;
}

RunConfig Setup::DefaultRun() const {
  RunConfig c;
  c.label = FLAGS_optimizer;
  c.optimizer = FLAGS_optimizer;
  c.strategy = FLAGS_strategy;
  c.num_workers = FLAGS_num_workers;
  c.epochs = FLAGS_epochs;
  c.batch_norm = FLAGS_batch_norm;
  c.device = device;
  c.evaluate = FLAGS_evaluate;
  c.trace = trace.get();
  return c;
}

absl::Status Setup::Finish() const {
  if (!trace) return absl::OkStatus();
  const std::string path = UserPath(FLAGS_trace);
  TRAINLAB_RETURN_IF_ERROR(trace->WriteJson(path));
  std::printf("Trace written to %s (open in ui.perfetto.dev or chrome://tracing)\n", path.c_str());
  return absl::OkStatus();
}

absl::StatusOr<RunResult> RunTraining(const Setup& setup, const RunConfig& config) {
  torch::manual_seed(FLAGS_seed);
  models::ResNet18 model(models::ResNet18Options().batch_norm(config.batch_norm));
  model->to(config.device);

  TRAINLAB_ASSIGN_OR_RETURN(const OptimizerEntry* entry, OptimizerRegistry::Global().Find(config.optimizer));
  const OptimizerSettings settings{FLAGS_lr, FLAGS_weight_decay, FLAGS_momentum};
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<torch::optim::Optimizer> optimizer,
                            entry->make(model->parameters(), settings));
  TRAINLAB_ASSIGN_OR_RETURN(StepOptions step, ResolveStrategies(config.strategy, config.device));

  data::LoaderOptions lo;
  lo.batch_size = FLAGS_batch_size;
  lo.num_workers = config.num_workers;
  lo.seed = FLAGS_seed;
  lo.max_batches = FLAGS_max_batches_per_epoch;
  lo.pin_memory = config.device.is_cuda();
  lo.trace = config.trace;
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<data::BatchLoader> loader,
                            data::BatchLoader::Create(setup.train, lo));
  std::unique_ptr<data::BatchLoader> test_loader;
  if (config.evaluate) {
    data::LoaderOptions to = lo;
    to.shuffle = false;
    to.augment = false;
    to.trace = nullptr;
    TRAINLAB_ASSIGN_OR_RETURN(test_loader, data::BatchLoader::Create(setup.test, to));
  }

  TrainerOptions topts;
  topts.device = config.device;
  topts.step = step;
  topts.optimizer_capturable = entry->capturable;
  topts.trace = config.trace;
  Trainer<models::ResNet18Impl, torch::optim::Optimizer, data::BatchLoader> trainer(
      *model, *optimizer, *loader, topts);

  RunResult result;
  result.label = config.label;
  for (int e = 0; e < config.epochs; ++e) {
    TRAINLAB_ASSIGN_OR_RETURN(EpochStats stats, trainer.TrainEpoch(e));
    result.loader_stages.push_back(loader->stage_times());
    result.total_s += stats.epoch_s;
    if (config.print_blocks) std::fputs(FormatLabBlock(stats).c_str(), stdout);
    if (stats.diverged) {
      result.diverged = stats.diverged;
      std::printf("Diverged: %s, epoch %" PRId64 ", batch %" PRId64 ": loss %g; run stopped.\n",
                  config.label.c_str(), stats.diverged->epoch, stats.diverged->batch,
                  stats.diverged->loss);
      result.epochs.push_back(std::move(stats));
      break;
    }
    result.epochs.push_back(std::move(stats));
    if (test_loader) {
      EvalStats t = trainer.Evaluate(*test_loader, e);
      result.test.push_back(t);
      std::printf("- Test Loss: %.4f, Test Accuracy (Top-1): %.2f%% (%" PRId64 " images)\n", t.loss,
                  t.top1, t.samples);
    }
    std::fflush(stdout);
  }
  return result;
}

int RunMain(int argc, char** argv, const char* usage, const std::function<absl::Status()>& body,
            const std::vector<std::pair<std::string, std::string>>& defaults) {
  const std::string program = std::filesystem::path(argv[0]).filename().string();
  gflags::SetUsageMessage(usage);
  for (const auto& [flag, value] : defaults) {
    gflags::SetCommandLineOptionWithMode(flag.c_str(), value.c_str(), gflags::SET_FLAGS_DEFAULT);
  }
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (argc > 1) {
    std::fprintf(stderr, "%s: error: unexpected argument '%s' (flags are --name=value)\n",
                 program.c_str(), argv[1]);
    return 1;
  }
  absl::Status status;
  try {
    status = body();
  } catch (const c10::Error& e) {
    status = absl::InternalError(absl::StrCat("LibTorch: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    status = absl::InternalError(e.what());
  }
  std::fflush(stdout);
  if (!status.ok()) {
    std::string message(status.message());
    for (char& c : message) {
      if (c == '\n') c = ' ';
    }
    std::fprintf(stderr, "%s: error: %s\n", program.c_str(), message.c_str());
    return 1;
  }
  return 0;
}

void PrintRecap(const std::vector<RunResult>& runs) {
  std::printf("\n===== Recap (averages over each run's epochs) =====\n");
  std::printf("%-22s %16s %10s %12s  %s\n", "run", "train s/epoch", "loss", "top-1 %", "note");
  struct Row {
    std::string label;
    double train, loss, top1;
  };
  std::vector<Row> ok;
  for (const RunResult& r : runs) {
    const double train = r.mean(&EpochStats::train_s), loss = r.mean(&EpochStats::loss),
                 top1 = r.mean(&EpochStats::top1);
    std::string note;
    if (r.diverged) {
      note = absl::StrFormat("diverged at epoch %d, batch %d (loss %g)", r.diverged->epoch,
                             r.diverged->batch, r.diverged->loss);
    } else {
      ok.push_back({r.label, train, loss, top1});
    }
    std::printf("%-22s %16.4f %10.4f %12.2f  %s\n", r.label.c_str(), train, loss, top1, note.c_str());
  }
  auto rank = [&](const char* what, auto key, bool ascending) {
    std::vector<Row> sorted = ok;
    std::stable_sort(sorted.begin(), sorted.end(), [&](const Row& a, const Row& b) {
      return ascending ? key(a) < key(b) : key(a) > key(b);
    });
    std::printf("Ranking by %s:", what);
    for (size_t i = 0; i < sorted.size(); ++i) {
      std::printf("%s %zu. %s", i ? "," : "", i + 1, sorted[i].label.c_str());
    }
    std::printf("%s\n", sorted.empty() ? " (no run finished)" : "");
  };
  rank("training time (fastest first)", [](const Row& r) { return r.train; }, true);
  rank("loss (lowest first)", [](const Row& r) { return r.loss; }, true);
  rank("top-1 accuracy (highest first)", [](const Row& r) { return r.top1; }, false);
}

absl::StatusOr<std::vector<std::string>> SplitList(const std::string& flag, const std::string& value) {
  std::vector<std::string> out;
  for (const std::string& item : std::vector<std::string>(absl::StrSplit(value, ','))) {
    if (item.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": empty item in the list"));
    }
    out.push_back(item);
  }
  return out;
}

}  // namespace trainlab::experiments
