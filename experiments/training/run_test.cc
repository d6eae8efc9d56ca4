// Runs in a real Session on tiny synthetic data: which errors a variant may be skipped for, and a
// stop that arrives after the last batch.
#include "experiments/training/run.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "experiments/harness/experiment_main.h"
#include "experiments/harness/stop.h"
#include "tests/test_dir.h"

namespace trainlab::experiments {
namespace {

ExperimentOptions Tiny(const std::string& experiment) {
  ExperimentOptions o;
  o.experiment = experiment;
  o.command_line = {experiment, "--checkpoint_dir=/a dir/with 'quotes'"};
  o.dataset = "synthetic";
  o.synthetic_train = 32;
  o.synthetic_test = 16;
  o.threads = 1;
  o.progress = "off";
  o.run.batch_size = 8;
  o.run.max_batches_per_epoch = 2;
  o.run.epochs = 2;
  o.run.num_workers = 0;
  return o;
}

TEST(RunVariant, OnlyAStrategyThatCannotRunHereIsSkipped) {
  absl::StatusOr<Session> s = Session::Start(Tiny("c8"));
  ASSERT_TRUE(s.ok()) << s.status();
  // The CPU build cannot run cuda_graph at all; a CUDA build cannot on the CPU: skipped, named.
  Variant graph{.label = "cuda_graph", .config = s->DefaultRun()};
  graph.config.strategy = "cuda_graph";
  absl::StatusOr<VariantResult> skipped = RunVariant(*s, graph, /*can_skip=*/true);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_NE(skipped->skipped.find("cuda_graph needs a CUDA device"), std::string::npos)
      << skipped->skipped;
  // A loader that fails is no strategy's fault: the error comes back, and c8 stops with it.
  Variant broken{.label = "eager", .config = s->DefaultRun()};
  broken.config.loader_fault = [](int64_t, int64_t batch) {
    if (batch == 1) throw std::runtime_error("disk gone");
  };
  absl::StatusOr<VariantResult> failed = RunVariant(*s, broken, /*can_skip=*/true);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("data loader: batch 1 of epoch 1: disk gone"),
            std::string::npos)
      << failed.status();
}

// --target_accuracy stops after the first epoch whose test top-1 reaches it: the target is taken
// from a run without one (the runs are deterministic on one thread without loader workers).
TEST(RunTraining, ATargetAccuracyStopsAtTheFirstEpochThatReachesIt) {
  ExperimentOptions o = Tiny("c2");
  o.run.epochs = 4;
  o.run.evaluate = true;
  o.synthetic_train = 64;
  absl::StatusOr<Session> s = Session::Start(o);
  ASSERT_TRUE(s.ok()) << s.status();
  RunConfig config = s->DefaultRun();
  config.print_blocks = false;
  absl::StatusOr<RunResult> all = RunTraining(*s, config);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->test.size(), 4u);
  EXPECT_FALSE(all->target.has_value());
  double best = 0;
  for (const EvalStats& t : all->test) best = std::max(best, t.top1);
  ASSERT_GT(best, 0);
  size_t first = 0;
  while (all->test[first].top1 < best) ++first;

  config.target_accuracy = best;
  absl::StatusOr<RunResult> r = RunTraining(*s, config);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->target.has_value());
  EXPECT_EQ(r->epochs.size(), first + 1);
  EXPECT_EQ(r->target->epoch, static_cast<int64_t>(first + 1));
  EXPECT_EQ(r->target->target, best);
  double train = 0, wall = 0;
  int64_t batches = 0;
  for (const EpochStats& e : r->epochs) {
    train += e.train_s;
    wall += e.epoch_s;
    batches += static_cast<int64_t>(e.batches.size());
  }
  for (const EvalStats& t : r->test) wall += t.seconds;
  EXPECT_EQ(r->target->batches, batches);
  EXPECT_DOUBLE_EQ(r->target->train_s, train);
  EXPECT_DOUBLE_EQ(r->target->wall_s, wall);
  EXPECT_GT(r->target->wall_s, r->target->train_s);
  // Above anything reached: every epoch trains, and no target is recorded.
  if (best < 100) {
    config.target_accuracy = std::min(100.0, best + 0.5);
    absl::StatusOr<RunResult> below = RunTraining(*s, config);
    ASSERT_TRUE(below.ok()) << below.status();
    EXPECT_EQ(below->epochs.size(), 4u);
    EXPECT_FALSE(below->target.has_value());
  }
}

