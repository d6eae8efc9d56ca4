// Seconds per ResNet-18 training step (forward, loss, backward, SGD step) on the CPU, with the
// settings the experiment binaries use: every core as an intra-op thread and glibc's allocator
// told to keep freed memory (--malloc_tuning). `--nomalloc_tuning` and `--threads=N` show what
// each setting is worth; `--portable_kernels` pins ATen and oneDNN to their AVX2 kernels as the
// experiments' flag does (core/kernels.h). Random input; the first step is a warm-up outside the
// timing.
//
//   bazel run -c opt //benchmarks:train_step_benchmark -- --benchmark_filter=BM_TrainStep/128
//   ... -- --benchmark_filter=BM_TrainStepNvtx/32 --benchmark_repetitions=5   (--nvtx's cost)
//   ... -- --benchmark_filter='BM_TrainStepTensorBoard/32/|BM_BoardBatch'  (--tensorboard_dir's)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_main.h"
#include "core/host.h"
#include "core/kernels.h"
#include "core/nvtx.h"
#include "core/profiling/layer_tracer.h"
#include "core/profiling/nvtx_layers.h"
#include "core/step.h"
#include "experiments/tensorboard/board.h"
#include "plugins/models/resnet18.h"

namespace {

// ResNet-18 with the lab's SGD and a random batch of B images, seeded.
struct StepSetup {
  explicit StepSetup(int64_t b)
      : model((torch::manual_seed(0), trainlab::models::ResNet18())),
        sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4)),
        x(at::randn({b, 3, 32, 32})),
        y(at::randint(0, 10, {b}, at::kLong)) {}
  void Step() {
    sgd.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    sgd.step();
  }
  trainlab::models::ResNet18 model;
  torch::optim::SGD sgd;
  at::Tensor x, y;
};

// BM_TrainStep/B: one SGD step on a batch of B images; reports images/s.
void BM_TrainStep(benchmark::State& state) {
  const int64_t b = state.range(0);
  StepSetup s(b);
  s.Step();  // warm-up: allocations, oneDNN primitives, momentum buffers
  for (auto _ : state) s.Step();
  state.SetItemsProcessed(state.iterations() * b);
  state.counters["threads"] = at::get_num_threads();
}
BENCHMARK(BM_TrainStep)->Arg(8)->Arg(32)->Arg(128)->Unit(benchmark::kSecond)->UseRealTime();

// BM_TrainStepTraced/B: the same step with the per-layer profile's instrumentation on
// (core/profiling/layer_tracer.h: a RecordFunction callback on every op, with inputs): against
// BM_TrainStep/B, what the instrumentation costs. Counters: the layers found and the share of the
// step's time they account for (forward + backward, the optimizer step excluded).
void BM_TrainStepTraced(benchmark::State& state) {
  const int64_t b = state.range(0);
  StepSetup s(b);
  trainlab::LayerTracer tracer(*s.model);
  s.Step();
  double covered = 0, total = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    {
      trainlab::LayerTracer::Recording r(tracer);
      s.Step();
    }
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const trainlab::TracedOp& op : tracer.ops()) covered += op.forward_s + op.backward_s;
  }
  state.SetItemsProcessed(state.iterations() * b);
  state.counters["layers"] = static_cast<double>(tracer.ops().size());
  state.counters["coverage"] = total > 0 ? covered / total : 0;
}
BENCHMARK(BM_TrainStepTraced)->Arg(8)->Arg(32)->Arg(128)->Unit(benchmark::kSecond)->UseRealTime();

// BM_TrainStepNvtx/B/L: the eager step of the experiments (core/step.h) inside a "step" range,
// with --nvtx off (L=0), phases (1) or layers (2: a names-only tracer recording each step, its
// listener pushing each layer's range). Against L=0, what the ranges cost: with no tool attached,
// NVTX's own design says nothing; with one, what the tool does with them
// (NVTX_INJECTION64_PATH=bazel-bin/tests/nvtx/libnvtx_recorder.so: its cheapest form, recording
// nothing, unless NVTX_RECORD_FILE names a file).
void BM_TrainStepNvtx(benchmark::State& state) {
  const int64_t b = state.range(0);
  const auto level = static_cast<trainlab::nvtx::Level>(state.range(1));
  StepSetup s(b);
  trainlab::StepFunctions fns;
  fns.module = s.model.get();
  fns.forward = [&s](const at::Tensor& x) { return s.model->forward(x); };
  fns.zero_grad = [&s] { s.sgd.zero_grad(); };
  fns.optimizer_step = [&s] { s.sgd.step(); };
  const trainlab::StepOptions options;
  trainlab::NvtxLayerRanges ranges;
  trainlab::LayerTracer tracer(*s.model, std::unique_ptr<trainlab::Timeline>());
  tracer.set_listener(&ranges);
  trainlab::nvtx::SetLevel(level);
  auto step = [&] {
    std::optional<trainlab::LayerTracer::Recording> layers;
    if (level == trainlab::nvtx::Level::kLayers) layers.emplace(tracer);
    trainlab::nvtx::PhaseRange range(trainlab::nvtx::Phase::kStep);
    benchmark::DoNotOptimize(trainlab::EagerStep(fns, options, s.x, s.y, nullptr).loss);
  };
  step();  // warm-up; and NVTX's first call, which loads a tool when one is named
  for (auto _ : state) step();
  trainlab::nvtx::SetLevel(trainlab::nvtx::Level::kOff);
  state.SetItemsProcessed(state.iterations() * b);
  state.SetLabel(trainlab::nvtx::LevelName(level));
}
BENCHMARK(BM_TrainStepNvtx)
    ->ArgsProduct({{8, 32, 128}, {0, 1, 2}})
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

