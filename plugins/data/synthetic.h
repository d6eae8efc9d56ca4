// A synthetic image set in CIFAR-10's layout, for tests and benchmarks only (never reported as
// CIFAR-10). Each class has its own colour and stripe pattern; every image is its class's
// pattern, shifted by up to 3 pixels, plus noise, so a network can learn it within a few steps
// but not from a single pixel.
//
// Example:
//   ImageDataset ds = MakeSyntheticDataset(1024, /*seed=*/1);
//   WriteSyntheticCifar10Dir("/tmp/synthetic", 1000, 200, 1);  // files ReadCifar10 accepts
#ifndef TRAINLAB_PLUGINS_DATA_SYNTHETIC_H_
#define TRAINLAB_PLUGINS_DATA_SYNTHETIC_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "plugins/data/dataset.h"

namespace trainlab::data {

// `n` images with labels cycling through the 10 classes in a seeded random order. Normalisation
// statistics are CIFAR-10's, as a stand-in.
ImageDataset MakeSyntheticDataset(int64_t n, uint64_t seed);

// Writes a cifar-10-batches-bin folder: train_n images over data_batch_1..5.bin and test_n in
// test_batch.bin.
absl::Status WriteSyntheticCifar10Dir(const std::string& dir, int64_t train_n, int64_t test_n,
                                      uint64_t seed);

}  // namespace trainlab::data

#endif  // TRAINLAB_PLUGINS_DATA_SYNTHETIC_H_
