// Fashion-MNIST from its IDX files, gzipped as Debian's dataset-fashion-mnist ships them
// (/usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz).
//
// Each 28x28 grey image is padded with 2 black pixels on every side to 32x32 and copied to the
// three channels, so the CIFAR ResNet-18 and its parameter count apply unchanged.
//
// Example:
//   absl::StatusOr<ImageDataset> train = ReadFashionMnist(kDebianFashionMnistDir, Split::kTrain);
#ifndef TRAINLAB_PLUGINS_DATA_FASHION_MNIST_H_
#define TRAINLAB_PLUGINS_DATA_FASHION_MNIST_H_

#include <array>
#include <string>

#include "absl/status/statusor.h"
#include "plugins/data/dataset.h"

namespace trainlab::data {

// Where Debian's dataset-fashion-mnist package puts the files.
inline constexpr char kDebianFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// Mean and std of the 60,000 training images after padding to 32x32, in [0, 1] units (the same
// for the three copied channels). Computed over the real files; fashion_mnist_test recomputes
// them from Debian's package when it is installed.
inline constexpr float kFashionMnistPaddedMean = 0.2190f;
inline constexpr float kFashionMnistPaddedStd = 0.3318f;

// The images and labels file names of a split ("train-images-idx3-ubyte.gz", ...).
std::array<std::string, 2> FashionMnistFiles(Split split);

// Reads a split from `dir`. Files may be gzipped or plain. Errors name the file and the
// problem: missing, wrong magic number, dimensions other than 28x28, counts that disagree,
// truncated data, a label above 9.
absl::StatusOr<ImageDataset> ReadFashionMnist(const std::string& dir, Split split);

// The IDX parsing of ReadFashionMnist, from memory (what the fuzzer drives): `images_bytes` and
// `labels_bytes` are the decompressed files; the paths are what errors call them.
absl::StatusOr<ImageDataset> ParseFashionMnist(const std::vector<uint8_t>& images_bytes,
                                               const std::string& images_path,
                                               const std::vector<uint8_t>& labels_bytes,
                                               const std::string& labels_path, Split split);

// The whole file, gunzipped when it is gzip (plain files pass through): a regular file of at
// most 256 MiB, inflated never past the size the IDX header inside says (of `idx_dims`
// dimensions; 0: any) nor past 1 GiB, so a gzip bomb is an error, not the machine's memory.
absl::StatusOr<std::vector<uint8_t>> ReadMaybeGzipped(const std::string& path, int idx_dims = 0);

}  // namespace trainlab::data

#endif  // TRAINLAB_PLUGINS_DATA_FASHION_MNIST_H_
