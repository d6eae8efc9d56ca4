#include "plugins/data/fashion_mnist.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>

#include "gtest/gtest.h"

namespace trainlab::data {
namespace {

void Put32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

void WriteGz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

struct Idx {
  uint32_t images_magic = 0x803, labels_magic = 0x801;
  uint32_t n = 3, rows = 28, cols = 28, n_labels = 3;
  int drop_image_bytes = 0;
  uint8_t bad_label = 0;  // when nonzero, label 1 gets this value
};

std::filesystem::path FreshDir(const std::string& name) {
  auto dir = std::filesystem::path(testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string WriteIdx(const std::string& name, const Idx& idx) {
  auto dir = std::filesystem::path(testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::vector<uint8_t> images;
  Put32(images, idx.images_magic);
  Put32(images, idx.n);
  Put32(images, idx.rows);
  Put32(images, idx.cols);
  for (uint32_t i = 0; i < idx.n * idx.rows * idx.cols; ++i)
    images.push_back(static_cast<uint8_t>(i % 251));
  images.resize(images.size() - idx.drop_image_bytes);
  std::vector<uint8_t> labels;
  Put32(labels, idx.labels_magic);
  Put32(labels, idx.n_labels);
  for (uint32_t i = 0; i < idx.n_labels; ++i) labels.push_back(static_cast<uint8_t>(i % 10));
  if (idx.bad_label) labels[8 + 1] = idx.bad_label;
  WriteGz((dir / "train-images-idx3-ubyte.gz").string(), images);
  WriteGz((dir / "train-labels-idx1-ubyte.gz").string(), labels);
  return dir.string();
}

TEST(FashionMnist, PadsTo32AndCopiesGreyToThreeChannels) {
  const std::string dir = WriteIdx("good", {});
  absl::StatusOr<ImageDataset> ds = ReadFashionMnist(dir, Split::kTrain);
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ(ds->size, 3);
  EXPECT_EQ(ds->labels, (std::vector<uint8_t>{0, 1, 2}));
  const uint8_t* img1 = ds->image(1);
  // Source pixel (r, c) of image 1 is ((784 + 28r + c) % 251), found at (r + 2, c + 2).
  for (int r : {0, 13, 27}) {
    for (int c : {0, 5, 27}) {
      const uint8_t want = static_cast<uint8_t>((784 + 28 * r + c) % 251);
      for (int ch = 0; ch < 3; ++ch) {
        EXPECT_EQ(img1[ch * kPlaneBytes + (r + 2) * kWidth + (c + 2)], want) << r << "," << c;
      }
    }
  }
  // The 2-pixel border is black.
  for (int i = 0; i < kWidth; ++i) {
    EXPECT_EQ(img1[i], 0);
    EXPECT_EQ(img1[kWidth + i], 0);
    EXPECT_EQ(img1[31 * kWidth + i], 0);
    EXPECT_EQ(img1[i * kWidth + 1], 0);
    EXPECT_EQ(img1[i * kWidth + 30], 0);
  }
}

TEST(FashionMnist, AGzipBombStopsAtTheSizeItsHeaderSays) {
  // A valid header for 16 images of 28x28 (12,560 bytes), then 64 MiB of zeros: ~64 KiB
  // compressed. Read whole, it would take 64 MiB; it stops at the header's size.
  std::vector<uint8_t> bomb = {0, 0, 8, 3, 0, 0, 0, 16, 0, 0, 0, 28, 0, 0, 0, 28};
  bomb.resize(bomb.size() + (size_t{64} << 20), 0);
  const std::string path = (FreshDir("bomb") / "train-images-idx3-ubyte.gz").string();
  WriteGz(path, bomb);
  ASSERT_LT(std::filesystem::file_size(path), size_t{1} << 20);
  absl::StatusOr<std::vector<uint8_t>> read = ReadMaybeGzipped(path, 3);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(),
            path +
                ": inflates to more than the 12560 bytes its IDX header says (a gzip bomb, or "
                "a corrupt header)");
}

TEST(FashionMnist, ASpecialFileIsRefusedWithoutWaiting) {
  const std::string path = (FreshDir("fifo") / "train-images-idx3-ubyte.gz").string();
  ASSERT_EQ(mkfifo(path.c_str(), 0644), 0);
  EXPECT_EQ(ReadMaybeGzipped(path, 3).status().message(), path + ": a FIFO, not a regular file");
}

TEST(FashionMnist, WrongMagicIsNamed) {
  Idx idx;
  idx.images_magic = 0x801;
  absl::StatusOr<ImageDataset> ds = ReadFashionMnist(WriteIdx("magic", idx), Split::kTrain);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("wrong IDX magic number 0x00000801"), std::string::npos)
      << ds.status();
  EXPECT_NE(ds.status().message().find("train-images-idx3-ubyte.gz"), std::string::npos);
}

TEST(FashionMnist, WrongDimensionsAreRejected) {
  Idx idx;
  idx.rows = 32;
  absl::StatusOr<ImageDataset> ds = ReadFashionMnist(WriteIdx("dims", idx), Split::kTrain);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("32x28, expected 28x28"), std::string::npos) << ds.status();
}

TEST(FashionMnist, TruncatedImagesAreRejected) {
  Idx idx;
  idx.drop_image_bytes = 5;
  absl::StatusOr<ImageDataset> ds = ReadFashionMnist(WriteIdx("trunc", idx), Split::kTrain);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("truncated"), std::string::npos) << ds.status();
}

TEST(FashionMnist, LabelCountMismatchIsRejected) {
  Idx idx;
  idx.n_labels = 2;
  EXPECT_FALSE(ReadFashionMnist(WriteIdx("count", idx), Split::kTrain).ok());
}

TEST(FashionMnist, LabelAboveNineIsRejected) {
  Idx idx;
  idx.bad_label = 10;
  absl::StatusOr<ImageDataset> ds = ReadFashionMnist(WriteIdx("label", idx), Split::kTrain);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("label 1 is 10"), std::string::npos) << ds.status();
}

TEST(FashionMnist, MissingFileIsNamed) {
  absl::StatusOr<ImageDataset> ds = ReadFashionMnist(WriteIdx("split", {}), Split::kTest);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(ds.status().message().find("t10k-images-idx3-ubyte.gz"), std::string::npos);
}

// On the real files from Debian's dataset-fashion-mnist (installed by ./bazelw).
TEST(FashionMnist, DebianPackageReadsAndMatchesTheNormalisationConstants) {
  if (!std::filesystem::exists(std::string(kDebianFashionMnistDir) +
                               "/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  absl::StatusOr<ImageDataset> test = ReadFashionMnist(kDebianFashionMnistDir, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->size, 10000);
  absl::StatusOr<ImageDataset> train = ReadFashionMnist(kDebianFashionMnistDir, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  ASSERT_EQ(train->size, 60000);
  double sum = 0, sq = 0;
  const int64_t n = train->size * kPlaneBytes;  // one channel; the three are copies
  for (int64_t i = 0; i < train->size; ++i) {
    for (int p = 0; p < kPlaneBytes; ++p) {
      const double v = train->image(i)[p] / 255.0;
      sum += v;
      sq += v * v;
    }
  }
  const double mean = sum / n;
  const double std = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, kFashionMnistPaddedMean, 1e-4);
  EXPECT_NEAR(std, kFashionMnistPaddedStd, 1e-4);
}

}  // namespace
}  // namespace trainlab::data
