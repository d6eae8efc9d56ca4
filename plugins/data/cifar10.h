// The official CIFAR-10 binary version (cifar-10-batches-bin/):
//   data_batch_1.bin ... data_batch_5.bin (train, 50,000), test_batch.bin (test, 10,000)
// Each file is a run of 3073-byte records: 1 label byte (0-9), then 1024 R, 1024 G, 1024 B bytes
// (row-major 32x32 planes), which is exactly ImageDataset's layout.
//
// Example:
//   absl::StatusOr<ImageDataset> train = ReadCifar10("/data/cifar-10-batches-bin", Split::kTrain);
#ifndef TRAINLAB_PLUGINS_DATA_CIFAR10_H_
#define TRAINLAB_PLUGINS_DATA_CIFAR10_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "plugins/data/dataset.h"

namespace trainlab::data {

inline constexpr int64_t kCifar10RecordBytes = 1 + kImageBytes;  // 3073

// The files of a split, in order.
std::vector<std::string> Cifar10Files(Split split);

// True when `dir` holds every file of both splits.
bool LooksLikeCifar10Dir(const std::string& dir);

// Reads a split. Errors name the file and the problem: missing directory or file, a size that is
// not a whole number of records, a label above 9.
absl::StatusOr<ImageDataset> ReadCifar10(const std::string& dir, Split split);

// Parses CIFAR-10 binary records (label byte + 3072 pixel bytes each) from memory into `into`
// (appended); `name` is what errors call the input. `into` is unchanged on error.
absl::Status ParseCifar10Records(const uint8_t* data, size_t size, const std::string& name,
                                 ImageDataset& into);

// Reads one file of records.
absl::Status ReadCifar10File(const std::string& path, ImageDataset& into);

// Writes `n` records (pixels: n * 3072 bytes CHW, labels: n bytes) in the binary format.
absl::Status WriteCifar10File(const std::string& path, const uint8_t* pixels, const uint8_t* labels,
                              int64_t n);

}  // namespace trainlab::data

#endif  // TRAINLAB_PLUGINS_DATA_CIFAR10_H_
