// libFuzzer target: the (maybe) gzipped file reader from arbitrary bytes written to a file.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "plugins/data/fashion_mnist.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    // Memory-backed /dev/shm when there is one: a file per input is the cost of this target.
    const char* dir = std::getenv("TEST_TMPDIR");
    return std::string(dir != nullptr                  ? dir
                       : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                       : "/tmp") +
           "/gz_fuzzer." + std::to_string(getpid()) + ".gz";
  }();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  (void)trainlab::data::ReadMaybeGzipped(path);
  return 0;
}
