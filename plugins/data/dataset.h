// An image-classification dataset held in memory as uint8, the form every reader produces and
// the loader consumes. Images are planar CHW, 3x32x32, one after another:
//   pixels: (N, 3, 32, 32) uint8     labels: (N) uint8 in [0, 10)
// The loader augments and normalises straight from these bytes into float batches.
#ifndef TRAINLAB_PLUGINS_DATA_DATASET_H_
#define TRAINLAB_PLUGINS_DATA_DATASET_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace trainlab::data {

inline constexpr int64_t kChannels = 3;
inline constexpr int64_t kHeight = 32;
inline constexpr int64_t kWidth = 32;
inline constexpr int64_t kPlaneBytes = kHeight * kWidth;         // 1024
inline constexpr int64_t kImageBytes = kChannels * kPlaneBytes;  // 3072
inline constexpr int kNumClasses = 10;

enum class Split { kTrain, kTest };

inline const char* SplitName(Split s) { return s == Split::kTrain ? "train" : "test"; }

// CIFAR-10 channel means and standard deviations, as in the lab handout.
inline constexpr std::array<float, 3> kCifar10Mean = {0.4914f, 0.4822f, 0.4465f};
inline constexpr std::array<float, 3> kCifar10Std = {0.2023f, 0.1994f, 0.2010f};

struct ImageDataset {
  std::string name;             // e.g. "cifar10/train"
  int64_t size = 0;             // number of images
  std::vector<uint8_t> pixels;  // size * kImageBytes
  std::vector<uint8_t> labels;  // size
  std::array<float, 3> mean{};  // per-channel normalisation, in [0, 1] units
  std::array<float, 3> std{};
  double load_seconds = 0;  // reading + decoding time of this split

  const uint8_t* image(int64_t i) const { return pixels.data() + i * kImageBytes; }
};

// The first `n` images of `d` (all of them when it has no more), named "<name>[:n]".
inline ImageDataset FirstImages(const ImageDataset& d, int64_t n) {
  if (n < 0 || n >= d.size) return d;
  ImageDataset head = d;
  head.name = d.name + "[:" + std::to_string(n) + "]";
  head.size = n;
  head.pixels.resize(static_cast<size_t>(n * kImageBytes));
  head.labels.resize(static_cast<size_t>(n));
  return head;
}

}  // namespace trainlab::data

#endif  // TRAINLAB_PLUGINS_DATA_DATASET_H_
