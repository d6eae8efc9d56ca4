// The checkpoint file and the Checkpointer: exact round trips, what is refused and how, the lock,
// LibTorch's random generators, runs extended by a larger --epochs, and the files it will not
// read (a FIFO, a device, an oversized or unreadable file); a data-parallel job's copy on every
// node, refilled from the newest after a node is lost, and the refusals every rank agrees on.
#include "experiments/checkpoint/checkpointer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>

#include <barrier>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "plugins/models/resnet18.h"
#include "tests/test_dir.h"

namespace trainlab::experiments {
namespace {

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

RunResult SomeRun(int epochs = 1) {
  RunResult r;
  r.repeat = 2;
  for (int i = 1; i <= epochs; ++i) {
    EpochStats e;
    e.epoch = i;
    e.loss = 2.302585092994046;
    e.top1 = 12.5;
    e.load_s = 0.1 / 3;
    e.train_s = 1.0 / 7;
    e.epoch_s = 0.2;
    e.samples = 8;
    e.batches.push_back({0, 4, 0.01, 0.0, 0.07, 2.25, 1, std::nullopt});
    e.batches.push_back({1, 4, 0.02, 0.0, 0.08, 1.5, 0, std::nullopt});
    r.epochs.push_back(e);
    r.loader_stages.push_back({0.1, 0.2, 0.3, 0.4, 0.5, 2, 8});
    r.total_s += 0.2;
  }
  return r;
}

Checkpointer::Options Opts(const std::string& dir, const std::string& experiment,
                           nlohmann::json fingerprint, bool resume) {
  return {.dir = dir,
          .experiment = experiment,
          .fingerprint = std::move(fingerprint),
          .resume = resume,
          .holder = "checkpointer_test"};
}

TEST(Checkpoint, SaveThenResumeRestoresTheExactStateAndTheGenerators) {
  const std::string dir = FreshTestDir("ckpt_roundtrip");
  const nlohmann::json fingerprint = {{"lr", 0.1}, {"seed", 3}};
  Training a(3);
  a.Step();
  a.Step();
  const std::string digest = StateDigest(*a.model, *a.sgd);
  {
    auto c = Checkpointer::Open(Opts(dir, "c2", fingerprint, /*resume=*/false));
    ASSERT_TRUE(c.ok()) << c.status();
    EpochStats partial;
    partial.batches.push_back({0, 4, 0.01, 0.0, 0.07, 2.25, 1, std::nullopt});
    ASSERT_TRUE((*c)->Save({"sgd", 1}, SomeRun(), partial, 1, *a.model, *a.sgd).ok());
    EXPECT_EQ((*c)->LastPosition(), "run 'sgd', epoch 2, after batch 1");
  }
  // What the generator draws next, after the save: a resumed run must draw the same (dropout).
  const at::Tensor next_draw = at::rand({8});
  Training b(99);  // other weights, no momentum yet, and the generator elsewhere
  EXPECT_NE(StateDigest(*b.model, *b.sgd), digest);
  auto c = Checkpointer::Open(Opts(dir, "c2", fingerprint, /*resume=*/true));
  ASSERT_TRUE(c.ok()) << c.status();
  auto other = (*c)->Resume({"adam", 1}, 5, *b.model, *b.sgd);  // not the run in progress
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  auto p = (*c)->Resume({"sgd", 1}, 5, *b.model, *b.sgd);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ((*p)->epoch, 1);
  ASSERT_TRUE((*p)->partial.has_value());
  EXPECT_EQ((*p)->partial->batches.size(), 1u);
  EXPECT_EQ((*p)->done.epochs[0].train_s, 1.0 / 7);  // bit-exact doubles
  EXPECT_EQ(StateDigest(*b.model, *b.sgd), digest);
  EXPECT_TRUE(at::equal(at::rand({8}), next_draw)) << "LibTorch's generator was not restored";
  // And training goes on identically from there.
  torch::manual_seed(5);
  a.Step();
  torch::manual_seed(5);
  b.Step();
  EXPECT_EQ(StateDigest(*b.model, *b.sgd), StateDigest(*a.model, *a.sgd));
}

// Under torchrun: a checkpoint written by the same job (TORCHELASTIC_RUN_ID) is resumed without
// --resume, whichever agent restarted the process; another job's, or one written outside a job,
// still needs --resume, and the error says whose it is.
TEST(Checkpoint, TheSameElasticJobResumesItsOwnCheckpointWithoutResume) {
  const std::string dir = FreshTestDir("ckpt_job");
  const nlohmann::json fingerprint = {{"lr", 0.1}, {"world_size", 2}};
  Training a(4);
  a.Step();
  const std::string digest = StateDigest(*a.model, *a.sgd);
  auto opts = [&](std::string job) {
    Checkpointer::Options o = Opts(dir, "c2", fingerprint, /*resume=*/false);
    o.job = std::move(job);
    return o;
  };
  {
    auto c = Checkpointer::Open(opts("job-a"));
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE((*c)->Save({"sgd", 1}, SomeRun(), std::nullopt, 1, *a.model, *a.sgd).ok());
  }
  // Another job: refused, naming both jobs.
  auto other = Checkpointer::Open(opts("job-b"));
  ASSERT_FALSE(other.ok());
  EXPECT_TRUE(absl::IsAlreadyExists(other.status()));
  EXPECT_NE(other.status().message().find("(of job job-a; this is job job-b)"),
            std::string_view::npos)
      << other.status();
  // Outside any job: refused as before.
  auto none = Checkpointer::Open(opts(""));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("pass --resume"), std::string_view::npos);
  // The same job: resumed, the state restored.
  auto same = Checkpointer::Open(opts("job-a"));
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE((*same)->resuming());
  Training b(77);
  auto p = (*same)->Resume({"sgd", 1}, 5, *b.model, *b.sgd);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ((*p)->epoch, 1);
  EXPECT_EQ(StateDigest(*b.model, *b.sgd), digest);
  // A checkpoint written outside a job is not "this job's" for a job that finds it.
  const std::string dir2 = FreshTestDir("ckpt_job_outside");
  {
    Checkpointer::Options o = Opts(dir2, "c2", fingerprint, false);
    auto c = Checkpointer::Open(o);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE((*c)->Save({"sgd", 1}, SomeRun(), std::nullopt, 1, *a.model, *a.sgd).ok());
  }
  Checkpointer::Options in_job = Opts(dir2, "c2", fingerprint, false);
  in_job.job = "job-a";
  auto refused = Checkpointer::Open(in_job);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("(not written by this job, job-a)"),
            std::string_view::npos)
      << refused.status();
}

