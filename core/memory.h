// How much memory this process may still take, so that a configuration that cannot fit is
// refused with one line before it allocates, instead of being killed by the kernel's OOM killer
// (which may kill another process first).
//
// Example:
//   if (std::optional<int64_t> free = AvailableMemoryBytes(); free && need > *free) ...
#ifndef TRAINLAB_CORE_MEMORY_H_
#define TRAINLAB_CORE_MEMORY_H_

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

namespace trainlab {

namespace memory_internal {

inline std::optional<int64_t> ReadNumber(const std::string& path) {
  std::ifstream in(path);
  std::string word;
  if (!(in >> word) || word == "max") return std::nullopt;
  try {
    return static_cast<int64_t>(std::stoll(word));
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace memory_internal

// The kernel's estimate of memory available without swapping (/proc/meminfo's MemAvailable),
// or what the cgroup this process runs in still allows, whichever is lower; nullopt when
// neither can be read.
inline std::optional<int64_t> AvailableMemoryBytes() {
  std::optional<int64_t> available;
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") {
      available = kib * 1024;
      break;
    }
  }
  // cgroup v2, then v1.
  for (const auto& [limit, usage] :
       {std::pair{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
        std::pair{"/sys/fs/cgroup/memory/memory.limit_in_bytes",
                  "/sys/fs/cgroup/memory/memory.usage_in_bytes"}}) {
    const std::optional<int64_t> l = memory_internal::ReadNumber(limit);
    const std::optional<int64_t> u = memory_internal::ReadNumber(usage);
    if (l && u && *l < (int64_t{1} << 60)) {
      const int64_t left = std::max<int64_t>(0, *l - *u);
      available = available ? std::min(*available, left) : left;
      break;
    }
  }
  return available;
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_MEMORY_H_
