// libFuzzer target: the checkpoint reader (LibTorch's zip archive, the metadata JSON, the
// finished runs' records) from arbitrary bytes written as DIR/c2.ckpt. Must return a Status.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "experiments/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    // Memory-backed /dev/shm when there is one: a file per input is the cost of this target.
    const char* base = std::getenv("TEST_TMPDIR");
    std::string d = std::string(base != nullptr                 ? base
                                : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                                : "/tmp") +
                    "/ckpt_fuzzer." + std::to_string(getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  FILE* f = std::fopen((dir + "/c2.ckpt").c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  (void)trainlab::experiments::Checkpointer::Open(dir, "c2", {{"lr", 0.1}}, /*resume=*/true);
  return 0;
}