TEST(Checkpoint, FinishedRunsAreKeptWithTheirFinalState) {
  const std::string dir = FreshTestDir("ckpt_finished");
  Training a(1);
  a.Step();
  {
    auto c = Checkpointer::Open(Opts(dir, "c6", {{"lr", 0.1}, {"epochs", 1}}, false));
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Finish({"sgd", 1}, SomeRun(), *a.model, *a.sgd).ok());
  }
  auto c = Checkpointer::Open(Opts(dir, "c6", {{"lr", 0.1}, {"epochs", 1}}, true));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_NE((*c)->Finished({"sgd", 1}, 1), nullptr);
  EXPECT_EQ((*c)->Finished({"sgd", 1}, 1)->epochs[0].train_s, 1.0 / 7);
  EXPECT_EQ((*c)->Finished({"adam", 1}, 1), nullptr);
  // The final weights can be written out again (--resume --save_model on a finished run).
  Training b(2);
  ASSERT_TRUE((*c)->LoadFinalModel({"sgd", 1}, *b.model).ok());
  for (size_t i = 0; i < a.model->parameters().size(); ++i) {
    EXPECT_TRUE(at::equal(a.model->parameters()[i], b.model->parameters()[i]));
  }
}

TEST(Checkpoint, ALargerEpochsExtendsAFinishedRunFromItsFinalState) {
  const std::string dir = FreshTestDir("ckpt_extend");
  Training a(4);
  a.Step();
  const std::string digest = StateDigest(*a.model, *a.sgd);
  ASSERT_TRUE((*Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}, {"epochs", 1}}, false)))
                  ->Finish({"sgd", 1}, SomeRun(1), *a.model, *a.sgd)
                  .ok());
  // Fewer epochs: refused, naming the setting.
  auto shorter = Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}, {"epochs", 0}}, true));
  EXPECT_FALSE(shorter.ok());
  // More: accepted, said, and the run continues from where it ended.
  auto c = Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}, {"epochs", 2}}, true));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ((*c)->extended().count("epochs"), 1u);
  EXPECT_EQ((*c)->extended().at("epochs"), std::make_pair(int64_t{1}, int64_t{2}));
  EXPECT_EQ((*c)->Finished({"sgd", 1}, 2), nullptr);  // not finished at 2 epochs
  Training b(9);
  auto p = (*c)->Resume({"sgd", 1}, 2, *b.model, *b.sgd);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ((*p)->epoch, 1);
  EXPECT_EQ((*p)->done.epochs.size(), 1u);
  EXPECT_EQ(StateDigest(*b.model, *b.sgd), digest);
  c->reset();
  // Another setting still must not change.
  auto lr = Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.2}, {"epochs", 2}}, true));
  ASSERT_FALSE(lr.ok());
  EXPECT_NE(lr.status().message().find("lr was 0.1, now 0.2"), std::string::npos) << lr.status();
}

