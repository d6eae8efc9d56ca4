// Fuzz target: the checkpoint reader (the frame, LibTorch's zip archive, the metadata JSON and
// the finished runs' records, checkpoint_format.h) from arbitrary bytes written as DIR/c2.ckpt,
// then the fingerprint comparison. Must return a Status, never crash or hang.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "experiments/checkpoint/checkpoint_format.h"

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
  const std::string path = dir + "/c2.ckpt";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  absl::StatusOr<trainlab::experiments::CheckpointFile> file =
      trainlab::experiments::ReadCheckpointFile(path);
  if (file.ok()) {
    (void)trainlab::experiments::CompareFingerprints(file->meta.fingerprint, {{"lr", 0.1}},
                                                     {"epochs"});
  }
  return 0;
}
