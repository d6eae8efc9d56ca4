// The data pipeline's speed: augmentation (crop, flip, normalise) and batching, in images/s,
// on one thread (num_workers=0: the consumer makes the batches) and with N worker threads,
// against a consumer that takes batches as fast as it can. Synthetic in-memory images in
// CIFAR-10's layout (the pipeline does the same work whatever the pixels are).
//
//   bazel run -c opt //benchmarks:loader_benchmark
#include <memory>

#include "benchmark/benchmark.h"
#include "plugins/data/loader.h"
#include "plugins/data/synthetic.h"

namespace trainlab::data {
namespace {

constexpr int64_t kImages = 10240;  // 80 batches of 128

std::shared_ptr<const ImageDataset> Dataset() {
  static auto* ds = new std::shared_ptr<const ImageDataset>(
      std::make_shared<const ImageDataset>(MakeSyntheticDataset(kImages, 1)));
  return *ds;
}

// BM_LoaderEpoch/W: one epoch of batch-128 augmented batches with W workers.
void BM_LoaderEpoch(benchmark::State& state) {
  LoaderOptions o;
  o.batch_size = 128;
  o.num_workers = static_cast<int>(state.range(0));
  auto loader = BatchLoader::Create(Dataset(), o);
  if (!loader.ok()) {
    state.SkipWithError(std::string(loader.status().message()).c_str());
    return;
  }
  int64_t epoch = 0;
  (*loader)->start_epoch(epoch++);  // warm-up: threads started, slots touched
  while ((*loader)->next()) {
  }
  for (auto _ : state) {
    (*loader)->start_epoch(epoch++);
    while (std::optional<Batch> b = (*loader)->next())
      benchmark::DoNotOptimize(b->images.data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * kImages);
  const LoaderStageTimes t = (*loader)->stage_times();  // of the last epoch
  state.counters["crop_us/img"] = 1e6 * t.crop_s / t.images;
  state.counters["normalize_us/img"] = 1e6 * t.normalize_s / t.images;
}
BENCHMARK(BM_LoaderEpoch)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace trainlab::data

BENCHMARK_MAIN();