TEST(Checkpoint, OneProcessAtATimeAndTheHolderIsNamed) {
  const std::string dir = FreshTestDir("ckpt_lock");
  auto first = Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}}, false));
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}}, false));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(),
            dir +
                "/c2.ckpt: in use by another run (checkpointer_test); wait for it to end, or "
                "use another --checkpoint_dir");
  // Another experiment's checkpoint in the same folder is another lock.
  EXPECT_TRUE(Checkpointer::Open(Opts(dir, "c6", {{"lr", 0.1}}, false)).ok());
  first->reset();  // released with its holder
  EXPECT_TRUE(Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}}, false)).ok());
}

TEST(Checkpoint, TemporariesOfDeadProcessesAreRemoved) {
  const std::string dir = FreshTestDir("ckpt_tmp");
  // A pid that cannot be alive (above pid_max), and our own (alive: kept).
  const std::string dead = TemporaryFileFor(dir + "/c2.ckpt", 2147483000);
  const std::string alive = TemporaryFileFor(dir + "/c2.ckpt", static_cast<int>(getpid()));
  std::ofstream(dead) << "left by a SIGKILL";
  std::ofstream(alive) << "being written";
  ASSERT_TRUE(Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}}, false)).ok());
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(alive));
}

// A checkpoint whose settings were recorded in another form (fingerprint version 1: before the
// fingerprint was derived from every setting) is refused by one line that says so, not by a list
// of every key that differs; the same version resumes.
TEST(Checkpoint, RefusesAFingerprintOfAnotherVersion) {
  const std::string dir = FreshTestDir("ckpt_version");
  Training a(1);
  ASSERT_TRUE((*Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}, {"workers", {0, 1}}}, false)))
                  ->Finish({"sgd", 1}, SomeRun(), *a.model, *a.sgd)
                  .ok());
  auto v2 = Checkpointer::Open(
      Opts(dir, "c2", {{"lr", 0.1}, {"workers", "0,1"}, {"fingerprint_version", 2}}, true));
  ASSERT_FALSE(v2.ok());
  EXPECT_EQ(v2.status().message(),
            dir +
                "/c2.ckpt: its settings were recorded in another form (fingerprint version 1; "
                "this trainlab writes version 2): finish it with the trainlab that made it, or "
                "start afresh");
  EXPECT_TRUE(Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}, {"workers", {0, 1}}}, true)).ok());
}

