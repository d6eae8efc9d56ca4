#include "plugins/data/loader.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include "gtest/gtest.h"
#include "plugins/data/synthetic.h"

namespace trainlab::data {
namespace {

std::shared_ptr<const ImageDataset> Synthetic(int64_t n) {
  return std::make_shared<const ImageDataset>(MakeSyntheticDataset(n, 7));
}

// A dataset whose image i stores i in its first two bytes, normalised with mean 0, std 1 so the
// loader's output gives the byte back as v / 255.
std::shared_ptr<const ImageDataset> Indexed(int64_t n) {
  ImageDataset ds;
  ds.size = n;
  ds.pixels.assign(n * kImageBytes, 0);
  ds.labels.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    ds.pixels[i * kImageBytes] = static_cast<uint8_t>(i % 256);
    ds.pixels[i * kImageBytes + 1] = static_cast<uint8_t>(i / 256);
    ds.labels[i] = static_cast<uint8_t>(i % 10);
  }
  ds.mean = {0, 0, 0};
  ds.std = {1, 1, 1};
  return std::make_shared<const ImageDataset>(std::move(ds));
}

std::vector<Batch> Epoch(BatchLoader& loader, int64_t epoch) {
  std::vector<Batch> out;
  loader.start_epoch(epoch);
  while (std::optional<Batch> b = loader.next()) out.push_back(*b);
  return out;
}

std::unique_ptr<BatchLoader> Make(std::shared_ptr<const ImageDataset> ds, LoaderOptions o) {
  auto l = BatchLoader::Create(std::move(ds), o);
  EXPECT_TRUE(l.ok()) << l.status();
  return std::move(*l);
}

TEST(BatchLoader, SameSeedGivesTheSameBatchesWhateverTheWorkerCount) {
  auto ds = Synthetic(300);
  LoaderOptions o;
  o.batch_size = 32;
  o.seed = 5;
  o.num_workers = 0;
  auto reference = Make(ds, o);
  for (int workers : {1, 3, 4}) {
    o.num_workers = workers;
    auto other = Make(ds, o);
    for (int64_t epoch : {0, 1}) {
      std::vector<Batch> want = Epoch(*reference, epoch), got = Epoch(*other, epoch);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(got[i].index, static_cast<int64_t>(i));
        EXPECT_TRUE(at::equal(got[i].images, want[i].images)) << workers << " workers, batch " << i;
        EXPECT_TRUE(at::equal(got[i].labels, want[i].labels));
      }
    }
  }
}

TEST(BatchLoader, EachEpochVisitsEveryImageOnceInANewOrder) {
  const int64_t n = 1000;
  LoaderOptions o;
  o.batch_size = 128;
  o.augment = false;
  o.num_workers = 2;
  auto loader = Make(Indexed(n), o);
  std::vector<int64_t> orders[2];
  for (int64_t epoch : {0, 1}) {
    for (const Batch& b : Epoch(*loader, epoch)) {
      at::Tensor px = b.images.index({at::indexing::Slice(), 0, 0, at::indexing::Slice(0, 2)});
      at::Tensor bytes = (px * 255).round().to(at::kLong);
      for (int64_t i = 0; i < b.images.size(0); ++i) {
        const int64_t idx = bytes[i][0].item<int64_t>() + 256 * bytes[i][1].item<int64_t>();
        EXPECT_EQ(b.labels[i].item<int64_t>(), idx % 10);
        orders[epoch].push_back(idx);
      }
    }
    std::vector<int64_t> sorted = orders[epoch];
    std::sort(sorted.begin(), sorted.end());
    ASSERT_EQ(sorted.size(), static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);
  }
  EXPECT_NE(orders[0], orders[1]);
}

TEST(BatchLoader, LastBatchIsSmallerAndMaxBatchesCuts) {
  LoaderOptions o;
  o.batch_size = 64;
  o.num_workers = 2;
  auto loader = Make(Synthetic(150), o);
  EXPECT_EQ(loader->batches_per_epoch(), 3);
  std::vector<Batch> all = Epoch(*loader, 0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].images.size(0), 150 - 128);
  EXPECT_EQ(all[2].images.sizes(), (std::vector<int64_t>{22, 3, 32, 32}));
  EXPECT_EQ(all[2].labels.scalar_type(), at::kLong);

  o.max_batches = 2;
  auto cut = Make(Synthetic(150), o);
  EXPECT_EQ(Epoch(*cut, 0).size(), 2u);
}

