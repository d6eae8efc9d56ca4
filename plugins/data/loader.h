// BatchLoader: the lab's DataLoader in C++. Shuffles per epoch from a seed, augments and
// normalises straight from the in-memory uint8 images into one float tensor per batch.
//
//   num_workers == 0: batches are made in the calling thread, inside next().
//   num_workers  > 0: N threads make batches ahead, at most prefetch_per_worker * N beyond the
//                     one being consumed (a bounded queue), and next() returns them in order.
// The same seed gives the same batches in the same order whatever num_workers is: the epoch
// order comes from (seed, epoch) and each batch's augmentation from (seed, epoch, batch index).
//
// Workers are threads sharing one read-only dataset (the lab's were processes, each with a copy).
// Batch memory comes from a pool of slots allocated up front (pinned when pin_memory is set, by
// the thread that creates the loader, so workers never call CUDA); a batch's tensors return
// their slot to the pool when the last of them is freed, so holding on to batches is safe.
// A pinned slot is fenced: when its last tensor is freed, a CUDA event is recorded on that
// thread's current stream (after any asynchronous copy out of the slot that was queued), and a
// worker waits for the event before writing the slot again, whatever the caller synchronizes.
//
// Example:
//   auto loader = BatchLoader::Create(dataset, {.batch_size = 128, .num_workers = 2});
//   (*loader)->start_epoch(0);
//   while (std::optional<Batch> b = (*loader)->next()) Train(b->images, b->labels);
#ifndef TRAINLAB_PLUGINS_DATA_LOADER_H_
#define TRAINLAB_PLUGINS_DATA_LOADER_H_

#include <ATen/core/Tensor.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/concepts.h"
#include "core/stats.h"
#include "core/trace.h"
#include "plugins/data/augment.h"
#include "plugins/data/copy_fence.h"
#include "plugins/data/dataset.h"
#include "plugins/data/slot_pool.h"

namespace trainlab::data {

struct LoaderOptions {
  int64_t batch_size = 128;
  int num_workers = 2;  // the lab's default
  bool shuffle = true;
  bool augment = true;  // crop + flip (training); false: normalise only (test set)
  uint64_t seed = 0;
  int64_t max_batches = 0;      // batches per epoch; 0 = the whole dataset
  int prefetch_per_worker = 2;  // PyTorch's prefetch_factor default
  bool pin_memory = false;      // page-locked batches for asynchronous copies to a GPU
  int pin_device = -1;          // the CUDA device the batches are copied to (-1: the current one)
  // Data-parallel training: this rank takes its DistributedSampler share of each epoch's order
  // (random.h: ShardOrder), so `batch_size` is per rank and a W-rank job sees per step what one
  // process with W times the batch would.
  int rank = 0;
  int world_size = 1;
  // false (evaluation): shards without DistributedSampler's padding, so that the ranks together
  // see every image exactly once (the last batches of some ranks may be one image short).
  bool pad_shards = true;
  TraceRecorder* trace = nullptr;  // spans per batch stage on the workers' tracks
  // One fence per pooled slot (copy_fence.h). Empty: a CUDA event fence when pin_memory is set,
  // none otherwise (copies from pageable memory return only once the data has left it). Tests
  // pass fakes.
  std::function<std::unique_ptr<CopyFence>()> copy_fence;
  // For tests: called before each batch is made, on the thread that makes it; whatever it
  // throws becomes that batch's error (see BatchLoader::status()).
  std::function<void(int64_t epoch, int64_t batch)> before_batch;
  // For tests: called before worker `w`'s thread is started; what it throws stands for the
  // thread failing to start (Create then stops the others and returns the error).
  std::function<void(int worker)> before_worker_start;
};

// Seconds spent in each stage since start_epoch, summed over the threads that made batches.
using LoaderStageTimes = ::trainlab::LoaderStageTimes;

class BatchLoader {
 public:
  // Errors: batch_size < 1, num_workers < 0, prefetch_per_worker < 1, max_batches < 0,
  // an empty dataset, pin_memory without CUDA, a worker thread that cannot be started (the
  // others are stopped first).
  static absl::StatusOr<std::unique_ptr<BatchLoader>> Create(
      std::shared_ptr<const ImageDataset> dataset, LoaderOptions options);
  // The bytes a loader with `options` allocates up front: its pooled batch slots (the batches
  // made ahead, the one trained on and the one being copied) and each worker's scratch.
  static int64_t PooledBytes(const LoaderOptions& options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Starts epoch `epoch` (0-based) at batch `first_batch` (a resumed run skips the batches it
  // trained before it stopped); batches of an unfinished epoch are dropped, and an error of the
  // previous epoch is cleared.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The epoch's next batch, or nullopt at its end or when making a batch failed: then status()
  // says which batch and why. Never throws.
  std::optional<Batch> next();
  // OK, or the first failure of this epoch ("batch 3 of epoch 1: <cause>"). A failure ends the
  // epoch (next() returns nullopt); the next start_epoch() clears it and the workers, which
  // survive a failed batch, go on. A worker that could not start at all fails every epoch.
  absl::Status status() const;
  int64_t batches_per_epoch() const { return batches_per_epoch_; }

  LoaderStageTimes stage_times() const;
  const LoaderOptions& options() const { return options_; }
  const ImageDataset& dataset() const { return *dataset_; }
  // Batches whose slot had to be allocated on the fly because every pooled slot was held.
  int64_t overflow_allocations() const;

 private:
  struct Scratch;
  struct StageNanos {
    std::atomic<int64_t> read{0}, crop{0}, flip{0}, normalize{0}, assemble{0}, batches{0},
        images{0};
  };

  BatchLoader(std::shared_ptr<const ImageDataset> dataset, LoaderOptions options);
  absl::Status StartWorkers();
  void StopWorkers();
  Batch Produce(const std::vector<int64_t>& order, int64_t epoch, int64_t b, Scratch& scratch);
  // Produce(), with any exception turned into a Status naming the batch.
  absl::StatusOr<Batch> TryProduce(const std::vector<int64_t>& order, int64_t epoch, int64_t b,
                                   Scratch& scratch);
  void WorkerLoop(int worker);
  void RunWorker(int worker);

  const std::shared_ptr<const ImageDataset> dataset_;
  const LoaderOptions options_;
  const NormalizeTable table_;
  const int64_t batches_per_epoch_;
  const int64_t capacity_;  // batches made ahead of the consumer
  std::shared_ptr<SlotPool> pool_;
  std::unique_ptr<Scratch> inline_scratch_;  // for num_workers == 0
  StageNanos stages_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // workers wait for a batch to claim
  std::condition_variable ready_cv_;  // next() waits for its batch
  int64_t generation_ = 0;
  int64_t epoch_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
  int64_t epoch_batches_ = 0;  // 0 until start_epoch
  int64_t next_claim_ = 0;
  int64_t next_consume_ = 0;
  std::map<int64_t, Batch> ready_;
  absl::Status error_;        // this epoch's failure at the lowest batch index
  int64_t error_batch_ = 0;   // that batch: batches before it are still delivered
  absl::Status fatal_error_;  // a worker that could not start: every epoch fails
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

static_assert(trainlab::Loader<BatchLoader>);

}  // namespace trainlab::data

#endif  // TRAINLAB_PLUGINS_DATA_LOADER_H_