TEST(Checkpoint, RefusesWhatItCannotResume) {
  const std::string dir = FreshTestDir("ckpt_bad");
  Training a(1);
  // Nothing to resume.
  auto none = Checkpointer::Open(Opts(dir, "c2", {}, true));
  EXPECT_EQ(none.status().message(),
            dir + "/c2.ckpt: no checkpoint to resume (run without --resume to start)");
  // Other settings: named, with both values.
  ASSERT_TRUE((*Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}, {"seed", 1}}, false)))
                  ->Finish({"sgd", 1}, SomeRun(), *a.model, *a.sgd)
                  .ok());
  auto other = Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.05}, {"seed", 1}}, true));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("made with other settings: lr was 0.1, now 0.05"),
            std::string::npos)
      << other.status();
  // Present, but --resume not given: never overwritten silently.
  auto exists = Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}, {"seed", 1}}, false));
  EXPECT_EQ(exists.status().code(), absl::StatusCode::kAlreadyExists);
  // Truncated.
  const std::string path = dir + "/c2.ckpt";
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  auto truncated = Checkpointer::Open(Opts(dir, "c2", {{"lr", 0.1}, {"seed", 1}}, true));
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find(path + ": not a usable checkpoint"),
            std::string::npos)
      << truncated.status();
  // Another format version (format 1: trainlab before the one codec).
  auto write_meta = [&](const std::string& meta) {
    torch::serialize::OutputArchive archive;
    archive.write("meta", c10::IValue(meta));
    std::ostringstream bytes;
    archive.save_to(bytes);
    const std::string framed = FrameCheckpoint(bytes.str());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(framed.data(), static_cast<std::streamsize>(framed.size()));
  };
  write_meta(R"({"format_version": 1, "experiment": "c2"})");
  auto version = Checkpointer::Open(Opts(dir, "c2", {}, true));
  EXPECT_EQ(version.status().message(),
            path +
                ": checkpoint format version 1, this build reads version 2 (finish it with the "
                "trainlab that wrote it, or start afresh)")
      << version.status();
  // A valid frame whose metadata has a field of the wrong type: the file and the field named.
  write_meta(R"({"format_version": 2, "experiment": "c2", "fingerprint": {}, "finished": {},
                 "current": {"key": "sgd #1", "epoch": "two", "done": {}}})");
  auto typed = Checkpointer::Open(Opts(dir, "c2", {}, true));
  EXPECT_EQ(typed.status().message(),
            path +
                ": not a usable checkpoint (meta.current.epoch: expected an integer, got the "
                "string \"two\")")
      << typed.status();
  // Garbage.
  std::ofstream(path, std::ios::trunc) << "not a checkpoint at all";
  auto garbage = Checkpointer::Open(Opts(dir, "c2", {}, true));
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss) << garbage.status();
  // One byte changed in the middle: the CRC catches it before LibTorch reads the archive (which
  // can crash on a corrupted zip: tests/fuzz found it).
  const std::string flip_dir = FreshTestDir("ckpt_flip");
  ASSERT_TRUE((*Checkpointer::Open(Opts(flip_dir, "c2", {{"lr", 0.1}}, false)))
                  ->Finish({"sgd", 1}, SomeRun(), *a.model, *a.sgd)
                  .ok());
  const std::string flip = flip_dir + "/c2.ckpt";
  {
    std::fstream f(flip, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(std::filesystem::file_size(flip) / 2));
    const char ch = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(flip) / 2));
    f.put(static_cast<char>(ch ^ 0x20));
  }
  auto flipped = Checkpointer::Open(Opts(flip_dir, "c2", {{"lr", 0.1}}, true));
  EXPECT_EQ(flipped.status().message(),
            flip + ": not a usable checkpoint (corrupted: CRC-32 mismatch)");
}

