#include "plugins/data/cifar10.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "plugins/data/synthetic.h"

namespace trainlab::data {
namespace {

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::path(testing::TempDir()) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(Cifar10, RoundTripsWrittenFilesExactly) {
  const std::string dir = TempDir("roundtrip");
  ASSERT_TRUE(WriteSyntheticCifar10Dir(dir, 53, 7, /*seed=*/3).ok());
  const ImageDataset expected_train = MakeSyntheticDataset(53, 3);
  const ImageDataset expected_test = MakeSyntheticDataset(7, 4);

  absl::StatusOr<ImageDataset> train = ReadCifar10(dir, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->size, 53);
  EXPECT_EQ(train->pixels, expected_train.pixels);
  EXPECT_EQ(train->labels, expected_train.labels);
  EXPECT_EQ(train->mean, kCifar10Mean);

  absl::StatusOr<ImageDataset> test = ReadCifar10(dir, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->size, 7);
  EXPECT_EQ(test->labels, expected_test.labels);
  EXPECT_TRUE(LooksLikeCifar10Dir(dir));
}

TEST(Cifar10, RecordLayoutIsLabelThenRedGreenBluePlanes) {
  const std::string path = TempDir("layout") + "/one.bin";
  std::vector<uint8_t> rec(kCifar10RecordBytes);
  rec[0] = 7;
  rec[1] = 11;              // R(0,0)
  rec[1 + 1024] = 22;       // G(0,0)
  rec[1 + 2048 + 33] = 33;  // B(1,1)
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<char*>(rec.data()), rec.size());
  ImageDataset ds;
  ASSERT_TRUE(ReadCifar10File(path, ds).ok());
  ASSERT_EQ(ds.size, 1);
  EXPECT_EQ(ds.labels[0], 7);
  EXPECT_EQ(ds.pixels[0], 11);
  EXPECT_EQ(ds.pixels[kPlaneBytes], 22);
  EXPECT_EQ(ds.pixels[2 * kPlaneBytes + kWidth + 1], 33);
}

TEST(Cifar10, MissingDirectoryIsNotFound) {
  absl::StatusOr<ImageDataset> ds = ReadCifar10("/nonexistent/cifar", Split::kTrain);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(ds.status().message().find("/nonexistent/cifar"), std::string::npos);
}

TEST(Cifar10, MissingFileIsNamed) {
  const std::string dir = TempDir("missing");
  ASSERT_TRUE(WriteSyntheticCifar10Dir(dir, 10, 2, 1).ok());
  std::filesystem::remove(dir + "/data_batch_3.bin");
  absl::StatusOr<ImageDataset> ds = ReadCifar10(dir, Split::kTrain);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("data_batch_3.bin"), std::string::npos) << ds.status();
  EXPECT_FALSE(LooksLikeCifar10Dir(dir));
}

TEST(Cifar10, TruncatedFileIsDataLoss) {
  const std::string dir = TempDir("truncated");
  ASSERT_TRUE(WriteSyntheticCifar10Dir(dir, 10, 2, 1).ok());
  std::filesystem::resize_file(dir + "/test_batch.bin", kCifar10RecordBytes + 100);
  absl::StatusOr<ImageDataset> ds = ReadCifar10(dir, Split::kTest);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(ds.status().message().find("3073"), std::string::npos) << ds.status();
}

TEST(Cifar10, LabelAboveNineIsRejectedWithItsRecord) {
  const std::string dir = TempDir("badlabel");
  ASSERT_TRUE(WriteSyntheticCifar10Dir(dir, 10, 3, 1).ok());
  {
    std::fstream f(dir + "/test_batch.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2 * kCifar10RecordBytes);
    f.put(static_cast<char>(12));
  }
  absl::StatusOr<ImageDataset> ds = ReadCifar10(dir, Split::kTest);
  ASSERT_FALSE(ds.ok());
  EXPECT_NE(ds.status().message().find("record 2 has label 12"), std::string::npos) << ds.status();
}

TEST(Synthetic, ClassesAreBalancedAndDistinct) {
  const ImageDataset ds = MakeSyntheticDataset(100, 9);
  std::array<int, kNumClasses> counts{};
  for (uint8_t l : ds.labels) ++counts[l];
  for (int c : counts) EXPECT_EQ(c, 10);
  // Mean red value differs between class 0 (red) and class 2 (blue).
  auto mean_red = [&](int cls) {
    double sum = 0;
    int n = 0;
    for (int64_t i = 0; i < ds.size; ++i) {
      if (ds.labels[i] != cls) continue;
      for (int p = 0; p < kPlaneBytes; ++p) sum += ds.image(i)[p];
      n += kPlaneBytes;
    }
    return sum / n;
  };
  EXPECT_GT(mean_red(0), mean_red(2) + 50);
}

TEST(Synthetic, TooFewImagesForTheFiveFilesIsAnError) {
  EXPECT_FALSE(WriteSyntheticCifar10Dir(TempDir("few"), 4, 1, 1).ok());
}

}  // namespace
}  // namespace trainlab::data
