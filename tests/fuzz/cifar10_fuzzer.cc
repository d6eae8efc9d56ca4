// libFuzzer target: CIFAR-10 binary records from arbitrary bytes. Must return a Status, never
// crash, and on success hold exactly size / 3073 images with labels 0-9.
#include <cstdint>
#include <cstdlib>

#include "plugins/data/cifar10.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  trainlab::data::ImageDataset ds;
  const absl::Status s = trainlab::data::ParseCifar10Records(data, size, "fuzz", ds);
  if (s.ok()) {
    if (ds.size * 3073 != static_cast<int64_t>(size)) std::abort();
    for (uint8_t l : ds.labels) {
      if (l > 9) std::abort();
    }
  } else if (ds.size != 0) {
    std::abort();  // unchanged on error
  }
  return 0;
}
