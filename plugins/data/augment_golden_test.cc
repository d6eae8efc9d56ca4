// trainlab's augmentation against torchvision's: for one image and fixed crop offsets and flips,
// CropBatch + FlipBatch + NormalizeBatch must give what RandomCrop(32, padding=4) +
// RandomHorizontalFlip + ToTensor + Normalize give in torchvision 0.14 with the same choices
// (tests/testdata/golden/augment_golden.json, from tools/golden/make_augment_golden.py).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "plugins/data/augment.h"
#include "plugins/data/dataset.h"

namespace trainlab::data {
namespace {

// The generator's image, in trainlab's CHW layout: v[c][h][w] = (7h + 13w + 29c + 3hw) mod 256.
std::vector<uint8_t> Image() {
  std::vector<uint8_t> img(3 * 32 * 32);
  for (int c = 0; c < 3; ++c)
    for (int h = 0; h < 32; ++h)
      for (int w = 0; w < 32; ++w)
        img[(c * 32 + h) * 32 + w] =
            static_cast<uint8_t>((7 * h + 13 * w + 29 * c + 3 * h * w) % 256);
  return img;
}

TEST(AugmentGolden, MatchesTorchvisionForEveryCropAndFlip) {
  std::ifstream in("tests/testdata/golden/augment_golden.json");
  ASSERT_TRUE(in) << "golden file missing";
  const nlohmann::json golden = nlohmann::json::parse(in);
  ASSERT_GE(golden["cases"].size(), 6u);
  const std::vector<uint8_t> img = Image();
  const NormalizeTable table(kCifar10Mean, kCifar10Std);
  for (const auto& c : golden["cases"]) {
    AugmentParams p{
        .dx = c["dx"].get<uint8_t>(), .dy = c["dy"].get<uint8_t>(), .flip = c["flip"].get<bool>()};
    std::vector<uint8_t> cropped(img.size());
    CropBatch(img.data(), &p, 1, cropped.data());
    FlipBatch(cropped.data(), &p, 1);
    std::vector<float> out(img.size());
    NormalizeBatch(cropped.data(), 1, table, out.data());
    const auto& want = c["values"];
    ASSERT_EQ(want.size(), out.size());
    double worst = 0;
    size_t worst_at = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const double d = std::abs(out[i] - want[i].get<double>());
      if (d > worst) worst = d, worst_at = i;
    }
    // Values are within [-2.5, 2.8]: float32 spacing there is 2.4e-7, and torchvision divides
    // by 255 then subtracts and divides in float32 where trainlab's table may round once
    // differently. A wrong crop or flip moves values by ~0.03 at least (one grey level / std).
    EXPECT_LE(worst, 1e-6) << "dx " << int(p.dx) << " dy " << int(p.dy) << " flip " << p.flip
                           << ": worst at channel " << worst_at / 1024 << ", row "
                           << worst_at % 1024 / 32 << ", column " << worst_at % 32;
  }
}

}  // namespace
}  // namespace trainlab::data