TEST(BatchLoader, HeldBatchesStayIntactWhileLaterOnesAreMade) {
  // Holding every batch exhausts the slot pool; the loader must grow it, not hang or reuse.
  auto ds = Synthetic(640);
  LoaderOptions o;
  o.batch_size = 16;
  o.num_workers = 2;
  o.prefetch_per_worker = 1;
  auto held = Make(ds, o);
  std::vector<Batch> kept = Epoch(*held, 0);
  std::vector<at::Tensor> copies;
  for (const Batch& b : kept) copies.push_back(b.images.clone());
  std::vector<Batch> more = Epoch(*held, 1);  // would overwrite recycled slots
  for (size_t i = 0; i < kept.size(); ++i) ASSERT_TRUE(at::equal(kept[i].images, copies[i])) << i;
  EXPECT_GT(held->overflow_allocations(), 0);
}

TEST(BatchLoader, RestartingAnEpochMidwayGivesItFromTheStart) {
  auto ds = Synthetic(256);
  LoaderOptions o;
  o.batch_size = 32;
  o.num_workers = 3;
  auto loader = Make(ds, o);
  std::vector<Batch> full = Epoch(*loader, 4);
  loader->start_epoch(4);
  ASSERT_TRUE(loader->next().has_value());
  std::vector<Batch> again = Epoch(*loader, 4);
  ASSERT_EQ(again.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i) EXPECT_TRUE(at::equal(again[i].images, full[i].images));
}

TEST(BatchLoader, AugmentedImagesAreCropsOrFlipsOfTheOriginals) {
  // With augmentation off the first batch is plain normalisation; with it on, some pixels move.
  auto ds = Synthetic(64);
  LoaderOptions o;
  o.batch_size = 64;
  o.num_workers = 0;
  o.shuffle = false;
  o.augment = false;
  at::Tensor plain = Epoch(*Make(ds, o), 0)[0].images;
  o.augment = true;
  at::Tensor aug = Epoch(*Make(ds, o), 0)[0].images;
  EXPECT_FALSE(at::equal(plain, aug));
  // A padded crop brings in zero pixels, which normalise to -mean/std of each channel.
  const float pad_r = -kCifar10Mean[0] / kCifar10Std[0];
  EXPECT_GT((aug.select(1, 0) == pad_r).sum().item<int64_t>(), 0);
  EXPECT_EQ((plain.select(1, 0) == pad_r).sum().item<int64_t>(),
            (at::from_blob(const_cast<uint8_t*>(ds->pixels.data()), {64, 3, 32, 32}, at::kByte)
                 .select(1, 0) == 0)
                .sum()
                .item<int64_t>());
  // Stage times were recorded for every stage.
  auto loader = Make(ds, o);
  Epoch(*loader, 0);
  LoaderStageTimes t = loader->stage_times();
  EXPECT_EQ(t.batches, 1);
  EXPECT_EQ(t.images, 64);
  EXPECT_GT(t.crop_s, 0);
  EXPECT_GT(t.normalize_s, 0);
}

// A fence that checks the pool's protocol: a slot is never taken again (Wait) unless its
// release was recorded first, and releases happen on the consumer's thread.
struct FenceLog {
  std::mutex mu;
  int64_t records = 0, waits = 0, violations = 0, off_thread_records = 0;
  std::thread::id consumer = std::this_thread::get_id();
};
class CheckingFence final : public CopyFence {
 public:
  explicit CheckingFence(FenceLog* log) : log_(log) {}
  void Record() override {
    std::lock_guard<std::mutex> lock(log_->mu);
    ++records_;
    ++log_->records;
    if (std::this_thread::get_id() != log_->consumer) ++log_->off_thread_records;
  }
  void Wait() override {
    std::lock_guard<std::mutex> lock(log_->mu);
    ++waits_;
    ++log_->waits;
    if (waits_ > records_ + 1) ++log_->violations;  // reused without a recorded release
  }

 private:
  FenceLog* log_;
  int64_t records_ = 0, waits_ = 0;
};

