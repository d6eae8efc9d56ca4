// Datasets by name, like the other plugin kinds: --dataset=NAME finds its reader here, and
// --dataset=auto asks each in turn whether its files are there. Linking a reader's target
// (cifar10, fashion_mnist, synthetic; all_datasets for every one) registers it.
//
// Example:
//   absl::StatusOr<const DatasetEntry*> d = DatasetRegistry::Global().Find("cifar10");
//   absl::StatusOr<TrainAndTest> data = (*d)->load({.dir = "/data/cifar-10-batches-bin"});
#ifndef TRAINLAB_PLUGINS_DATA_DATASET_REGISTRY_H_
#define TRAINLAB_PLUGINS_DATA_DATASET_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/registry.h"
#include "plugins/data/dataset.h"

namespace trainlab::data {

// What a reader is asked for: the folder given (--data_dir, resolved; "" when none), and for
// generated data its sizes and seed.
struct DatasetRequest {
  std::string dir;
  int64_t synthetic_train = 5000, synthetic_test = 1000;
  uint64_t seed = 0;
};

struct TrainAndTest {
  ImageDataset train, test;
};

struct DatasetEntry {
  static constexpr std::string_view kKind = "dataset";
  std::string title;  // "CIFAR-10", as the Settings line names it
  // --dataset=auto tries the datasets that have a rank, lowest first, and reads the first whose
  // `find` returns the folder it would read for `dir` (a folder under it, or its own default
  // place when `dir` does not hold it); -1: auto never chooses it (generated data).
  int auto_rank = -1;
  std::function<std::optional<std::string>(const std::string& dir)> find;
  // Reads both splits. Errors name the folder or file and the problem.
  std::function<absl::StatusOr<TrainAndTest>(const DatasetRequest& request)> load;
};
using DatasetRegistry = Registry<DatasetEntry>;

}  // namespace trainlab::data

#endif  // TRAINLAB_PLUGINS_DATA_DATASET_REGISTRY_H_
