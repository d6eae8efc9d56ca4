// The lab's augmentation on uint8 CHW images, one stage per function so each can be timed:
//   RandomCrop(32, padding=4, zero fill) -> RandomHorizontalFlip(p=0.5) -> ToTensor + Normalize
// Each stage works on a whole batch laid out contiguously (n, 3, 32, 32); no tensor ops, no
// allocation. Normalisation goes through a 256-entry table per channel:
//   out = (v / 255 - mean[c]) / std[c]
// so a zero-filled pad pixel becomes -mean/std, as torchvision's pad-then-normalise gives.
//
// Example:
//   NormalizeTable table(kCifar10Mean, kCifar10Std);
//   CropBatch(gathered, params, n, cropped);
//   FlipBatch(cropped, params, n);
//   NormalizeBatch(cropped, n, table, batch_floats);
#ifndef TRAINLAB_PLUGINS_DATA_AUGMENT_H_
#define TRAINLAB_PLUGINS_DATA_AUGMENT_H_

#include <array>
#include <cstdint>

#include "plugins/data/dataset.h"
#include "plugins/data/random.h"

namespace trainlab::data {

inline constexpr int kCropPadding = 4;  // the lab's RandomCrop(32, padding=4)

// One image's random choices. The crop window's top-left corner in the padded 40x40 image is
// (dy, dx), each in [0, 2 * kCropPadding]; (4, 4) is the identity crop.
struct AugmentParams {
  uint8_t dx = kCropPadding;
  uint8_t dy = kCropPadding;
  bool flip = false;
};

// Draws crop offsets and flip as torchvision does: offsets uniform in [0, 8], flip with p=0.5.
inline AugmentParams DrawAugment(SplitMix64& rng) {
  AugmentParams p;
  p.dx = static_cast<uint8_t>(rng.Below(2 * kCropPadding + 1));
  p.dy = static_cast<uint8_t>(rng.Below(2 * kCropPadding + 1));
  p.flip = rng.Below(2) == 1;
  return p;
}

class NormalizeTable {
 public:
  NormalizeTable(const std::array<float, 3>& mean, const std::array<float, 3>& std);
  float operator()(int channel, uint8_t v) const { return table_[channel][v]; }
  const float* channel(int c) const { return table_[c].data(); }

 private:
  std::array<std::array<float, 256>, 3> table_;
};

// Copies images `indices[0..n)` of `ds` into `out` (n, 3, 32, 32) and their labels into `labels`.
void GatherBatch(const ImageDataset& ds, const int64_t* indices, int64_t n, uint8_t* out,
                 int64_t* labels);

// One image: the 32x32 window at (dy, dx) of the image zero-padded by 4 on each side.
void CropImage(const uint8_t* in, int dx, int dy, uint8_t* out);

// `in` and `out` are (n, 3, 32, 32) and must not overlap.
void CropBatch(const uint8_t* in, const AugmentParams* params, int64_t n, uint8_t* out);

// Mirrors left-right, in place, the images whose params say flip.
void FlipBatch(uint8_t* images, const AugmentParams* params, int64_t n);

// (n, 3, 32, 32) uint8 -> (n, 3, 32, 32) float32 through the table.
void NormalizeBatch(const uint8_t* in, int64_t n, const NormalizeTable& table, float* out);

}  // namespace trainlab::data

#endif  // TRAINLAB_PLUGINS_DATA_AUGMENT_H_
