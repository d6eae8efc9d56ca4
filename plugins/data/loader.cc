#include "plugins/data/loader.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/timer.h"
#include "plugins/data/random.h"

namespace trainlab::data {
namespace {

// Streams of MixSeed, so epoch orders and augmentations never share random numbers.
constexpr uint64_t kOrderStream = 11;
constexpr uint64_t kAugmentStream = 12;

int64_t Nanos(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

}  // namespace

struct BatchLoader::Scratch {
  std::vector<uint8_t> gathered, cropped;
  std::vector<AugmentParams> params;
  explicit Scratch(int64_t b)
      : gathered(static_cast<size_t>(b * kImageBytes)),
        cropped(static_cast<size_t>(b * kImageBytes)),
        params(static_cast<size_t>(b)) {}
};

int64_t BatchLoader::PooledBytes(const LoaderOptions& o) {
  const int64_t slots = std::max(1, o.num_workers * o.prefetch_per_worker) + 2;
  const int64_t slot = o.batch_size * (kChannels * kHeight * kWidth * int64_t{sizeof(float)} +
                                       int64_t{sizeof(int64_t)});
  const int64_t scratch = o.batch_size * (2 * kImageBytes + int64_t{sizeof(AugmentParams)});
  return slots * slot + std::max(1, o.num_workers) * scratch;
}

absl::StatusOr<std::unique_ptr<BatchLoader>> BatchLoader::Create(
    std::shared_ptr<const ImageDataset> dataset, LoaderOptions options) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch size must be at least 1, got ", options.batch_size));
  }
  if (options.num_workers < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("number of loader workers must be >= 0, got ", options.num_workers));
  }
  if (options.prefetch_per_worker < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefetch per worker must be at least 1, got ", options.prefetch_per_worker));
  }
  if (options.max_batches < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max batches per epoch must be >= 0, got ", options.max_batches));
  }
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rank ", options.rank, " is out of range for world size ", options.world_size));
  }
  if (dataset == nullptr || dataset->size == 0) {
    return absl::InvalidArgumentError("the dataset is empty");
  }
  if (options.pin_memory && !torch::cuda::is_available()) {
    return absl::FailedPreconditionError(
        "pinned batches need CUDA, and no CUDA device is available");
  }
  std::unique_ptr<BatchLoader> loader(new BatchLoader(std::move(dataset), options));
  if (absl::Status st = loader->StartWorkers(); !st.ok()) return st;
  return loader;
}

BatchLoader::BatchLoader(std::shared_ptr<const ImageDataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)),
      options_(options),
      table_(dataset_->mean, dataset_->std),
      batches_per_epoch_([&] {
        const int64_t per_rank =
            ShardSize(dataset_->size, options.rank, options.world_size, options.pad_shards);
        const int64_t all = (per_rank + options.batch_size - 1) / options.batch_size;
        return options.max_batches > 0 ? std::min(all, options.max_batches) : all;
      }()),
      capacity_(std::max(1, options.num_workers * options.prefetch_per_worker)),
      pool_(std::make_shared<SlotPool>(options.batch_size)) {
  // Enough slots for every batch made ahead, the one being trained on and the one being
  // copied; allocated here so that pinned memory is never requested by a worker.
  std::function<std::unique_ptr<CopyFence>()> fence = options_.copy_fence;
  if (!fence && options_.pin_memory) {
    fence = [d = options_.pin_device] { return MakeCudaCopyFence(d); };
  }
  pool_->AddSlots(capacity_ + 2, options_.pin_memory, fence);
  if (options_.num_workers == 0) {
    inline_scratch_ = std::make_unique<Scratch>(options_.batch_size);
  }
}

absl::Status BatchLoader::StartWorkers() {
  for (int w = 0; w < options_.num_workers; ++w) {
    std::string why;
    try {
      if (options_.before_worker_start) options_.before_worker_start(w);
      workers_.emplace_back([this, w] { WorkerLoop(w); });
      continue;
    } catch (const std::exception& e) {
      why = e.what();
    } catch (...) {
      why = "unknown exception";
    }
    // The threads already running are stopped and joined: none is left behind, and nothing
    // terminates the process.
    StopWorkers();
    return absl::ResourceExhaustedError(absl::StrCat("data loader: cannot start worker ", w + 1,
                                                     " of ", options_.num_workers, ": ", why));
  }
  return absl::OkStatus();
}