TEST(Checkpoint, ReadsOnlyRegularFilesAndNeverWaits) {
  const std::string dir = FreshTestDir("ckpt_special");
  const std::string path = dir + "/c2.ckpt";
  // A FIFO: opening it to read would wait for a writer for ever.
  ASSERT_EQ(mkfifo(path.c_str(), 0644), 0);
  const auto start = std::chrono::steady_clock::now();
  auto fifo = ReadCheckpointFile(path);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(fifo.status().message(), path + ": a FIFO, not a regular file");
  std::filesystem::remove(path);
  // A link to a device that never ends.
  std::filesystem::create_symlink("/dev/zero", path);
  EXPECT_EQ(ReadCheckpointFile(path).status().message(),
            path + ": a character device, not a regular file");
  std::filesystem::remove(path);
  // A directory.
  std::filesystem::create_directory(path);
  EXPECT_EQ(ReadCheckpointFile(path).status().message(),
            path + ": a directory, not a regular file");
  std::filesystem::remove(path);
  // Larger than any checkpoint may be (sparse: no disk used).
  { std::ofstream(path) << "x"; }
  std::filesystem::resize_file(path, kMaxCheckpointBytes + 1);
  EXPECT_EQ(ReadCheckpointFile(path).status().message(),
            path + ": 4294967297 bytes, more than the 4.0 GiB a checkpoint may be");
  std::filesystem::resize_file(path, 10);
  // Unreadable (root reads everything: only checked as another user).
  if (geteuid() != 0) {
    ASSERT_EQ(chmod(path.c_str(), 0), 0);
    EXPECT_EQ(ReadCheckpointFile(path).status().message(),
              path + ": cannot read: permission denied");
  }
}

}  // namespace
}  // namespace trainlab::experiments

namespace trainlab::experiments {
namespace {

// Settings the fingerprint holds only when set (a schedule) are compared both ways, and epochs
// extend a run only when they are extendable (not under a schedule over the whole run).
// --- A data-parallel job's copies: ranks as threads of this process -------------------------

// The checkpointer's two collectives over shared memory: every rank a thread, a barrier between
// the steps (the real ones are c10d's; //tests:dist_nodes_test runs those across processes).
class ThreadRanks {
 public:
  explicit ThreadRanks(int n) : n_(n), barrier_(n), slots_(static_cast<size_t>(n)) {}
  Checkpointer::Options::Ranks For(int rank, bool node_copy) {
    return {.rank = rank,
            .world_size = n_,
            .node_copy = node_copy,
            .broadcast = [this, rank](int root,
                                      const std::string& bytes) -> absl::StatusOr<std::string> {
              if (rank == root) slots_[static_cast<size_t>(root)] = bytes;
              barrier_.arrive_and_wait();
              std::string out = slots_[static_cast<size_t>(root)];
              barrier_.arrive_and_wait();
              return out;
            },
            .all_gather =
                [this, rank](const std::string& bytes) -> absl::StatusOr<std::vector<std::string>> {
              slots_[static_cast<size_t>(rank)] = bytes;
              barrier_.arrive_and_wait();
              std::vector<std::string> out = slots_;
              barrier_.arrive_and_wait();
              return out;
            }};
  }
  // Runs fn(rank) on every rank at once.
  void Run(const std::function<void(int)>& fn) {
    std::vector<std::thread> threads;
    for (int r = 0; r < n_; ++r) threads.emplace_back(fn, r);
    for (std::thread& t : threads) t.join();
  }