// A fresh folder for the event files the TensorBoard benchmarks write ($TMPDIR or /tmp).
std::string BoardDir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/trainlab_bench_", name, "_", getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

// A run board of experiment "bench" in `dir`, as --tensorboard_dir opens one.
std::unique_ptr<trainlab::experiments::RunBoard> OpenBoard(
    const std::string& dir, std::unique_ptr<trainlab::experiments::ExperimentBoard>& owner) {
  auto board = trainlab::experiments::ExperimentBoard::Open(dir, "bench", 1);
  if (!board.ok()) return nullptr;
  owner = std::move(*board);
  return owner->OpenRun("step", 1, {{"batch_size", 1.0}}, 1);
}

// BM_TrainStepTensorBoard/B/W: the step with (W=1) or without (W=0) --tensorboard_dir's
// per-batch work after it: the batch's seven scalars serialized into the writer's buffer (the
// background thread writes them to the file every 2 s, off this thread). Against W=0, what the
// flag costs a step.
void BM_TrainStepTensorBoard(benchmark::State& state) {
  const int64_t b = state.range(0);
  const bool write = state.range(1) != 0;
  StepSetup s(b);
  const std::string dir = BoardDir("step");
  std::unique_ptr<trainlab::experiments::ExperimentBoard> owner;
  std::unique_ptr<trainlab::experiments::RunBoard> board = write ? OpenBoard(dir, owner) : nullptr;
  if (write && board == nullptr) {
    state.SkipWithError(("cannot open a run board in " + dir).c_str());
    return;
  }
  s.Step();  // warm-up
  int64_t step = 0;
  for (auto _ : state) {
    s.Step();
    if (board) {
      board->Batch({.index = step,
                    .size = b,
                    .wait_s = 0.001,
                    .train_s = 0.1,
                    .loss = 2.3,
                    .correct = b / 10,
                    .lr = 0.01},
                   step + 1);
    }
    ++step;
  }
  board.reset();
  owner.reset();
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations() * b);
  state.SetLabel(write ? "tensorboard" : "off");
}
BENCHMARK(BM_TrainStepTensorBoard)
    ->ArgsProduct({{8, 32, 128}, {0, 1}})
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

// BM_BoardBatch: RunBoard::Batch alone, the training thread's share of --tensorboard_dir per
// batch (one Event of seven scalars serialized into the buffer), in nanoseconds.
void BM_BoardBatch(benchmark::State& state) {
  const std::string dir = BoardDir("batch");
  std::unique_ptr<trainlab::experiments::ExperimentBoard> owner;
  std::unique_ptr<trainlab::experiments::RunBoard> board = OpenBoard(dir, owner);
  if (board == nullptr) {
    state.SkipWithError(("cannot open a run board in " + dir).c_str());
    return;
  }
  int64_t step = 0;
  for (auto _ : state) {
    board->Batch({.index = step,
                  .size = 128,
                  .wait_s = 0.001,
                  .train_s = 0.1,
                  .loss = 2.3,
                  .correct = 13,
                  .lr = 0.01},
                 step + 1);
    ++step;
  }
  board.reset();
  owner.reset();
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BoardBatch)->Iterations(200000);  // ~30 MB of events, not minutes of them

}  // namespace

// Our flags, taken out of argv before Google Benchmark sees the rest, and the process settings
// they ask for (before the first tensor operation: kernels are chosen there, once).
absl::Status Setup(int& argc, char** argv) {
  bool malloc_tuning = true;
  bool portable_kernels = false;
  int threads = trainlab::AllCores();
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--nomalloc_tuning") == 0) {
      malloc_tuning = false;
    } else if (std::strcmp(argv[i], "--portable_kernels") == 0) {
      portable_kernels = true;
    } else if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      absl::StatusOr<int> n = trainlab::bench::ThreadsFlag(argv[i] + 10);
      if (!n.ok()) return n.status();
      threads = *n;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  if (portable_kernels) {
    if (absl::Status st = trainlab::PinKernels(trainlab::kPortableKernels); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("--portable_kernels: ", st.message()));
    }
  }
  if (malloc_tuning) trainlab::KeepFreedHeapMemory();
  at::set_num_threads(threads);
  benchmark::AddCustomContext("malloc_tuning", malloc_tuning ? "on" : "off");
  benchmark::AddCustomContext("intra_op_threads", std::to_string(threads));
  benchmark::AddCustomContext("cpu_kernels", trainlab::KernelsInUse().str());
  return absl::OkStatus();
}

int main(int argc, char** argv) {
  const absl::Status setup = Setup(argc, argv);
  return trainlab::bench::Run("train_step_benchmark", setup, argc, argv);
}
