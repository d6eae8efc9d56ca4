#include "plugins/data/augment.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace trainlab::data {
namespace {

// An image whose every pixel is distinct enough to catch any misplaced byte.
std::vector<uint8_t> PatternImage(int seed = 0) {
  std::vector<uint8_t> img(kImageBytes);
  for (int i = 0; i < kImageBytes; ++i) img[i] = static_cast<uint8_t>((i * 7 + seed) % 251 + 1);
  return img;
}

// The crop written the obvious way: pad to 40x40 with zeros, take the window at (dy, dx).
std::vector<uint8_t> ReferenceCrop(const std::vector<uint8_t>& in, int dx, int dy) {
  const int p = 32 + 2 * kCropPadding;
  std::vector<uint8_t> padded(3 * p * p, 0), out(kImageBytes);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        padded[c * p * p + (y + 4) * p + x + 4] = in[c * 1024 + y * 32 + x];
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        out[c * 1024 + y * 32 + x] = padded[c * p * p + (y + dy) * p + x + dx];
  return out;
}

TEST(Crop, CentreOffsetIsTheIdentity) {
  const std::vector<uint8_t> in = PatternImage();
  std::vector<uint8_t> out(kImageBytes);
  CropImage(in.data(), 4, 4, out.data());
  EXPECT_EQ(out, in);
}

TEST(Crop, CornerOffsetShiftsAndZeroFillsTheUncoveredBand) {
  const std::vector<uint8_t> in = PatternImage();
  std::vector<uint8_t> out(kImageBytes);
  CropImage(in.data(), /*dx=*/0, /*dy=*/0, out.data());  // content moves 4 right and 4 down
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 32; ++x) {
        const uint8_t got = out[c * 1024 + y * 32 + x];
        if (y < 4 || x < 4) {
          EXPECT_EQ(got, 0) << c << " " << y << " " << x;
        } else {
          EXPECT_EQ(got, in[c * 1024 + (y - 4) * 32 + (x - 4)]);
        }
      }
    }
  }
}

TEST(Crop, EveryOffsetMatchesPadThenWindow) {
  const std::vector<uint8_t> in = PatternImage(5);
  std::vector<uint8_t> out(kImageBytes);
  for (int dy = 0; dy <= 8; ++dy) {
    for (int dx = 0; dx <= 8; ++dx) {
      CropImage(in.data(), dx, dy, out.data());
      ASSERT_EQ(out, ReferenceCrop(in, dx, dy)) << "dx=" << dx << " dy=" << dy;
    }
  }
}

TEST(Flip, MirrorsEachRowAndOnlyFlaggedImages) {
  std::vector<uint8_t> a = PatternImage(1), b = PatternImage(2);
  std::vector<uint8_t> batch(a);
  batch.insert(batch.end(), b.begin(), b.end());
  AugmentParams params[2];
  params[0].flip = true;
  params[1].flip = false;
  FlipBatch(batch.data(), params, 2);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x)
        ASSERT_EQ(batch[c * 1024 + y * 32 + x], a[c * 1024 + y * 32 + (31 - x)]);
  EXPECT_TRUE(std::equal(b.begin(), b.end(), batch.begin() + kImageBytes));
  FlipBatch(batch.data(), params, 2);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), batch.begin()));
}

TEST(Normalize, GivesTorchvisionsValuesForCifarStatistics) {
  // Expected values: (float32(v) / 255 - mean) / std in float32, computed with numpy.
  const NormalizeTable table(kCifar10Mean, kCifar10Std);
  std::vector<uint8_t> img(kImageBytes, 0);
  img[0] = 255;                // R
  img[kPlaneBytes + 1] = 128;  // G
  std::vector<float> out(kImageBytes);
  NormalizeBatch(img.data(), 1, table, out.data());
  EXPECT_FLOAT_EQ(out[0], 2.5140879154205322f);
  EXPECT_FLOAT_EQ(out[1], -2.429065704345703f);                   // R, zero
  EXPECT_FLOAT_EQ(out[kPlaneBytes + 1], 0.09910139441490173f);    // G, 128
  EXPECT_FLOAT_EQ(out[2 * kPlaneBytes + 5], -2.22139310836792f);  // B, zero
}

TEST(DrawAugment, CoversEveryOffsetAndFlipsAboutHalfTheTime) {
  SplitMix64 rng(42);
  std::set<int> dxs, dys;
  int flips = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    AugmentParams p = DrawAugment(rng);
    ASSERT_LE(p.dx, 8);
    ASSERT_LE(p.dy, 8);
    dxs.insert(p.dx);
    dys.insert(p.dy);
    flips += p.flip;
  }
  EXPECT_EQ(dxs.size(), 9u);
  EXPECT_EQ(dys.size(), 9u);
  EXPECT_NEAR(flips / static_cast<double>(n), 0.5, 0.02);
}

TEST(Permutation, IsAPermutationAndDependsOnTheSeed) {
  std::vector<int64_t> p = Permutation(1000, 1), q = Permutation(1000, 2);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(p, q);
  EXPECT_EQ(p, Permutation(1000, 1));
}

}  // namespace
}  // namespace trainlab::data
