// What the benchmarks' main() share: their own flags are read into a Status (a bad value is
// one line, `NAME: error: --threads=x: ...`, and exit 1, before Google Benchmark sees the rest),
// then Google Benchmark runs on what is left of argv.
//
// Example:
//   int main(int argc, char** argv) {
//     return trainlab::bench::Run("roofline_benchmark", Setup(argc, argv), argc, argv);
//   }
#ifndef TRAINLAB_BENCHMARKS_BENCH_MAIN_H_
#define TRAINLAB_BENCHMARKS_BENCH_MAIN_H_

#include "benchmark/benchmark.h"

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/host.h"

namespace trainlab::bench {

// --threads=N: an intra-op thread count from 1 to kMaxThreads.
inline absl::StatusOr<int> ThreadsFlag(const char* value) {
  int n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < 1 || n > kMaxThreads) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads=", value, ": must be an integer from 1 to ", kMaxThreads));
  }
  return n;
}

// The benchmark's error boundary: `setup`'s error as one line and exit 1; else Google Benchmark
// over the rest of argv (its own unrecognised flags are its error).
inline int Run(const char* program, const absl::Status& setup, int argc, char** argv) {
  if (!setup.ok()) {
    std::fprintf(stderr, "%s: error: %s\n", program, std::string(setup.message()).c_str());
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace trainlab::bench

#endif  // TRAINLAB_BENCHMARKS_BENCH_MAIN_H_
