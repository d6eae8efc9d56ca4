// Process-wide CPU settings that every trainlab binary applies, and every benchmark too, so that
// a benchmark's numbers are the binaries' numbers (docs/measurements.md: together they are worth
// ~20% of a CPU training step on LibTorch 1.13).
//
// Example:
//   at::set_num_threads(trainlab::AllCores());
//   trainlab::KeepFreedHeapMemory();
#ifndef TRAINLAB_CORE_HOST_H_
#define TRAINLAB_CORE_HOST_H_

#include <malloc.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace trainlab {

// The first value of `key` in /proc/cpuinfo ("model name", "cpu MHz", "flags"), trimmed; nullopt
// when the file or the key is missing.
inline std::optional<std::string> CpuInfoField(std::string_view key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  auto trim = [](std::string_view s) {
    const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
  };
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon != std::string::npos && trim(std::string_view(line).substr(0, colon)) == key) {
      return trim(std::string_view(line).substr(colon + 1));
    }
  }
  return std::nullopt;
}

// Whether /proc/cpuinfo lists `flag` among the CPU's flags ("avx512_bf16", "amx_bf16").
inline bool CpuHasFlag(std::string_view flag) {
  const std::optional<std::string> flags = CpuInfoField("flags");
  if (!flags) return false;
  const std::string padded = " " + *flags + " ";
  return padded.find(" " + std::string(flag) + " ") != std::string::npos;
}

// Every core: LibTorch 1.x alone starts with half of them on small machines.
inline int AllCores() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// glibc keeps freed memory in its heap: big blocks are never mmap-ed (they would be page-faulted
// afresh every step) and the heap is never trimmed back to the kernel.
// The most threads a flag or a results file may name (intra-op threads, loader workers): past
// it, a typo would start thousands of threads.
inline constexpr int kMaxThreads = 1024;

inline constexpr const char* kKeepFreedHeapMemory = "glibc with mmap off and no trimming";
inline void KeepFreedHeapMemory() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_HOST_H_