void BatchLoader::StopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

BatchLoader::~BatchLoader() { StopWorkers(); }

void BatchLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  std::vector<int64_t> order(static_cast<size_t>(dataset_->size));
  if (options_.shuffle) {
    order = Permutation(dataset_->size,
                        MixSeed(options_.seed, kOrderStream, static_cast<uint64_t>(epoch)));
  } else {
    std::iota(order.begin(), order.end(), 0);
  }
  order = ShardOrder(order, options_.rank, options_.world_size, options_.pad_shards);
  std::map<int64_t, Batch> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::make_shared<const std::vector<int64_t>>(std::move(order));
    epoch_batches_ = batches_per_epoch_;
    next_claim_ = std::clamp<int64_t>(first_batch, 0, epoch_batches_);
    next_consume_ = next_claim_;
    error_ = fatal_error_;
    error_batch_ = 0;
    dropped.swap(ready_);
    for (auto* a : {&stages_.read, &stages_.crop, &stages_.flip, &stages_.normalize,
                    &stages_.assemble, &stages_.batches, &stages_.images}) {
      a->store(0);
    }
  }
  work_cv_.notify_all();
}

std::optional<Batch> BatchLoader::next() {
  if (options_.num_workers == 0) {
    if (next_consume_ >= epoch_batches_ || !error_.ok()) return std::nullopt;
    absl::StatusOr<Batch> b = TryProduce(*order_, epoch_, next_consume_, *inline_scratch_);
    if (!b.ok()) {
      error_ = b.status();
      error_batch_ = next_consume_;
      return std::nullopt;
    }
    ++next_consume_;
    return std::move(*b);
  }
  std::unique_lock<std::mutex> lock(mu_);
  // Batches before a failed one are still delivered, in order; the failed one ends the epoch.
  auto failed = [&] { return !error_.ok() && next_consume_ >= error_batch_; };
  if (next_consume_ >= epoch_batches_ || failed()) return std::nullopt;
  ready_cv_.wait(lock, [&] { return ready_.count(next_consume_) > 0 || failed(); });
  if (failed()) return std::nullopt;
  auto node = ready_.extract(next_consume_);
  ++next_consume_;
  lock.unlock();
  work_cv_.notify_all();
  return std::move(node.mapped());
}

absl::Status BatchLoader::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

absl::StatusOr<Batch> BatchLoader::TryProduce(const std::vector<int64_t>& order, int64_t epoch,
                                              int64_t b, Scratch& scratch) {
  std::string why;
  try {
    if (options_.before_batch) options_.before_batch(epoch, b);
    return Produce(order, epoch, b, scratch);
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "unknown exception";
  }
  return absl::InternalError(
      absl::StrCat("data loader: batch ", b, " of epoch ", epoch + 1, ": ", why));
}

void BatchLoader::WorkerLoop(int worker) {
  // Nothing escapes a worker thread: a failure before the loop (naming the thread, the scratch
  // buffers) fails every epoch from now on instead of leaving next() waiting forever.
  std::string why;
  try {
    RunWorker(worker);
    return;
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "unknown exception";
  }
  std::lock_guard<std::mutex> lock(mu_);
  fatal_error_ =
      absl::InternalError(absl::StrCat("data loader: worker ", worker, " could not start: ", why));
  error_ = fatal_error_;
  error_batch_ = 0;
  ready_cv_.notify_all();
}

