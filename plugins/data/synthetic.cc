#include "plugins/data/synthetic.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "plugins/data/cifar10.h"
#include "plugins/data/dataset_registry.h"
#include "plugins/data/random.h"

namespace trainlab::data {
namespace {

// One distinct colour per class (RGB, 0-255).
constexpr uint8_t kPalette[kNumClasses][3] = {
    {200, 40, 40},  {40, 200, 40},  {40, 40, 200},  {200, 200, 40}, {200, 40, 200},
    {40, 200, 200}, {230, 130, 30}, {120, 60, 200}, {90, 90, 90},   {240, 240, 240}};

}  // namespace

ImageDataset MakeSyntheticDataset(int64_t n, uint64_t seed) {
  ImageDataset ds;
  ds.name = "synthetic";
  ds.size = n;
  ds.mean = kCifar10Mean;
  ds.std = kCifar10Std;
  ds.pixels.resize(static_cast<size_t>(n * kImageBytes));
  ds.labels.resize(static_cast<size_t>(n));
  const std::vector<int64_t> order = Permutation(n, MixSeed(seed, 1, 0));
  SplitMix64 rng(MixSeed(seed, 2, 0));
  for (int64_t i = 0; i < n; ++i) {
    const int c = static_cast<int>(order[i] % kNumClasses);
    ds.labels[i] = static_cast<uint8_t>(c);
    const int64_t dx = rng.Below(7), dy = rng.Below(7);  // shift of 0..6, centred at 3
    // Stripes: class c has period 4 + c/2, vertical for even classes, horizontal for odd.
    const int64_t period = 4 + c / 2;
    uint8_t* img = ds.pixels.data() + i * kImageBytes;
    for (int64_t ch = 0; ch < kChannels; ++ch) {
      for (int64_t y = 0; y < kHeight; ++y) {
        for (int64_t x = 0; x < kWidth; ++x) {
          const int64_t u = (c % 2 == 0) ? x + dx : y + dy;
          const bool on = (u / period) % 2 == 0;
          const int base = on ? kPalette[c][ch] : kPalette[c][ch] / 3;
          const int noise = static_cast<int>(rng.Below(61)) - 30;  // +-30
          img[ch * kPlaneBytes + y * kWidth + x] =
              static_cast<uint8_t>(std::clamp(base + noise, 0, 255));
        }
      }
    }
  }
  return ds;
}

absl::Status WriteSyntheticCifar10Dir(const std::string& dir, int64_t train_n, int64_t test_n,
                                      uint64_t seed) {
  if (train_n < 5 || test_n < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a synthetic CIFAR-10 folder needs at least 5 training images (one per data_batch file) "
        "and 1 test image, got ",
        train_n, " and ", test_n));
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat(dir, ": cannot create: ", ec.message()));
  const ImageDataset train = MakeSyntheticDataset(train_n, seed);
  const std::vector<std::string> files = Cifar10Files(Split::kTrain);
  const int64_t parts = static_cast<int64_t>(files.size());
  for (int64_t f = 0; f < parts; ++f) {
    const int64_t begin = train_n * f / parts, end = train_n * (f + 1) / parts;
    absl::Status s = WriteCifar10File((std::filesystem::path(dir) / files[f]).string(),
                                      train.image(begin), train.labels.data() + begin, end - begin);
    if (!s.ok()) return s;
  }
  const ImageDataset test = MakeSyntheticDataset(test_n, seed + 1);
  return WriteCifar10File((std::filesystem::path(dir) / Cifar10Files(Split::kTest)[0]).string(),
                          test.image(0), test.labels.data(), test_n);
}

namespace {

// --dataset=synthetic: generated images (for tests and benchmarks), never chosen by auto.
const bool kRegistered = DatasetRegistry::Global().Register(
    "synthetic",
    {.title = "synthetic", .load = [](const DatasetRequest& r) -> absl::StatusOr<TrainAndTest> {
       TrainAndTest out{.train = MakeSyntheticDataset(r.synthetic_train, r.seed + 1000),
                        .test = MakeSyntheticDataset(r.synthetic_test, r.seed + 2000)};
       out.train.name = "synthetic/train (generated, not CIFAR-10)";
       out.test.name = "synthetic/test (generated, not CIFAR-10)";
       return out;
     }});

}  // namespace

}  // namespace trainlab::data