 private:
  int n_;
  std::barrier<> barrier_;
  std::vector<std::string> slots_;
};

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Three ranks on two nodes: ranks 0 and 1 on node A (rank 1 keeps no copy), rank 2 on node B.
struct ThreeRanks {
  std::string a, b;
  nlohmann::json fingerprint = {{"lr", 0.1}, {"world_size", 3}};
  ThreadRanks group{3};
  std::vector<std::unique_ptr<Training>> t;
  explicit ThreeRanks(const std::string& name)
      : a(FreshTestDir(name + "_node_a")), b(FreshTestDir(name + "_node_b")) {
    for (int r = 0; r < 3; ++r) t.push_back(std::make_unique<Training>(5));  // as DDP: equal
  }
  Checkpointer::Options OptionsFor(int rank, const std::string& job, bool resume = false) {
    Checkpointer::Options o = Opts(rank == 2 ? b : a, "c6", fingerprint, resume);
    o.job = job;
    o.ranks = group.For(rank, /*node_copy=*/rank != 1);
    return o;
  }
  // Job `job` opens afresh and saves run 'sgd #1' after epoch 1 on every rank (a copy in A and B).
  void SaveOnce(const std::string& job) {
    auto c = Open(job);
    for (int r = 0; r < 3; ++r) ASSERT_TRUE(c[r].ok()) << c[r].status();
    group.Run([&](int r) {
      EXPECT_TRUE(
          (*c[r])->Save({"sgd", 1}, SomeRun(), std::nullopt, 1, *t[r]->model, *t[r]->sgd).ok());
    });
  }
  // Opens on every rank; the outcomes in rank order.
  std::vector<absl::StatusOr<std::unique_ptr<Checkpointer>>> Open(const std::string& job,
                                                                  bool resume = false) {
    std::vector<absl::StatusOr<std::unique_ptr<Checkpointer>>> out(3);
    group.Run([&](int r) {
      out[static_cast<size_t>(r)] = Checkpointer::Open(OptionsFor(r, job, resume));
    });
    return out;
  }
};

TEST(CheckpointRanks, EveryNodeKeepsACopyAndALostNodeIsRefilledFromTheNewest) {
  ThreeRanks job("ranks_copies");
  std::string digest_1, digest_2;
  std::string first_copy;
  {
    auto c = job.Open("job-x");
    for (int r = 0; r < 3; ++r) ASSERT_TRUE(c[r].ok()) << r << ": " << c[r].status();
    EXPECT_EQ((*c[0])->copies(), 2);
    EXPECT_TRUE((*c[0])->writes());
    EXPECT_FALSE((*c[1])->writes());
    EXPECT_TRUE((*c[2])->writes());
    for (int r = 0; r < 3; ++r) job.t[r]->Step();  // (rank 0's state is what is written)
    job.group.Run([&](int r) {
      EXPECT_TRUE((*c[r])->Finish({"sgd", 1}, SomeRun(), *job.t[r]->model, *job.t[r]->sgd).ok());
    });
    digest_1 = StateDigest(*job.t[0]->model, *job.t[0]->sgd);
    first_copy = FileBytes(job.a + "/c6.ckpt");
    for (int r = 0; r < 3; ++r) job.t[r]->Step();
    job.group.Run([&](int r) {
      EXPECT_TRUE(
          (*c[r])
              ->Save({"adam", 1}, SomeRun(), std::nullopt, 1, *job.t[r]->model, *job.t[r]->sgd)
              .ok());
    });
    digest_2 = StateDigest(*job.t[0]->model, *job.t[0]->sgd);
  }
  // The same bytes in both nodes' folders, the finished run's final state too; none in rank 1's.
  ASSERT_FALSE(FileBytes(job.a + "/c6.ckpt").empty());
  EXPECT_EQ(FileBytes(job.a + "/c6.ckpt"), FileBytes(job.b + "/c6.ckpt"));
  const auto finals = [](const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (absl::EndsWith(e.path().filename().string(), ".final.ckpt")) out.push_back(e.path());
    }
    return out;
  };
  ASSERT_EQ(finals(job.a).size(), 1u);
  ASSERT_EQ(finals(job.b).size(), 1u);

