#include "plugins/data/fashion_mnist.h"

#include <zlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"

namespace trainlab::data {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // IDX: unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // IDX: unsigned byte, 1 dimension
constexpr int64_t kSide = 28;
constexpr int64_t kPad = (kHeight - kSide) / 2;  // 2 black pixels each side

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

}  // namespace

absl::StatusOr<std::vector<uint8_t>> ReadMaybeGzipped(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": missing Fashion-MNIST file"));
  }
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) return absl::UnavailableError(absl::StrCat(path, ": cannot open"));
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  for (;;) {
    const int n = gzread(f.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int err = 0;
      return absl::DataLossError(
          absl::StrCat(path, ": corrupt gzip data: ", gzerror(f.get(), &err)));
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  return out;
}

namespace {

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

std::array<std::string, 2> FashionMnistFiles(Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  return {prefix + "-images-idx3-ubyte.gz", prefix + "-labels-idx1-ubyte.gz"};
}

absl::StatusOr<ImageDataset> ReadFashionMnist(const std::string& dir, Split split) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": Fashion-MNIST directory not found"));
  }
  const auto files = FashionMnistFiles(split);
  const std::string images_path = (std::filesystem::path(dir) / files[0]).string();
  const std::string labels_path = (std::filesystem::path(dir) / files[1]).string();

  absl::StatusOr<std::vector<uint8_t>> images = ReadMaybeGzipped(images_path);
  if (!images.ok()) return images.status();
  absl::StatusOr<std::vector<uint8_t>> labels = ReadMaybeGzipped(labels_path);
  if (!labels.ok()) return labels.status();
  absl::StatusOr<ImageDataset> ds =
      ParseFashionMnist(*images, images_path, *labels, labels_path, split);
  if (ds.ok()) {
    ds->load_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return ds;
}

absl::StatusOr<ImageDataset> ParseFashionMnist(const std::vector<uint8_t>& images_bytes,
                                               const std::string& images_path,
                                               const std::vector<uint8_t>& labels_bytes,
                                               const std::string& labels_path, Split split) {
  const std::vector<uint8_t>* images = &images_bytes;
  const std::vector<uint8_t>* labels = &labels_bytes;
  if (images->size() < 16) {
    return absl::DataLossError(absl::StrCat(images_path, ": shorter than an IDX header"));
  }
  if (const uint32_t magic = BigEndian32(images->data()); magic != kImagesMagic) {
    return absl::DataLossError(absl::StrCat(images_path, ": wrong IDX magic number 0x",
                                            absl::Hex(magic, absl::kZeroPad8),
                                            " (expected 0x00000803 for images)"));
  }
  const int64_t n = BigEndian32(images->data() + 4);
  const int64_t rows = BigEndian32(images->data() + 8);
  const int64_t cols = BigEndian32(images->data() + 12);
  if (rows != kSide || cols != kSide) {
    return absl::DataLossError(
        absl::StrCat(images_path, ": images are ", rows, "x", cols, ", expected 28x28"));
  }
  if (static_cast<int64_t>(images->size()) != 16 + n * kSide * kSide) {
    return absl::DataLossError(absl::StrCat(images_path, ": header says ", n, " images (",
                                            16 + n * kSide * kSide, " bytes) but the file has ",
                                            images->size(), " bytes (truncated?)"));
  }
  if (labels->size() < 8) {
    return absl::DataLossError(absl::StrCat(labels_path, ": shorter than an IDX header"));
  }
  if (const uint32_t magic = BigEndian32(labels->data()); magic != kLabelsMagic) {
    return absl::DataLossError(absl::StrCat(labels_path, ": wrong IDX magic number 0x",
                                            absl::Hex(magic, absl::kZeroPad8),
                                            " (expected 0x00000801 for labels)"));
  }
  const int64_t n_labels = BigEndian32(labels->data() + 4);
  if (n_labels != n) {
    return absl::DataLossError(
        absl::StrCat(labels_path, ": ", n_labels, " labels for ", n, " images in ", images_path));
  }
  if (static_cast<int64_t>(labels->size()) != 8 + n) {
    return absl::DataLossError(absl::StrCat(labels_path, ": header says ", n,
                                            " labels but the file has ", labels->size() - 8,
                                            " (truncated?)"));
  }

  ImageDataset ds;
  ds.name = absl::StrCat("fashion_mnist/", SplitName(split));
  ds.size = n;
  ds.mean.fill(kFashionMnistPaddedMean);
  ds.std.fill(kFashionMnistPaddedStd);
  ds.labels.assign(labels->begin() + 8, labels->end());
  for (int64_t i = 0; i < n; ++i) {
    if (ds.labels[i] >= kNumClasses) {
      return absl::DataLossError(absl::StrCat(labels_path, ": label ", i, " is ",
                                              static_cast<int>(ds.labels[i]), " (must be 0-9)"));
    }
  }
  // (N, 28, 28) grey -> (N, 3, 32, 32): pad with zeros, copy to each channel.
  ds.pixels.assign(static_cast<size_t>(n * kImageBytes), 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* src = images->data() + 16 + i * kSide * kSide;
    uint8_t* dst = ds.pixels.data() + i * kImageBytes;
    for (int64_t y = 0; y < kSide; ++y) {
      std::copy(src + y * kSide, src + (y + 1) * kSide, dst + (y + kPad) * kWidth + kPad);
    }
    std::copy(dst, dst + kPlaneBytes, dst + kPlaneBytes);
    std::copy(dst, dst + kPlaneBytes, dst + 2 * kPlaneBytes);
  }
  return ds;
}

}  // namespace trainlab::data
