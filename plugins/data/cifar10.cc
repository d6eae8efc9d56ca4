#include "plugins/data/cifar10.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "plugins/data/dataset_registry.h"

namespace trainlab::data {

std::vector<std::string> Cifar10Files(Split split) {
  if (split == Split::kTest) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
          "data_batch_5.bin"};
}

bool LooksLikeCifar10Dir(const std::string& dir) {
  std::error_code ec;
  for (Split s : {Split::kTrain, Split::kTest}) {
    for (const std::string& f : Cifar10Files(s)) {
      if (!std::filesystem::is_regular_file(std::filesystem::path(dir) / f, ec)) return false;
    }
  }
  return true;
}

absl::Status ParseCifar10Records(const uint8_t* data, size_t size, const std::string& name,
                                 ImageDataset& into) {
  const auto bytes = static_cast<int64_t>(size);
  if (bytes == 0 || bytes % kCifar10RecordBytes != 0) {
    return absl::DataLossError(absl::StrCat(name, ": size ", bytes,
                                            " is not a whole number of 3073-byte CIFAR-10 "
                                            "records (truncated or not CIFAR-10 binary)"));
  }
  const int64_t n = bytes / kCifar10RecordBytes;
  for (int64_t r = 0; r < n; ++r) {  // check every label before touching `into`
    const uint8_t label = data[r * kCifar10RecordBytes];
    if (label >= kNumClasses) {
      return absl::DataLossError(absl::StrCat(name, ": record ", r, " has label ",
                                              static_cast<int>(label), " (must be 0-9)"));
    }
  }
  const int64_t first = into.size;
  into.pixels.resize(static_cast<size_t>((first + n) * kImageBytes));
  into.labels.resize(static_cast<size_t>(first + n));
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* rec = data + r * kCifar10RecordBytes;
    into.labels[first + r] = rec[0];
    std::copy(rec + 1, rec + kCifar10RecordBytes, into.pixels.begin() + (first + r) * kImageBytes);
  }
  into.size = first + n;
  return absl::OkStatus();
}

// A CIFAR-10 binary file larger than this is refused unread (data_batch_*.bin: 30,730,000 bytes).
constexpr uint64_t kMaxCifar10FileBytes = uint64_t{256} << 20;

absl::Status ReadCifar10File(const std::string& path, ImageDataset& into) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": missing CIFAR-10 file"));
  }
  if (std::filesystem::is_regular_file(path, ec)) {
    const auto bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
    if (ec) return absl::UnavailableError(absl::StrCat(path, ": cannot stat: ", ec.message()));
    if (bytes == 0 || bytes % kCifar10RecordBytes != 0) {  // before reading a huge wrong file
      return ParseCifar10Records(nullptr, static_cast<size_t>(bytes), path, into);
    }
  }
  // A regular file, bounded (a FIFO, a device or a directory is one error line, never a wait).
  absl::StatusOr<std::string> buf = ReadRegularFile(path, kMaxCifar10FileBytes, "CIFAR-10 file");
  if (!buf.ok()) return buf.status();
  return ParseCifar10Records(reinterpret_cast<const uint8_t*>(buf->data()), buf->size(), path,
                             into);
}

absl::StatusOr<ImageDataset> ReadCifar10(const std::string& dir, Split split) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": CIFAR-10 directory not found"));
  }
  ImageDataset ds;
  ds.name = absl::StrCat("cifar10/", SplitName(split));
  ds.mean = kCifar10Mean;
  ds.std = kCifar10Std;
  for (const std::string& f : Cifar10Files(split)) {
    if (absl::Status s = ReadCifar10File((std::filesystem::path(dir) / f).string(), ds); !s.ok()) {
      return s;
    }
  }
  ds.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return ds;
}

absl::Status WriteCifar10File(const std::string& path, const uint8_t* pixels, const uint8_t* labels,
                              int64_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::UnavailableError(absl::StrCat(path, ": cannot create"));
  for (int64_t i = 0; i < n; ++i) {
    out.put(static_cast<char>(labels[i]));
    out.write(reinterpret_cast<const char*>(pixels + i * kImageBytes), kImageBytes);
  }
  out.flush();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

namespace {

// --dataset=cifar10: DIR, or its cifar-10-batches-bin folder (where the archive unpacks).
std::optional<std::string> FindCifar10(const std::string& dir) {
  if (dir.empty()) return std::nullopt;
  if (LooksLikeCifar10Dir(dir)) return dir;
  const std::string unpacked = dir + "/cifar-10-batches-bin";
  if (LooksLikeCifar10Dir(unpacked)) return unpacked;
  return std::nullopt;
}

const bool kRegistered = DatasetRegistry::Global().Register(
    "cifar10", {.title = "CIFAR-10",
                .auto_rank = 0,
                .find = FindCifar10,
                .load = [](const DatasetRequest& r) -> absl::StatusOr<TrainAndTest> {
                  if (r.dir.empty()) {
                    return absl::InvalidArgumentError(
                        "--dataset=cifar10 needs --data_dir (the cifar-10-batches-bin folder)");
                  }
                  const std::string dir = FindCifar10(r.dir).value_or(r.dir);
                  TrainAndTest out;
                  TRAINLAB_ASSIGN_OR_RETURN(out.train, ReadCifar10(dir, Split::kTrain));
                  TRAINLAB_ASSIGN_OR_RETURN(out.test, ReadCifar10(dir, Split::kTest));
                  return out;
                }});

}  // namespace

}  // namespace trainlab::data