  // Node A (rank 0's) replaced by a machine with an empty disk: every rank resumes from rank 2's
  // copy, which is written into A's folder with the final state.
  std::filesystem::remove_all(job.a);
  std::filesystem::create_directories(job.a);
  {
    auto c = job.Open("job-x");
    for (int r = 0; r < 3; ++r) ASSERT_TRUE(c[r].ok()) << r << ": " << c[r].status();
    EXPECT_EQ((*c[0])->restored_from(),
              "rank 2's copy (run 'adam #1', after epoch 1), written to the folder of rank 0, "
              "which lacked it or held an older or unreadable copy");
    EXPECT_EQ(FileBytes(job.a + "/c6.ckpt"), FileBytes(job.b + "/c6.ckpt"));
    EXPECT_EQ(finals(job.a).size(), 1u);
    for (int r = 0; r < 3; ++r) {
      Training fresh(99);
      auto p = (*c[r])->Resume({"adam", 1}, 5, *fresh.model, *fresh.sgd);
      ASSERT_TRUE(p.ok()) << p.status();
      ASSERT_TRUE(p->has_value()) << "rank " << r;
      EXPECT_EQ(StateDigest(*fresh.model, *fresh.sgd), digest_2) << "rank " << r;
    }
  }
  // An older copy on rank 0's node (the file of two writes ago) loses to rank 2's newer one.
  {
    std::ofstream(job.a + "/c6.ckpt", std::ios::binary | std::ios::trunc) << first_copy;
    auto c = job.Open("job-x");
    for (int r = 0; r < 3; ++r) ASSERT_TRUE(c[r].ok()) << r << ": " << c[r].status();
    EXPECT_NE((*c[0])->restored_from().find("rank 2's copy"), std::string::npos);
    EXPECT_EQ(FileBytes(job.a + "/c6.ckpt"), FileBytes(job.b + "/c6.ckpt"));
    Training fresh(99);
    auto p = (*c[1])->Resume({"adam", 1}, 5, *fresh.model, *fresh.sgd);
    ASSERT_TRUE(p.ok() && p->has_value());
    EXPECT_EQ(StateDigest(*fresh.model, *fresh.sgd), digest_2);
    EXPECT_NE(digest_1, digest_2);
  }
  // A copy that cannot be read (a bad disk on node B) is replaced by rank 0's good one.
  {
    std::ofstream(job.b + "/c6.ckpt", std::ios::binary | std::ios::trunc) << "TLCKPT01 garbage";
    auto c = job.Open("job-x");
    for (int r = 0; r < 3; ++r) ASSERT_TRUE(c[r].ok()) << r << ": " << c[r].status();
    EXPECT_EQ((*c[2])->restored_from().rfind("rank 0's copy (run 'adam #1', after epoch 1), "
                                             "written to the folder of rank 2",
                                             0),
              0u)
        << (*c[2])->restored_from();
    EXPECT_EQ(FileBytes(job.a + "/c6.ckpt"), FileBytes(job.b + "/c6.ckpt"));
  }
}

TEST(CheckpointRanks, RanksThatShareOneFolderHaveOneWriter) {
  const std::string dir = FreshTestDir("ranks_shared");
  ThreadRanks group(2);
  std::vector<absl::StatusOr<std::unique_ptr<Checkpointer>>> c(2);
  std::vector<std::unique_ptr<Training>> t;
  for (int r = 0; r < 2; ++r) t.push_back(std::make_unique<Training>(6));
  group.Run([&](int r) {
    Checkpointer::Options o = Opts(dir, "c2", {{"world_size", 2}}, false);
    o.ranks = group.For(r, /*node_copy=*/true);  // two nodes, one NFS folder
    c[static_cast<size_t>(r)] = Checkpointer::Open(o);
  });
  ASSERT_TRUE(c[0].ok()) << c[0].status();
  ASSERT_TRUE(c[1].ok()) << c[1].status();
  EXPECT_TRUE((*c[0])->writes());
  EXPECT_FALSE((*c[1])->writes());
  EXPECT_EQ((*c[0])->copies(), 1);
  EXPECT_EQ((*c[1])->path(), dir + "/c2.ckpt");
  group.Run([&](int r) {
    EXPECT_TRUE(
        (*c[r])->Save({"sgd", 1}, SomeRun(), std::nullopt, 1, *t[r]->model, *t[r]->sgd).ok());
  });
  EXPECT_TRUE(std::filesystem::exists(dir + "/c2.ckpt"));
  // Another run (not this job's opening) finds the folder locked, named by its holder.
  auto other = Checkpointer::Open(Opts(dir, "c2", {{"world_size", 2}}, true));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("in use by another run (checkpointer_test)"),
            std::string_view::npos)
      << other.status();
}

