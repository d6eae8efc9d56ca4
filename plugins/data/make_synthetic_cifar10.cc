// Writes a synthetic data set in CIFAR-10's binary format (data_batch_1..5.bin, test_batch.bin),
// for tests, benchmarks and trying the tools without the real CIFAR-10. It is not CIFAR-10.
//
//   bazel run //plugins/data:make_synthetic_cifar10 -- --out=/tmp/synthetic-cifar --train=5000
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/cli.h"
#include "gflags/gflags.h"
#include "plugins/data/synthetic.h"

DEFINE_string(out, "", "Folder to write (created if missing). Required.");
DEFINE_int64(train, 5000, "Training images (at least 5: one per data_batch file).");
DEFINE_int64(test, 1000, "Test images (at least 1).");
DEFINE_uint64(seed, 1, "Seed of the generator.");

int main(int argc, char** argv) {
  const absl::StatusOr<trainlab::Parsed> parsed = trainlab::ParseFlags(
      &argc, &argv,
      "make_synthetic_cifar10: writes a synthetic data set in CIFAR-10's binary "
      "format (not CIFAR-10).\n"
      "  make_synthetic_cifar10 --out=DIR [--train=5000] [--test=1000] [--seed=1]",
      {{"Flags", {"out", "train", "test", "seed"}}});
  if (!parsed.ok()) {
    std::fprintf(stderr, "make_synthetic_cifar10: error: %s\n",
                 std::string(parsed.status().message()).c_str());
    return 1;
  }
  if (*parsed == trainlab::Parsed::kHelpShown) return 0;
  if (FLAGS_out.empty()) {
    std::fprintf(stderr, "make_synthetic_cifar10: error: --out is required\n");
    return 1;
  }
  if (FLAGS_train < 5 || FLAGS_test < 1) {
    std::fprintf(stderr, "make_synthetic_cifar10: error: need --train >= 5 and --test >= 1\n");
    return 1;
  }
  std::string out = FLAGS_out;
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
      wd && !out.empty() && out[0] != '/') {
    out = std::string(wd) + "/" + out;
  }
  absl::Status s =
      trainlab::data::WriteSyntheticCifar10Dir(out, FLAGS_train, FLAGS_test, FLAGS_seed);
  if (!s.ok()) {
    std::fprintf(stderr, "make_synthetic_cifar10: error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("wrote %lld training and %lld test images (synthetic) to %s\n",
              static_cast<long long>(FLAGS_train), static_cast<long long>(FLAGS_test), out.c_str());
  return 0;
}
