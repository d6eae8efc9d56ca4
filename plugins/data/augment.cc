#include "plugins/data/augment.h"

#include <algorithm>
#include <cstring>

namespace trainlab::data {

NormalizeTable::NormalizeTable(const std::array<float, 3>& mean, const std::array<float, 3>& std) {
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      // ToTensor divides by 255, then Normalize subtracts and divides (float32, as torchvision).
      table_[c][v] = (static_cast<float>(v) / 255.0f - mean[c]) / std[c];
    }
  }
}

void GatherBatch(const ImageDataset& ds, const int64_t* indices, int64_t n, uint8_t* out,
                 int64_t* labels) {
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(out + i * kImageBytes, ds.image(indices[i]), kImageBytes);
    labels[i] = ds.labels[indices[i]];
  }
}

void CropImage(const uint8_t* in, int dx, int dy, uint8_t* out) {
  // Output pixel (y, x) reads input pixel (y + dy - 4, x + dx - 4), zero where that is outside.
  const int sx = dx - kCropPadding, sy = dy - kCropPadding;
  const int x0 = std::max(0, -sx);                    // first output column inside
  const int x1 = std::min<int>(kWidth, kWidth - sx);  // one past the last
  for (int c = 0; c < kChannels; ++c) {
    const uint8_t* plane = in + c * kPlaneBytes;
    uint8_t* o = out + c * kPlaneBytes;
    for (int y = 0; y < kHeight; ++y, o += kWidth) {
      const int src_y = y + sy;
      if (src_y < 0 || src_y >= kHeight) {
        std::memset(o, 0, kWidth);
        continue;
      }
      std::memset(o, 0, x0);
      std::memcpy(o + x0, plane + src_y * kWidth + x0 + sx, x1 - x0);
      std::memset(o + x1, 0, kWidth - x1);
    }
  }
}

void CropBatch(const uint8_t* in, const AugmentParams* params, int64_t n, uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    CropImage(in + i * kImageBytes, params[i].dx, params[i].dy, out + i * kImageBytes);
  }
}

void FlipBatch(uint8_t* images, const AugmentParams* params, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!params[i].flip) continue;
    uint8_t* row = images + i * kImageBytes;
    for (int r = 0; r < kChannels * kHeight; ++r, row += kWidth) std::reverse(row, row + kWidth);
  }
}

void NormalizeBatch(const uint8_t* in, int64_t n, const NormalizeTable& table, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    for (int c = 0; c < kChannels; ++c) {
      const float* t = table.channel(c);
      const uint8_t* src = in + i * kImageBytes + c * kPlaneBytes;
      float* dst = out + i * kImageBytes + c * kPlaneBytes;
      for (int p = 0; p < kPlaneBytes; ++p) dst[p] = t[src[p]];
    }
  }
}

}  // namespace trainlab::data