TEST(BatchLoader, PooledSlotsAreFencedBetweenReleaseAndReuse) {
  for (int workers : {0, 2}) {
    FenceLog log;
    LoaderOptions o;
    o.batch_size = 10;
    o.num_workers = workers;
    o.copy_fence = [&log] { return std::make_unique<CheckingFence>(&log); };
    auto loader = Make(Synthetic(200), o);
    int64_t consumed = 0;
    for (int64_t epoch : {0, 1}) {
      loader->start_epoch(epoch);
      while (std::optional<Batch> b = loader->next()) ++consumed;  // freed at once
    }
    loader.reset();  // joins the workers; every batch made ahead is freed
    SCOPED_TRACE(testing::Message() << workers << " workers");
    EXPECT_EQ(consumed, 40);
    EXPECT_EQ(log.violations, 0);
    EXPECT_GT(log.waits, 2 * 2 + 2) << "slots were reused";  // more than the pool's slots
    EXPECT_EQ(log.records, log.waits) << "every slot taken was released, with a record";
    if (workers == 0) {
      EXPECT_EQ(log.off_thread_records, 0);
    }
  }
}

// A fence whose Wait fails the first `failures` times (a CUDA error while waiting, say).
class FailingFence final : public CopyFence {
 public:
  explicit FailingFence(int* failures) : failures_(failures) {}
  void Record() override {}
  void Wait() override {
    if (*failures_ > 0) {
      --*failures_;
      throw std::runtime_error("fence failed");
    }
  }

 private:
  int* failures_;
};

TEST(BatchLoader, AFailureAfterTakingASlotGivesTheSlotBack) {
  int failures = 5;
  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 0;  // a pool of 3 slots
  o.copy_fence = [&failures] { return std::make_unique<FailingFence>(&failures); };
  auto loader = Make(Synthetic(40), o);
  for (int epoch = 0; epoch < 5; ++epoch) {  // each epoch's first batch fails
    loader->start_epoch(epoch);
    EXPECT_FALSE(loader->next().has_value());
    EXPECT_NE(loader->status().message().find("fence failed"), std::string::npos)
        << loader->status();
  }
  // Had the five failures leaked their slots, holding three batches would allocate new ones.
  loader->start_epoch(5);
  std::vector<Batch> held;
  for (int i = 0; i < 3; ++i) {
    std::optional<Batch> b = loader->next();
    ASSERT_TRUE(b.has_value()) << loader->status();
    held.push_back(std::move(*b));
  }
  EXPECT_EQ(loader->overflow_allocations(), 0);
}

TEST(BatchLoader, AWorkerThatCannotStartStopsTheOthersAndSaysWhy) {
  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 4;
  std::atomic<int> started{0};
  o.before_worker_start = [&started](int w) {
    if (w == 2) throw std::system_error(EAGAIN, std::generic_category(), "thread");
    ++started;
  };
  absl::StatusOr<std::unique_ptr<BatchLoader>> l = BatchLoader::Create(Synthetic(40), o);
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(started.load(), 2);
  EXPECT_TRUE(absl::IsResourceExhausted(l.status())) << l.status();
  EXPECT_NE(l.status().message().find("data loader: cannot start worker 3 of 4: thread"),
            std::string::npos)
      << l.status();
  // The two started threads were joined: the process goes on (a joinable thread destroyed would
  // have called std::terminate).
}

TEST(BatchLoader, RejectsBadOptions) {
  auto ds = Synthetic(10);
  LoaderOptions o;
  o.num_workers = -1;
  absl::StatusOr<std::unique_ptr<BatchLoader>> l = BatchLoader::Create(ds, o);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("-1"), std::string::npos);
  o.num_workers = 0;
  o.batch_size = 0;
  EXPECT_FALSE(BatchLoader::Create(ds, o).ok());
  o.batch_size = 8;
  EXPECT_FALSE(BatchLoader::Create(std::make_shared<const ImageDataset>(), o).ok());
}

}  // namespace
}  // namespace trainlab::data

