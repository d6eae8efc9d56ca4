// libFuzzer target: Fashion-MNIST's IDX images + labels files from arbitrary bytes (the first
// byte picks where the input splits into the two files). Must return a Status, never crash.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "plugins/data/fashion_mnist.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t split = 1 + (size - 1) * data[0] / 255;
  std::vector<uint8_t> images(data + 1, data + split), labels(data + split, data + size);
  absl::StatusOr<trainlab::data::ImageDataset> ds = trainlab::data::ParseFashionMnist(
      images, "images", labels, "labels", trainlab::data::Split::kTrain);
  if (ds.ok()) {
    if (ds->pixels.size() != static_cast<size_t>(ds->size) * 3072) std::abort();
    if (ds->labels.size() != static_cast<size_t>(ds->size)) std::abort();
  }
  return 0;
}
