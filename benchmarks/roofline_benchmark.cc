// The roofs the per-layer profile compares layers with, on the CPU: the FLOP/s of an n x n matrix
// multiply in float32 and bfloat16 (at::mm: the BLAS LibTorch was built with, oneDNN for
// bfloat16), of a 3x3 convolution (oneDNN), and the bytes/s of a float32 triad
// a = b + 3c (12 bytes per element) over vectors of N elements, from inside the cache to far
// beyond it. Random inputs; Google Benchmark's own warm-up and repeats.
//
//   bazel run -c opt //benchmarks:roofline_benchmark
//   bazel run -c opt //benchmarks:roofline_benchmark -- --threads=1
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstring>
#include <string>

#include "benchmark/benchmark.h"
#include "benchmarks/bench_main.h"
#include "core/host.h"

namespace {

// The warm-up call; false (the benchmark skipped, with LibTorch's reason) when this CPU's kernels
// cannot run it: bfloat16 needs oneDNN's AVX-512 kernels (an AVX2-only CPU, or DNNL_MAX_CPU_ISA
// below AVX-512, has none).
template <class F>
bool Runs(benchmark::State& state, F&& fn) {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return false;
  }
}

template <at::ScalarType kDtype>
void BM_Matmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  at::TensorOptions t = at::TensorOptions().dtype(kDtype);
  at::Tensor a = at::randn({n, n}, t), b = at::randn({n, n}, t), c = at::empty({n, n}, t);
  if (!Runs(state, [&] { at::mm_out(c, a, b); })) return;
  for (auto _ : state) at::mm_out(c, a, b);
  state.counters["flops_per_s"] = benchmark::Counter(2.0 * static_cast<double>(n) * n * n,
                                                     benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_TEMPLATE(BM_Matmul, at::kFloat)->Arg(64)->Arg(512)->Arg(1024)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Matmul, at::kBFloat16)->Arg(64)->Arg(512)->Arg(1024)->UseRealTime();

// A 3x3 convolution as ResNet-18's layer3 runs it (256 -> 256 channels at 8x8, padding 1) over
// a batch of B: the compute roof through the engine the convolutions use (oneDNN on the CPU),
// which need not be the matrix multiply's (Debian's LibTorch sends at::mm to the BLAS that
// /etc/alternatives names: the reference BLAS unless OpenBLAS is installed).
template <at::ScalarType kDtype>
void BM_Conv3x3(benchmark::State& state) {
  const int64_t b = state.range(0);
  at::TensorOptions t = at::TensorOptions().dtype(kDtype);
  at::Tensor x = at::randn({b, 256, 8, 8}, t), w = at::randn({256, 256, 3, 3}, t);
  if (!Runs(state, [&] { (void)at::conv2d(x, w, {}, 1, 1); })) return;
  for (auto _ : state) benchmark::DoNotOptimize(at::conv2d(x, w, {}, 1, 1));
  state.counters["flops_per_s"] =
      benchmark::Counter(2.0 * static_cast<double>(b) * 256 * 8 * 8 * 256 * 9,
                         benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_TEMPLATE(BM_Conv3x3, at::kFloat)->Arg(8)->Arg(128)->UseRealTime();
BENCHMARK_TEMPLATE(BM_Conv3x3, at::kBFloat16)->Arg(8)->Arg(128)->UseRealTime();

void BM_Triad(benchmark::State& state) {
  const int64_t n = state.range(0);
  at::Tensor a = at::empty({n}), b = at::rand({n}), c = at::rand({n});
  at::add_out(a, b, c, 3.0);
  for (auto _ : state) at::add_out(a, b, c, 3.0);
  state.counters["bytes_per_s"] = benchmark::Counter(12.0 * static_cast<double>(n),
                                                     benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Triad)->Arg(64)->Arg(1 << 16)->Arg(1 << 20)->Arg(32 << 20)->UseRealTime();

}  // namespace

// Our flag (--threads=N), taken out of argv before Google Benchmark sees the rest.
absl::Status Setup(int& argc, char** argv) {
  int threads = trainlab::AllCores();
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      absl::StatusOr<int> n = trainlab::bench::ThreadsFlag(argv[i] + 10);
      if (!n.ok()) return n.status();
      threads = *n;
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  at::set_num_threads(threads);
  benchmark::AddCustomContext("intra_op_threads", std::to_string(threads));
  return absl::OkStatus();
}

int main(int argc, char** argv) {
  const absl::Status setup = Setup(argc, argv);
  return trainlab::bench::Run("roofline_benchmark", setup, argc, argv);
}
