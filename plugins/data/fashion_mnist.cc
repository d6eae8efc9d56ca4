#include "plugins/data/fashion_mnist.h"

#include <zlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "plugins/data/dataset_registry.h"

namespace trainlab::data {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // IDX: unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // IDX: unsigned byte, 1 dimension
constexpr int64_t kSide = 28;
constexpr int64_t kPad = (kHeight - kSide) / 2;  // 2 black pixels each side

// Compressed or plain, an IDX file larger than this is refused unread (Fashion-MNIST's largest,
// the training images: 26 MB compressed, 47 MB inflated).
constexpr uint64_t kMaxFileBytes = uint64_t{256} << 20;
// What an IDX file may inflate to when its header cannot say (not an IDX header at all).
constexpr uint64_t kMaxInflatedBytes = uint64_t{1} << 30;

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The whole size an IDX file of unsigned bytes says it has, from the first bytes inflated: the
// header (4 + 4 x dimensions bytes) and the product of the dimensions; 0 while too little is
// known, or when it is not an IDX header of unsigned bytes.
// `want_dims` (0: any): a header of another shape says nothing here (the parser names it).
uint64_t IdxSize(const std::vector<uint8_t>& head, int want_dims) {
  if (head.size() < 4 || head[0] != 0 || head[1] != 0 || head[2] != 0x08) return 0;
  const int dims = head[3];
  if (want_dims != 0 && dims != want_dims) return 0;
  if (dims < 1 || dims > 4 || head.size() < 4 + 4 * static_cast<size_t>(dims)) return 0;
  uint64_t n = 1;
  for (int d = 0; d < dims; ++d) {
    n *= BigEndian32(head.data() + 4 + 4 * d);
    if (n > kMaxInflatedBytes) return kMaxInflatedBytes + 1;  // more than anything allowed
  }
  return 4 + 4 * static_cast<uint64_t>(dims) + n;
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> ReadMaybeGzipped(const std::string& path, int idx_dims) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": missing Fashion-MNIST file"));
  }
  absl::StatusOr<std::string> file = ReadRegularFile(path, kMaxFileBytes, "Fashion-MNIST file");
  if (!file.ok()) return file.status();
  const auto* bytes = reinterpret_cast<const uint8_t*>(file->data());
  if (file->size() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b) {  // not gzip: as it is
    return std::vector<uint8_t>(bytes, bytes + file->size());
  }
  // Inflated in memory, never past what the IDX header inside says: a small file that inflates
  // without end (a gzip bomb) stops there with an error instead of taking the machine's memory.
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) {
    return absl::InternalError(absl::StrCat(path, ": cannot start inflating"));
  }
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&z};
  z.next_in = const_cast<Bytef*>(bytes);
  z.avail_in = static_cast<uInt>(file->size());
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  uint64_t limit = kMaxInflatedBytes;
  for (;;) {
    z.next_out = chunk.data();
    z.avail_out = static_cast<uInt>(chunk.size());
    const int rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      return absl::DataLossError(
          absl::StrCat(path, ": corrupt gzip data: ", z.msg != nullptr ? z.msg : "inflate failed"));
    }
    out.insert(out.end(), chunk.begin(), chunk.begin() + (chunk.size() - z.avail_out));
    if (const uint64_t said = IdxSize(out, idx_dims); said > 0) limit = std::min(limit, said);
    if (out.size() > limit) {
      return absl::DataLossError(absl::StrCat(
          path, ": inflates to more than the ", limit, " bytes ",
          limit == kMaxInflatedBytes ? "any Fashion-MNIST file has"
                                     : "its IDX header says (a gzip bomb, or a corrupt header)"));
    }
    if (rc == Z_STREAM_END) break;
    if (z.avail_in == 0 && z.avail_out != 0) {
      return absl::DataLossError(absl::StrCat(path, ": corrupt gzip data: truncated"));
    }
  }
  return out;
}

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

  absl::StatusOr<std::vector<uint8_t>> images = ReadMaybeGzipped(images_path, 3);
  if (!images.ok()) return images.status();
  absl::StatusOr<std::vector<uint8_t>> labels = ReadMaybeGzipped(labels_path, 1);
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

namespace {

// --dataset=fashion_mnist: DIR when given, else Debian's dataset-fashion-mnist folder (auto's
// fallback: the data that is there without a download).
const bool kRegistered = DatasetRegistry::Global().Register(
    "fashion_mnist",
    {.title = "Fashion-MNIST",
     .auto_rank = 1,
     .find = [](const std::string&) -> std::optional<std::string> {
       return std::string(kDebianFashionMnistDir);
     },
     .load = [](const DatasetRequest& r) -> absl::StatusOr<TrainAndTest> {
       const std::string dir = r.dir.empty() ? std::string(kDebianFashionMnistDir) : r.dir;
       if (!std::filesystem::exists(dir)) {
         return absl::NotFoundError(absl::StrCat(
             dir,
             ": Fashion-MNIST not found; install Debian's dataset-fashion-mnist (./bazelw does) "
             "or pass --data_dir with CIFAR-10"));
       }
       TrainAndTest out;
       TRAINLAB_ASSIGN_OR_RETURN(out.train, ReadFashionMnist(dir, Split::kTrain));
       TRAINLAB_ASSIGN_OR_RETURN(out.test, ReadFashionMnist(dir, Split::kTest));
       return out;
     }});

}  // namespace

}  // namespace trainlab::data
