#include "experiments/checkpoint.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/output-archive.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "plugins/models/resnet18.h"

namespace trainlab::experiments {
namespace {

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base ? base : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

struct Training {
  models::ResNet18 model{models::ResNet18Options().batch_norm(true)};
  std::unique_ptr<torch::optim::SGD> sgd;
  explicit Training(uint64_t seed) {
    torch::manual_seed(seed);
    model = models::ResNet18(models::ResNet18Options().batch_norm(true));
    sgd = std::make_unique<torch::optim::SGD>(model->parameters(),
                                              torch::optim::SGDOptions(0.1).momentum(0.9));
  }
  void Step() {
    const at::Tensor x = at::randn({4, 3, 32, 32});
    const at::Tensor y = at::randint(0, 10, {4}, at::kLong);
    sgd->zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    sgd->step();
  }
};

RunResult SomeRun() {
  RunResult r;
  r.repeat = 2;
  EpochStats e;
  e.epoch = 1;
  e.loss = 2.302585092994046;
  e.top1 = 12.5;
  e.load_s = 0.1 / 3;
  e.train_s = 1.0 / 7;
  e.epoch_s = 0.2;
  e.samples = 8;
  e.batches.push_back({0, 4, 0.01, 0.0, 0.07, 2.25, 1, std::nullopt});
  e.batches.push_back({1, 4, 0.02, 0.0, 0.08, std::nan(""), 0, std::nullopt});
  e.diverged = Divergence{1, 2, std::nan("")};
  r.epochs.push_back(e);
  r.diverged = e.diverged;
  r.loader_stages.push_back({0.1, 0.2, 0.3, 0.4, 0.5, 2, 8});
  r.total_s = 0.2;
  return r;
}

TEST(Checkpoint, RunResultsRoundTripExactly) {
  const RunResult r = SomeRun();
  absl::StatusOr<RunResult> back =
      RunResultFromJson(nlohmann::json::parse(RunResultToJson(r).dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->epochs.size(), 1u);
  EXPECT_EQ(back->repeat, 2);
  EXPECT_EQ(back->epochs[0].load_s, r.epochs[0].load_s);  // bit-exact doubles
  EXPECT_EQ(back->epochs[0].train_s, r.epochs[0].train_s);
  EXPECT_EQ(back->epochs[0].loss, r.epochs[0].loss);
  ASSERT_EQ(back->epochs[0].batches.size(), 2u);
  EXPECT_TRUE(std::isnan(back->epochs[0].batches[1].loss));
  ASSERT_TRUE(back->diverged.has_value());
  EXPECT_EQ(back->diverged->batch, 2);
  EXPECT_EQ(back->loader_stages[0].normalize_s, 0.4);
}

TEST(Checkpoint, SaveThenResumeRestoresTheExactState) {
  const std::string dir = TempDir("ckpt_roundtrip");
  const nlohmann::json fingerprint = {{"lr", 0.1}, {"seed", 3}};
  Training a(3);
  a.Step();
  a.Step();
  const std::string digest = StateDigest(*a.model, *a.sgd);
  {
    auto c = Checkpointer::Open(dir, "c2", fingerprint, /*resume=*/false);
    ASSERT_TRUE(c.ok()) << c.status();
    EpochStats partial;
    partial.batches.push_back({0, 4, 0.01, 0.0, 0.07, 2.25, 1, std::nullopt});
    ASSERT_TRUE((*c)->Save({"sgd", 1}, SomeRun(), partial, 1, *a.model, *a.sgd).ok());
  }
  Training b(99);  // other weights, no momentum yet
  EXPECT_NE(StateDigest(*b.model, *b.sgd), digest);
  auto c = Checkpointer::Open(dir, "c2", fingerprint, /*resume=*/true);
  ASSERT_TRUE(c.ok()) << c.status();
  auto other = (*c)->Resume({"adam", 1}, *b.model, *b.sgd);  // not the run in progress
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  auto p = (*c)->Resume({"sgd", 1}, *b.model, *b.sgd);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ((*p)->epoch, 1);
  ASSERT_TRUE((*p)->partial.has_value());
  EXPECT_EQ((*p)->partial->batches.size(), 1u);
  EXPECT_EQ(StateDigest(*b.model, *b.sgd), digest);
  // And training goes on identically from there.
  torch::manual_seed(5);
  a.Step();
  torch::manual_seed(5);
  b.Step();
  EXPECT_EQ(StateDigest(*b.model, *b.sgd), StateDigest(*a.model, *a.sgd));
}

TEST(Checkpoint, FinishedRunsAreKept) {
  const std::string dir = TempDir("ckpt_finished");
  {
    auto c = Checkpointer::Open(dir, "c6", {{"lr", 0.1}}, false);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Finish({"sgd", 1}, SomeRun()).ok());
  }
  auto c = Checkpointer::Open(dir, "c6", {{"lr", 0.1}}, true);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_NE((*c)->Finished({"sgd", 1}), nullptr);
  EXPECT_EQ((*c)->Finished({"sgd", 1})->epochs[0].train_s, 1.0 / 7);
  EXPECT_EQ((*c)->Finished({"adam", 1}), nullptr);
}

TEST(Checkpoint, RefusesWhatItCannotResume) {
  const std::string dir = TempDir("ckpt_bad");
  // Nothing to resume.
  auto none = Checkpointer::Open(dir, "c2", {}, true);
  EXPECT_EQ(none.status().message(),
            dir + "/c2.ckpt: no checkpoint to resume (run without --resume to start)");
  // Other settings: named, with both values.
  ASSERT_TRUE((*Checkpointer::Open(dir, "c2", {{"lr", 0.1}, {"seed", 1}}, false))
                  ->Finish({"sgd", 1}, SomeRun())
                  .ok());
  auto other = Checkpointer::Open(dir, "c2", {{"lr", 0.05}, {"seed", 1}}, true);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("made with other settings: lr was 0.1, now 0.05"),
            std::string::npos)
      << other.status();
  // Present, but --resume not given: never overwritten silently.
  auto exists = Checkpointer::Open(dir, "c2", {{"lr", 0.1}, {"seed", 1}}, false);
  EXPECT_EQ(exists.status().code(), absl::StatusCode::kAlreadyExists);
  // Truncated.
  const std::string path = dir + "/c2.ckpt";
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  auto truncated = Checkpointer::Open(dir, "c2", {{"lr", 0.1}, {"seed", 1}}, true);
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find(path + ": not a usable checkpoint"),
            std::string::npos)
      << truncated.status();
  // Another format version.
  {
    torch::serialize::OutputArchive archive;
    archive.write("meta",
                  c10::IValue(std::string(R"({"format_version": 99, "experiment": "c2"})")));
    std::ostringstream bytes;
    archive.save_to(bytes);
    const std::string framed = FrameCheckpoint(bytes.str());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(framed.data(), static_cast<std::streamsize>(framed.size()));
  }
  auto version = Checkpointer::Open(dir, "c2", {}, true);
  EXPECT_EQ(version.status().message(),
            path + ": checkpoint format version 99, this build reads version 1")
      << version.status();
  // Garbage.
  std::ofstream(path, std::ios::trunc) << "not a checkpoint at all";
  auto garbage = Checkpointer::Open(dir, "c2", {}, true);
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss) << garbage.status();
  // One byte changed in the middle: the CRC catches it before LibTorch reads the archive (which
  // can crash on a corrupted zip: tests/fuzz found it).
  const std::string flip_dir = TempDir("ckpt_flip");
  ASSERT_TRUE((*Checkpointer::Open(flip_dir, "c2", {{"lr", 0.1}}, false))
                  ->Finish({"sgd", 1}, SomeRun())
                  .ok());
  const std::string flip = flip_dir + "/c2.ckpt";
  {
    std::fstream f(flip, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(std::filesystem::file_size(flip) / 2));
    const char c = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(flip) / 2));
    f.put(static_cast<char>(c ^ 0x20));
  }
  auto flipped = Checkpointer::Open(flip_dir, "c2", {{"lr", 0.1}}, true);
  EXPECT_EQ(flipped.status().message(),
            flip + ": not a usable checkpoint (corrupted: CRC-32 mismatch)");
}

}  // namespace
}  // namespace trainlab::experiments