// --keep_best writes the weights of the best test epoch: byte for byte those of the same run cut
// at that epoch (deterministic here; the constant rate does not depend on --epochs).
TEST(RunTraining, KeepBestWritesTheBestEpochsWeights) {
  const std::string dir = FreshTestDir("keep_best");
  ExperimentOptions o = Tiny("c2");
  o.run.epochs = 3;
  o.run.evaluate = true;
  o.synthetic_train = 64;
  absl::StatusOr<Session> s = Session::Start(o);
  ASSERT_TRUE(s.ok()) << s.status();
  RunConfig config = s->DefaultRun();
  config.print_blocks = false;
  config.keep_best = true;
  config.save_model = dir + "/best.pt";
  absl::StatusOr<RunResult> r = RunTraining(*s, config);
  ASSERT_TRUE(r.ok()) << r.status();
  size_t best = 0;
  for (size_t i = 1; i < r->test.size(); ++i) {
    if (r->test[i].top1 > r->test[best].top1) best = i;
  }
  config.keep_best = false;
  config.epochs = static_cast<int>(best) + 1;
  config.save_model = dir + "/cut.pt";
  ASSERT_TRUE(RunTraining(*s, config).ok());
  auto read = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string kept = read(dir + "/best.pt");
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept, read(dir + "/cut.pt")) << "best epoch " << best + 1;
  // When the best epoch is not the last, the last epoch's weights are another file.
  if (best + 1 < r->test.size()) {
    config.epochs = static_cast<int>(r->test.size());
    config.save_model = dir + "/last.pt";
    ASSERT_TRUE(RunTraining(*s, config).ok());
    EXPECT_NE(kept, read(dir + "/last.pt"));
  }
  std::printf("keep_best: best epoch %zu of %zu\n", best + 1, r->test.size());
}

// Last in this file: a signal's stop request lasts for the rest of the process.
TEST(RunTraining, AStopAfterTheLastBatchKeepsTheFinishedRun) {
  const std::string dir = FreshTestDir("stop_after_last");
  ExperimentOptions o = Tiny("c2");
  o.checkpoint_dir = dir;
  o.run.evaluate = true;
  absl::StatusOr<Session> s = Session::Start(o);
  ASSERT_TRUE(s.ok()) << s.status();
  InstallStopHandlers();
  RunConfig run = s->DefaultRun();
  run.label = "sgd";
  // SIGINT while the last epoch is being evaluated: after its last batch.
  run.before_evaluate = [&](int64_t epoch) {
    if (epoch == run.epochs - 1) raise(SIGINT);
  };
  absl::StatusOr<RunResult> r = RunTraining(*s, run);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->epochs.size(), 2u);
  EXPECT_EQ(r->test.size(), 2u);  // the evaluation the signal arrived in finished too
  EXPECT_EQ(StopSignal(), SIGINT);
  // The run is recorded as finished; nothing else starts.
  EXPECT_EQ(s->checkpointer->LastPosition(), "after run 'sgd'");
  Variant next{.label = "adam", .config = run};
  EXPECT_TRUE(absl::IsCancelled(RunVariant(*s, next).status()));
  // What the binary would say: where the checkpoint is, and the command, shell-quoted.
  testing::internal::CaptureStderr();
  EXPECT_EQ(ExitCode("c2", absl::CancelledError("stopped by SIGINT"), &*s), 130);
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(said, "c2: stopped by SIGINT: checkpoint written to " + dir +
                      "/c2.ckpt (after run 'sgd'); resume with: c2 '--checkpoint_dir=/a "
                      "dir/with '\\''quotes'\\''' --resume\n");
  s->checkpointer.reset();
  auto reopened = Checkpointer::Open(
      {.dir = dir, .experiment = "c2", .fingerprint = s->Fingerprint(), .resume = true});
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_NE((*reopened)->Finished({"sgd", 1}, 2), nullptr);
}

}  // namespace
}  // namespace trainlab::experiments
