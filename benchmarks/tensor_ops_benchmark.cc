// Elementwise and matmul throughput of the linked LibTorch, on the CPU. A baseline for the
// machine: if these numbers move, the training-step benchmarks will move too.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "benchmark/benchmark.h"

namespace {

// BM_Matmul/N: (N, N) x (N, N) in float32; reports FLOP/s as items.
void BM_Matmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  at::Tensor a = at::randn({n, n});
  at::Tensor b = at::randn({n, n});
  for (auto _ : state) {
    at::Tensor c = at::matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * 2 * n * n * n);
  state.counters["threads"] = at::get_num_threads();
}
BENCHMARK(BM_Matmul)->Arg(256)->Arg(512);

// BM_AddRelu/N: relu(a + b) over N floats; reports bytes touched.
void BM_AddRelu(benchmark::State& state) {
  const int64_t n = state.range(0);
  at::Tensor a = at::randn({n});
  at::Tensor b = at::randn({n});
  for (auto _ : state) {
    at::Tensor c = at::relu(a + b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * 3 * n * sizeof(float));
}
BENCHMARK(BM_AddRelu)->Arg(1 << 20);

}  // namespace

BENCHMARK_MAIN();