TEST(CheckpointRanks, EveryRankRefusesWhatAnyNodeHoldsThatItMayNotResume) {
  // Another job's checkpoint on node B only: refused on every rank, naming the rank and both jobs.
  {
    ThreeRanks job("ranks_other_job");
    job.SaveOnce("job-a");
    std::filesystem::remove(job.a + "/c6.ckpt");
    auto c = job.Open("job-b");
    for (int r = 0; r < 3; ++r) {
      ASSERT_FALSE(c[r].ok()) << r;
      EXPECT_TRUE(absl::IsAlreadyExists(c[r].status()));
      EXPECT_EQ(c[r].status().message(),
                absl::StrCat(r == 2 ? "" : "rank 2: ", job.b,
                             "/c6.ckpt: a checkpoint is already there (of job job-a; this is job "
                             "job-b); pass --resume to continue it, or remove it (or choose "
                             "another --checkpoint_dir) to start afresh"));
    }
    // With --resume the other job's copy is continued, and rank 0's empty folder refilled.
    auto resumed = job.Open("job-b", /*resume=*/true);
    for (int r = 0; r < 3; ++r) ASSERT_TRUE(resumed[r].ok()) << resumed[r].status();
    EXPECT_TRUE(std::filesystem::exists(job.a + "/c6.ckpt"));
  }
  // A job that lost a rank: the copy of 3 ranks is not resumed by 2, one line naming both sizes.
  {
    ThreeRanks job("ranks_world_size");
    job.SaveOnce("job-a");
    ThreadRanks two(2);
    std::vector<absl::StatusOr<std::unique_ptr<Checkpointer>>> c(2);
    two.Run([&](int r) {
      Checkpointer::Options o =
          Opts(r == 0 ? job.a : job.b, "c6", {{"lr", 0.1}, {"world_size", 2}}, /*resume=*/false);
      o.job = "job-a";
      o.ranks = two.For(r, true);
      c[static_cast<size_t>(r)] = Checkpointer::Open(o);
    });
    ASSERT_FALSE(c[0].ok());
    EXPECT_EQ(c[0].status().message(),
              job.a +
                  "/c6.ckpt: written by 3 ranks, and this job has 2 ranks: a run resumes only on "
                  "the world size that wrote it (its global batch and every rank's data shard "
                  "would change); start 3 ranks to continue it, or start afresh elsewhere");
    ASSERT_FALSE(c[1].ok());
    EXPECT_EQ(c[1].status().message(), "rank 0: " + std::string(c[0].status().message()));
  }
}

TEST(Fingerprint, ASettingLeftAtItsDefaultOrAScheduledRunExtendedIsADifference) {
  const nlohmann::json cosine = {{"lr", 0.1}, {"epochs", 2}, {"lr_schedule", "cosine"}};
  const nlohmann::json plain = {{"lr", 0.1}, {"epochs", 2}};
  FingerprintMatch m = CompareFingerprints(cosine, plain, {"epochs"});
  ASSERT_EQ(m.differences.size(), 1u);
  EXPECT_EQ(m.differences[0], "lr_schedule was \"cosine\", now the default");
  m = CompareFingerprints(plain, cosine, {"epochs"});
  ASSERT_EQ(m.differences.size(), 1u);
  EXPECT_EQ(m.differences[0], "lr_schedule (not recorded)");
  nlohmann::json longer = cosine;
  longer["epochs"] = 4;
  EXPECT_EQ(CompareFingerprints(cosine, longer, {"epochs"}).extended.count("epochs"), 1u);
  m = CompareFingerprints(cosine, longer, {});
  ASSERT_EQ(m.differences.size(), 1u);
  EXPECT_EQ(m.differences[0], "epochs was 2, now 4");
}

}  // namespace
}  // namespace trainlab::experiments
