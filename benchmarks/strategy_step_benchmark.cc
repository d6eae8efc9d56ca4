// Seconds per ResNet-18 training step under each compile strategy (plugins/compile/), on the
// CPU or a GPU: the steady state behind c8's "mean of epochs 6-10", without the loader.
//
// The step is the Trainer's own (PrepareStepRunner: same weight memory format, autocast, cuDNN
// mode and, for cuda_graph, the same warm-up and capture), with SGD as the experiments set it.
// Before the timing, untimed steps run: 5 on a GPU (cuda_graph's 3 warm-up steps, its capture
// and a first replay; cuDNN's autotuning), 1 on the CPU (conv_autotune times its candidates in
// it). Their time is the counter
// `first_steps_s`: the one-off cost that makes c8's first epoch slower. Every timed step ends
// with a device synchronize. Strategies that cannot run on the device are reported as errors
// with the reason (e.g. "cuda_graph needs a CUDA device, not cpu"); the others still run.
//
//   bazel run -c opt //benchmarks:strategy_step_benchmark                        # CPU, batch 32
//   bazel run -c opt --config=cuda //benchmarks:strategy_step_benchmark -- --device=cuda
//   ... -- --strategies=eager,channels_last --batch_sizes=8,32 --threads=2
//
// Flags (ours, removed before Google Benchmark's): --device=auto|cpu|cuda (auto: cuda when
// available), --strategies=LIST (default: every registered strategy,
// channels_last+conv_autotune and cuda_graph+channels_last+amp_bf16, eager first),
// --batch_sizes=LIST (default 128 on a GPU, 32 on the CPU),
// --threads=N (CPU intra-op threads; default every core).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "benchmark/benchmark.h"
#include "benchmarks/bench_main.h"
#include "core/device.h"
#include "core/host.h"
#include "core/kernels.h"
#include "core/optimizer.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "core/timer.h"
#include "core/trainer.h"
#include "plugins/models/resnet18.h"