void BatchLoader::RunWorker(int worker) {
  if (options_.trace) options_.trace->NameThisThread(absl::StrCat("loader worker ", worker));
  Scratch scratch(options_.batch_size);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] {
      return stop_ || (next_claim_ < epoch_batches_ && next_claim_ < next_consume_ + capacity_);
    });
    if (stop_) return;
    const int64_t b = next_claim_++;
    const int64_t generation = generation_;
    const int64_t epoch = epoch_;
    std::shared_ptr<const std::vector<int64_t>> order = order_;
    lock.unlock();
    absl::StatusOr<Batch> batch = TryProduce(*order, epoch, b, scratch);
    lock.lock();
    if (generation != generation_) continue;  // an epoch since started: drop it
    if (!batch.ok()) {
      if (error_.ok() || b < error_batch_) {
        error_ = batch.status();
        error_batch_ = b;
      }
      ready_cv_.notify_all();
      continue;
    }
    ready_.emplace(b, std::move(*batch));
    ready_cv_.notify_all();
  }
}

Batch BatchLoader::Produce(const std::vector<int64_t>& order, int64_t epoch, int64_t b,
                           Scratch& scratch) {
  TraceRecorder* trace = options_.trace;
  const int64_t begin = b * options_.batch_size;
  const int64_t n = std::min(options_.batch_size, static_cast<int64_t>(order.size()) - begin);

  const Clock::time_point t0 = Clock::now();
  // Leased at once: an exception from here on returns the slot to the pool.
  auto lease = std::make_shared<SlotLease>(pool_, pool_->Acquire());
  float* images = lease->slot().images;
  int64_t* labels = lease->slot().labels;
  const Clock::time_point t1 = Clock::now();

  GatherBatch(*dataset_, order.data() + begin, n, scratch.gathered.data(), labels);
  const Clock::time_point t2 = Clock::now();

  const uint8_t* normalize_from = scratch.gathered.data();
  Clock::time_point t3 = t2, t4 = t2;
  if (options_.augment) {
    SplitMix64 rng(MixSeed(options_.seed, kAugmentStream,
                           (static_cast<uint64_t>(epoch) << 32) ^ static_cast<uint64_t>(b) ^
                               (static_cast<uint64_t>(options_.rank) << 48)));
    for (int64_t i = 0; i < n; ++i) scratch.params[i] = DrawAugment(rng);
    CropBatch(scratch.gathered.data(), scratch.params.data(), n, scratch.cropped.data());
    t3 = Clock::now();
    FlipBatch(scratch.cropped.data(), scratch.params.data(), n);
    t4 = Clock::now();
    normalize_from = scratch.cropped.data();
  }
  NormalizeBatch(normalize_from, n, table_, images);
  const Clock::time_point t5 = Clock::now();

  Batch batch;
  batch.index = b;
  batch.images = at::from_blob(
      images, {n, kChannels, kHeight, kWidth}, [lease](void*) {},
      at::TensorOptions().dtype(at::kFloat));
  batch.labels = at::from_blob(
      labels, {n}, [lease](void*) {}, at::TensorOptions().dtype(at::kLong));
  lease.reset();
  const Clock::time_point t6 = Clock::now();

  stages_.read += Nanos(t1, t2);
  stages_.crop += Nanos(t2, t3);
  stages_.flip += Nanos(t3, t4);
  stages_.normalize += Nanos(t4, t5);
  stages_.assemble += Nanos(t0, t1) + Nanos(t5, t6);
  stages_.batches += 1;
  stages_.images += n;
  if (trace) {
    trace->Span("read", "loader", t1, t2);
    if (options_.augment) {
      trace->Span("crop", "loader", t2, t3);
      trace->Span("flip", "loader", t3, t4);
    }
    trace->Span("normalize", "loader", t4, t5);
    trace->Span(absl::StrCat("batch ", b), "loader", t0, t6);
  }
  return batch;
}

LoaderStageTimes BatchLoader::stage_times() const {
  LoaderStageTimes t;
  t.read_s = stages_.read.load() * 1e-9;
  t.crop_s = stages_.crop.load() * 1e-9;
  t.flip_s = stages_.flip.load() * 1e-9;
  t.normalize_s = stages_.normalize.load() * 1e-9;
  t.assemble_s = stages_.assemble.load() * 1e-9;
  t.batches = stages_.batches.load();
  t.images = stages_.images.load();
  return t;
}

int64_t BatchLoader::overflow_allocations() const { return pool_->overflow(); }

}  // namespace trainlab::data