namespace trainlab::data {
namespace {

// A failing batch reaches the consumer as a Status naming the batch and the cause, at 0, 1 and
// several workers; the epoch ends there, and the next epoch runs whole.
class LoaderFailure : public ::testing::TestWithParam<int> {};

TEST_P(LoaderFailure, FailedBatchIsAStatusAndTheNextEpochRecovers) {
  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = GetParam();
  o.before_batch = [](int64_t epoch, int64_t batch) {
    if (epoch == 0 && batch == 2) throw std::runtime_error("injected failure");
  };
  std::unique_ptr<BatchLoader> loader = Make(Indexed(40), o);
  loader->start_epoch(0);
  std::vector<int64_t> got;
  while (std::optional<Batch> b = loader->next()) got.push_back(b->index);
  EXPECT_EQ(got, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(loader->status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(loader->status().message(), "data loader: batch 2 of epoch 1: injected failure");
  EXPECT_FALSE(loader->next().has_value());  // still failed, never a throw

  EXPECT_EQ(Epoch(*loader, 1).size(), 10u);  // not poisoned
  EXPECT_TRUE(loader->status().ok()) << loader->status();
}

TEST_P(LoaderFailure, AnythingThrownIsCaught) {
  LoaderOptions o;
  o.batch_size = 4;
  o.num_workers = GetParam();
  o.before_batch = [](int64_t, int64_t batch) {
    if (batch == 0) throw 42;  // not a std::exception
  };
  std::unique_ptr<BatchLoader> loader = Make(Indexed(40), o);
  EXPECT_TRUE(Epoch(*loader, 0).empty());
  EXPECT_EQ(loader->status().message(), "data loader: batch 0 of epoch 1: unknown exception");
}

INSTANTIATE_TEST_SUITE_P(Workers, LoaderFailure, ::testing::Values(0, 1, 3));

// A resumed epoch starts at the batch it stopped before, with the same batches as a whole one.
TEST(BatchLoader, StartEpochAtABatchGivesTheRestOfTheSameEpoch) {
  for (int workers : {0, 2}) {
    LoaderOptions o;
    o.batch_size = 4;
    o.num_workers = workers;
    std::unique_ptr<BatchLoader> loader = Make(Indexed(40), o);
    const std::vector<Batch> whole = Epoch(*loader, 3);
    loader->start_epoch(3, 6);
    std::vector<Batch> rest;
    while (std::optional<Batch> b = loader->next()) rest.push_back(*b);
    ASSERT_EQ(rest.size(), 4u);
    for (size_t i = 0; i < rest.size(); ++i) {
      EXPECT_EQ(rest[i].index, whole[6 + i].index);
      EXPECT_TRUE(at::equal(rest[i].images, whole[6 + i].images)) << "batch " << 6 + i;
      EXPECT_TRUE(at::equal(rest[i].labels, whole[6 + i].labels));
    }
  }
}

}  // namespace
}  // namespace trainlab::data

namespace trainlab::data {
namespace {

// The image indices of one epoch, in the order the loader gave them.
std::vector<int64_t> Indices(BatchLoader& loader, int64_t epoch) {
  std::vector<int64_t> out;
  for (const Batch& b : Epoch(loader, epoch)) {
    at::Tensor bytes =
        (b.images.index({at::indexing::Slice(), 0, 0, at::indexing::Slice(0, 2)}) * 255)
            .round()
            .to(at::kLong);
    for (int64_t i = 0; i < b.images.size(0); ++i) {
      out.push_back(bytes[i][0].item<int64_t>() + 256 * bytes[i][1].item<int64_t>());
    }
  }
  return out;
}

TEST(BatchLoader, RanksTakeDistributedSamplersSharesOfOneOrder) {
  const int64_t n = 103;  // not a multiple of 3: the order is padded by repeating its start
  LoaderOptions o;
  o.batch_size = 8;
  o.augment = false;
  o.seed = 5;
  auto whole = Make(Indexed(n), o);
  const std::vector<int64_t> order = Indices(*whole, 2);
  std::vector<int64_t> seen;
  for (int rank = 0; rank < 3; ++rank) {
    LoaderOptions r = o;
    r.rank = rank;
    r.world_size = 3;
    r.num_workers = rank;  // worker count changes nothing
    auto loader = Make(Indexed(n), r);
    EXPECT_EQ(loader->batches_per_epoch(), 5);  // ceil(ceil(103 / 3) / 8)
    const std::vector<int64_t> mine = Indices(*loader, 2);
    ASSERT_EQ(mine.size(), 35u);  // ceil(103 / 3) each: equal lengths, so ranks step together
    for (size_t k = 0; k < mine.size(); ++k) {
      EXPECT_EQ(mine[k], order[(rank + 3 * k) % n]) << "rank " << rank << ", position " << k;
    }
    EXPECT_EQ(Indices(*loader, 2), mine);  // the same seed and epoch: the same share
    seen.insert(seen.end(), mine.begin(), mine.end());
  }
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));  // together: every image
  LoaderOptions bad = o;
  bad.rank = 3;
  bad.world_size = 3;
  EXPECT_FALSE(BatchLoader::Create(Indexed(n), bad).ok());
}

}  // namespace
}  // namespace trainlab::data