namespace trainlab {
namespace {

// BM_Strategy/<strategy>/<batch>: one training step; reports images/s and first_steps_s.
void BM_Strategy(benchmark::State& state, const std::string& strategy, c10::Device device) {
  const int64_t b = state.range(0);
  absl::StatusOr<StepOptions> step = ResolveStrategies(strategy, device);
  if (!step.ok()) {
    state.SkipWithError(std::string(step.status().message()).c_str());
    for (auto _ : state) {
    }
    return;
  }
  torch::manual_seed(0);
  models::ResNet18 model;
  model->to(device);
  const OptimizerEntry* sgd = *OptimizerRegistry::Global().Find("sgd");
  std::unique_ptr<torch::optim::Optimizer> optimizer =
      *sgd->make(model->parameters(), OptimizerSettings{});
  absl::StatusOr<std::unique_ptr<StepRunner>> runner =
      PrepareStepRunner(*model, *optimizer, device, sgd->capturable, *step);
  if (!runner.ok()) {
    state.SkipWithError(std::string(runner.status().message()).c_str());
    for (auto _ : state) {
    }
    return;
  }
  // As the Trainer hands batches over: on the device, in the strategy's memory format.
  const at::Tensor x = at::randn({b, 3, 32, 32}).to(device).contiguous(step->memory_format);
  const at::Tensor y = at::randint(0, 10, {b}, at::kLong).to(device);

  const int first_steps = device.is_cuda() ? 5 : 1;
  const Clock::time_point t0 = SyncAndNow(device);
  for (int i = 0; i < first_steps; ++i) {
    if (absl::StatusOr<StepOutput> s = (*runner)->Run(x, y, nullptr); !s.ok()) {
      state.SkipWithError(std::string(s.status().message()).c_str());
      for (auto _ : state) {
      }
      return;
    }
  }
  const double first_s = Seconds(SyncAndNow(device) - t0);

  StepOutput out;
  for (auto _ : state) {
    absl::StatusOr<StepOutput> s = (*runner)->Run(x, y, nullptr);
    SyncDevice(device);
    if (!s.ok()) {
      state.SkipWithError(std::string(s.status().message()).c_str());
      break;
    }
    out = *std::move(s);
  }
  const double loss = out.loss.defined() ? out.loss.item<double>() : 0;
  if (!std::isfinite(loss)) state.SkipWithError("the loss is not finite");
  state.SetItemsProcessed(state.iterations() * b);
  state.counters["first_steps_s"] = first_s;
  state.counters["loss"] = loss;
}

struct Flags {
  std::string device = "auto";
  std::string strategies;
  std::string batch_sizes;
  int threads = AllCores();
  bool portable_kernels = false;
};

// Takes our flags out of argv; a bad value is an error naming it.
absl::Status ParseFlags(int& argc, char** argv, Flags& f) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      const size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 ? argv[i] + n : nullptr;
    };
    if (const char* v = value("--device=")) {
      f.device = v;
    } else if (const char* v = value("--strategies=")) {
      f.strategies = v;
    } else if (const char* v = value("--batch_sizes=")) {
      f.batch_sizes = v;
    } else if (a == "--portable_kernels") {
      f.portable_kernels = true;
    } else if (const char* v = value("--threads=")) {
      absl::StatusOr<int> n = bench::ThreadsFlag(v);
      if (!n.ok()) return n.status();
      f.threads = *n;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return absl::OkStatus();
}

// --help: our flags first, then Google Benchmark's own (benchmark::Initialize prints them).
void PrintOurHelp() {
  std::printf(
      "strategy_step_benchmark: ms per ResNet-18 training step under each compile strategy.\n"
      "  strategy_step_benchmark [--device=auto|cpu|cuda] [--strategies=LIST] "
      "[--batch_sizes=LIST]\n"
      "                          [--threads=N] [--portable_kernels] [Google Benchmark's flags]\n\n"
      "Flags of strategy_step_benchmark:\n"
      "  --device=auto               auto | cpu | cuda (auto: cuda when available).\n"
      "  --strategies=LIST           e.g. eager,channels_last (default: every registered one and\n"
      "                              cuda_graph+channels_last+amp_bf16, eager first).\n"
      "  --batch_sizes=LIST          e.g. 32,128 (default: 128 on a GPU, 32 on the CPU).\n"
      "  --threads=N                 CPU intra-op threads (default: every core).\n"
      "  --portable_kernels          ATen and oneDNN restricted to their AVX2 kernels, as the\n"
      "                              experiments' flag (core/kernels.h).\n\n"
      "Google Benchmark's flags:\n");
}

// Our flags and the process settings, then one benchmark per strategy, registered.
absl::Status Setup(int& argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      PrintOurHelp();
      std::fflush(stdout);
      break;
    }
  }
  Flags f;
  TRAINLAB_RETURN_IF_ERROR(ParseFlags(argc, argv, f));
  // Before the first tensor operation: kernels are chosen there, once.
  if (f.portable_kernels) {
    if (absl::Status st = PinKernels(kPortableKernels); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("--portable_kernels: ", st.message()));
    }
  }
  TRAINLAB_ASSIGN_OR_RETURN(const c10::Device device, ChooseDevice(f.device));
  std::vector<std::string> strategies;
  if (f.strategies.empty()) {
    strategies = {"eager"};  // the baseline first, then the registry's others
    for (const std::string& s : StrategyRegistry::Global().Names()) {
      if (s != "eager") strategies.push_back(s);
    }
    strategies.push_back("channels_last+conv_autotune");
    strategies.push_back("channels_last+amp_bf16+conv_autotune+fused_bn_relu");
    strategies.push_back("cuda_graph+channels_last+amp_bf16");
  } else {
    strategies = std::vector<std::string>(absl::StrSplit(f.strategies, ',', absl::SkipEmpty()));
  }
  // An unknown name is a typo, not a strategy that cannot run here: stop.
  if (absl::Status st = CheckStrategyNames(strategies); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("--strategies: ", st.message()));
  }
  std::vector<int64_t> batches;
  const std::string sizes = !f.batch_sizes.empty() ? f.batch_sizes
                            : device.is_cuda()     ? "128"
                                                   : "32";
  for (const std::string& s : std::vector<std::string>(absl::StrSplit(sizes, ','))) {
    int64_t b = 0;
    if (!absl::SimpleAtoi(s, &b) || b < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--batch_sizes: '", s, "' is not a positive integer"));
    }
    batches.push_back(b);
  }

  // The experiment binaries' settings (--malloc_tuning, every core as an intra-op thread).
  KeepFreedHeapMemory();
  at::set_num_threads(f.threads);
  benchmark::AddCustomContext("device", device.str());
  benchmark::AddCustomContext("cpu_kernels", KernelsInUse().str());
  benchmark::AddCustomContext("intra_op_threads", std::to_string(f.threads));
  benchmark::AddCustomContext("strategies", absl::StrJoin(strategies, ","));
  for (const std::string& s : strategies) {
    auto* bm = benchmark::RegisterBenchmark(("BM_Strategy/" + s).c_str(), BM_Strategy, s, device);
    for (int64_t b : batches) bm->Arg(b);
    bm->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace trainlab

int main(int argc, char** argv) {
  const absl::Status setup = trainlab::Setup(argc, argv);
  return trainlab::bench::Run("strategy_step_benchmark", setup, argc, argv);
}
