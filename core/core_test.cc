// The core on its own: a tiny model and an in-memory loader, no plugins.
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "core/concepts.h"
#include "core/introspect.h"
#include "core/lr_schedule.h"
#include "core/optimizer.h"
#include "core/stats.h"
#include "core/strategy.h"
#include "core/trace.h"
#include "core/trainer.h"
#include "gtest/gtest.h"

namespace trainlab {
namespace {

// x: (B, 3, 8, 8) -> logits (B, 10)
struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1)));
    head = register_module("head", torch::nn::Linear(8, 10));
  }
  at::Tensor forward(const at::Tensor& x) {
    return head->forward(at::relu(conv->forward(x)).mean({2, 3}));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear head{nullptr};
};

// Batches from tensors held in memory; the class is the brightest channel.
class VectorLoader {
 public:
  explicit VectorLoader(int64_t batches, int64_t batch_size = 16) {
    torch::manual_seed(3);
    for (int64_t b = 0; b < batches; ++b) {
      at::Tensor y = at::randint(0, 3, {batch_size}, at::kLong);
      at::Tensor x = at::randn({batch_size, 3, 8, 8}) * 0.3;
      for (int64_t i = 0; i < batch_size; ++i) x[i][y[i].item<int64_t>()] += 1.0;
      batches_.push_back({x, y, b});
    }
  }
  void start_epoch(int64_t, int64_t first_batch = 0) { next_ = first_batch; }
  absl::Status status() const { return absl::OkStatus(); }
  std::optional<Batch> next() {
    if (next_ >= static_cast<int64_t>(batches_.size())) return std::nullopt;
    return batches_[next_++];
  }
  int64_t batches_per_epoch() const { return static_cast<int64_t>(batches_.size()); }
  std::vector<Batch>& batches() { return batches_; }

 private:
  std::vector<Batch> batches_;
  int64_t next_ = 0;
};

static_assert(Model<TinyNetImpl>);
static_assert(Optimizer<torch::optim::SGD>);
static_assert(Optimizer<torch::optim::Optimizer>);
static_assert(Loader<VectorLoader>);
static_assert(!Loader<TinyNetImpl>);

TEST(Trainer, LossFallsOverEpochsAndStatsAddUp) {
  torch::manual_seed(0);
  TinyNetImpl net;
  torch::optim::SGD sgd(net.parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  VectorLoader loader(6);
  Trainer trainer(net, sgd, loader, TrainerOptions{});
  std::vector<EpochStats> epochs;
  for (int e = 0; e < 8; ++e) {
    absl::StatusOr<EpochStats> s = trainer.TrainEpoch(e);
    ASSERT_TRUE(s.ok()) << s.status();
    epochs.push_back(*s);
  }
  EXPECT_LT(epochs.back().loss, 0.5 * epochs.front().loss);
  EXPECT_GT(epochs.back().top1, 90.0);
  const EpochStats& last = epochs.back();
  EXPECT_EQ(last.epoch, 8);
  EXPECT_EQ(last.samples, 6 * 16);
  ASSERT_EQ(last.batches.size(), 6u);
  double train = 0, loss = 0;
  for (const BatchRecord& b : last.batches) {
    train += b.train_s;
    loss += b.loss;
    EXPECT_GE(b.wait_s, 0);
  }
  EXPECT_DOUBLE_EQ(last.train_s, train);
  EXPECT_NEAR(last.loss, loss / 6, 1e-12);
  EXPECT_LE(last.load_s + last.copy_s + last.train_s, last.epoch_s);
  EXPECT_FALSE(last.diverged.has_value());

  absl::StatusOr<EvalStats> evaluated = trainer.Evaluate(loader);
  ASSERT_TRUE(evaluated.ok()) << evaluated.status();
  const EvalStats& eval = *evaluated;
  EXPECT_EQ(eval.samples, 96);
  EXPECT_GT(eval.top1, 90.0);
  EXPECT_TRUE(net.is_training());
}

TEST(Trainer, ANanLossIsReportedAsDivergenceAtItsBatch) {
  TinyNetImpl net;
  torch::optim::SGD sgd(net.parameters(), torch::optim::SGDOptions(0.1));
  VectorLoader loader(5);
  loader.batches()[2].images[0][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  Trainer trainer(net, sgd, loader, TrainerOptions{});
  absl::StatusOr<EpochStats> s = trainer.TrainEpoch(0);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->diverged.has_value());
  EXPECT_EQ(s->diverged->epoch, 1);
  EXPECT_EQ(s->diverged->batch, 3);  // 1-based: the third batch
  EXPECT_EQ(s->batches.size(), 3u);
}

// An epoch batch by batch, as the run drives it: the caller sees each batch's record, ends the
// epoch at the batch it chooses (another rank's divergence: a NaN loss here), and the epoch's
// figures cover the batches trained; without an end, TrainBatch says when the batches are done.
TEST(Trainer, BatchByBatchTheCallerEndsTheEpoch) {
  TinyNetImpl net;
  torch::optim::SGD sgd(net.parameters(), torch::optim::SGDOptions(0.1));
  VectorLoader loader(5);
  Trainer trainer(net, sgd, loader, TrainerOptions{});
  ASSERT_TRUE(trainer.BeginEpoch(0).ok());
  std::vector<int64_t> seen;
  for (;;) {
    absl::StatusOr<const BatchRecord*> b = trainer.TrainBatch();
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_NE(*b, nullptr);
    seen.push_back((*b)->index);
    EXPECT_EQ(trainer.SoFar().batches.size(), seen.size());
    EXPECT_EQ(trainer.Progress().batches_done, static_cast<int64_t>(seen.size()));
    if (seen.size() == 2) {  // "rank 1 diverged" at batch 2
      trainer.Diverged(std::nan(""));
      break;
    }
  }
  absl::StatusOr<EpochStats> s = trainer.EndEpoch();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->diverged.has_value());
  EXPECT_EQ(s->diverged->batch, 2);
  EXPECT_TRUE(std::isnan(s->diverged->loss));
  EXPECT_EQ(s->batches.size(), 2u);
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1}));

  // The next epoch runs to its end: five batches, then none.
  ASSERT_TRUE(trainer.BeginEpoch(1).ok());
  int trained = 0;
  for (;;) {
    absl::StatusOr<const BatchRecord*> b = trainer.TrainBatch();
    ASSERT_TRUE(b.ok()) << b.status();
    if (*b == nullptr) break;
    ++trained;
  }
  EXPECT_EQ(trained, 5);
  absl::StatusOr<EpochStats> full = trainer.EndEpoch();
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->epoch, 2);
  EXPECT_FALSE(full->diverged.has_value());
}

// A resumed epoch goes on after the batches a checkpoint kept, and its figures cover them all.
TEST(Trainer, AResumedEpochContinuesAfterItsBatches) {
  TinyNetImpl net;
  torch::optim::SGD sgd(net.parameters(), torch::optim::SGDOptions(0.1));
  VectorLoader loader(4);
  Trainer trainer(net, sgd, loader, TrainerOptions{});
  ASSERT_TRUE(trainer.BeginEpoch(0).ok());
  ASSERT_TRUE(trainer.TrainBatch().ok());
  ASSERT_TRUE(trainer.TrainBatch().ok());
  const EpochStats kept = trainer.SoFar();  // as a checkpoint would keep it
  ASSERT_TRUE(trainer.BeginEpoch(0, kept).ok());
  EXPECT_EQ(trainer.NextStep(), 2);
  absl::StatusOr<const BatchRecord*> third = trainer.TrainBatch();
  ASSERT_TRUE(third.ok() && *third != nullptr);
  EXPECT_EQ((*third)->index, 2);
  ASSERT_TRUE(trainer.TrainBatch().ok());
  absl::StatusOr<EpochStats> s = trainer.EndEpoch();
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->batches.size(), 4u);
  EXPECT_EQ(s->samples, 4 * 16);
  EXPECT_NEAR(
      s->loss,
      (s->batches[0].loss + s->batches[1].loss + s->batches[2].loss + s->batches[3].loss) / 4,
      1e-12);
}

// An exception thrown inside the step (LibTorch's: a shape error) is a Status naming the epoch
// and batch, marked as a step's exception, not an exception through the caller.
TEST(Trainer, AStepThatThrowsNamesItsEpochAndBatch) {
  TinyNetImpl net;
  torch::optim::SGD sgd(net.parameters(), torch::optim::SGDOptions(0.1));
  VectorLoader loader(3);
  loader.batches()[1].images = at::randn({16, 5, 8, 8});  // 5 channels: the conv refuses
  Trainer trainer(net, sgd, loader, TrainerOptions{});
  absl::StatusOr<EpochStats> s = trainer.TrainEpoch(0);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(IsStepException(s.status())) << s.status();
  EXPECT_EQ(s.status().message().rfind("epoch 1, batch 2: ", 0), 0u) << s.status();
  EXPECT_FALSE(IsStrategyCannotRun(s.status()));
}

TEST(Trainer, RecordsPhasesWhenAskedAndTheyFitInTheStep) {
  TinyNetImpl net;
  torch::optim::SGD sgd(net.parameters(), torch::optim::SGDOptions(0.1));
  VectorLoader loader(2);
  TrainerOptions o;
  o.record_phases = true;
  Trainer trainer(net, sgd, loader, o);
  absl::StatusOr<EpochStats> s = trainer.TrainEpoch(0);
  ASSERT_TRUE(s.ok());
  for (const BatchRecord& b : s->batches) {
    ASSERT_TRUE(b.phases.has_value());
    EXPECT_GT(b.phases->forward_s, 0);
    EXPECT_GT(b.phases->backward_s, 0);
    EXPECT_LE(b.phases->forward_s + b.phases->backward_s + b.phases->step_s, b.train_s);
  }
}

// The schedule's rate of each global step, set before its batch as the run does, is on the
// optimizer when that batch trains and in the batch's record; NextStep continues the count in a
// second epoch (epoch x batches per epoch + batch).
TEST(Trainer, NextStepCountsTheScheduledSteps) {
  TinyNetImpl net;
  torch::optim::SGD sgd(net.parameters(), torch::optim::SGDOptions(0.1));
  VectorLoader loader(3);
  absl::StatusOr<LrSchedule> schedule = LrSchedule::Make(
      {.kind = "onecycle", .lr = 0.3, .warmup_epochs = 1, .epochs = 2, .steps_per_epoch = 3});
  ASSERT_TRUE(schedule.ok());
  Trainer trainer(net, sgd, loader, TrainerOptions{});
  std::vector<double> recorded;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    ASSERT_TRUE(trainer.BeginEpoch(epoch).ok());
    for (;;) {
      const double lr = schedule->At(trainer.NextStep());
      SetLearningRate(sgd, lr);
      absl::StatusOr<const BatchRecord*> b = trainer.TrainBatch(lr);
      ASSERT_TRUE(b.ok());
      if (*b == nullptr) break;
      EXPECT_EQ(sgd.param_groups()[0].options().get_lr(), lr);
      recorded.push_back((*b)->lr);
    }
    ASSERT_TRUE(trainer.EndEpoch().ok());
  }
  // Warm-up 0.1, 0.2, 0.3, then (6 - s) / 3 x 0.3: 0.3, 0.2, 0.1.
  const std::vector<double> want = {0.1, 0.2, 0.3, 0.3, 0.2, 0.1};
  ASSERT_EQ(recorded.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(recorded[i], want[i], 1e-12) << i;
}

// Label smoothing is PyTorch's: values torch 1.13 computed (F.cross_entropy(x, y,
// label_smoothing=e), Debian's python3-torch, 2026-12-04) for these logits, and the definition
// (1 - e) CE + e mean_k(-log p_k) computed here.
TEST(Step, LabelSmoothingIsPyTorchs) {
  const at::Tensor x =
      at::tensor({2.0, -1.0, 0.5, 0.0, 0.1, 0.2, 3.0, -2.0, -1.5, 1.5, 0.0, 0.25}).reshape({3, 4});
  const at::Tensor y = at::tensor({0, 2, 3}, at::kLong);
  StepFunctions fns;
  fns.forward = [](const at::Tensor& t) { return t; };
  const double golden[] = {0.717428863, 0.867012203, 1.016595602};
  const double eps[] = {0.0, 0.1, 0.2};
  const at::Tensor logp = at::log_softmax(x, 1);
  const double ce = -logp.gather(1, y.unsqueeze(1)).mean().item<double>();
  const double uniform = -logp.mean().item<double>();
  for (int i = 0; i < 3; ++i) {
    StepOptions o;
    o.label_smoothing = eps[i];
    const double loss = ForwardAndLoss(fns, o, x, y).first.item<double>();
    EXPECT_NEAR(loss, golden[i], 1e-6) << eps[i];
    EXPECT_NEAR(loss, (1 - eps[i]) * ce + eps[i] * uniform, 1e-6) << eps[i];
  }
}

// --tta=flip: the mean of the logits of each test image and its mirror, computed here by hand.
TEST(Trainer, FlipTestTimeAugmentationAveragesTheMirror) {
  TinyNetImpl net;
  torch::optim::SGD sgd(net.parameters(), torch::optim::SGDOptions(0.1));
  VectorLoader train(2), test(2, 8);
  TrainerOptions o;
  o.tta_flip = true;
  Trainer trainer(net, sgd, train, o);
  ASSERT_TRUE(trainer.TrainEpoch(0).ok());
  absl::StatusOr<EvalStats> got = trainer.Evaluate(test);
  ASSERT_TRUE(got.ok());
  torch::NoGradGuard no_grad;
  net.eval();
  double loss = 0;
  int64_t correct = 0, n = 0;
  for (const Batch& b : test.batches()) {
    // The mirror, by reversed column indices (not at::flip, which the trainer uses).
    const int64_t w = b.images.size(3);
    const at::Tensor mirror = b.images.index_select(3, at::arange(w - 1, -1, -1, at::kLong));
    const at::Tensor logits = (net.forward(b.images) + net.forward(mirror.contiguous())) / 2;
    loss += at::cross_entropy_loss(logits, b.labels, {}, at::Reduction::Sum).item<double>();
    correct += logits.argmax(1).eq(b.labels).sum().item<int64_t>();
    n += b.images.size(0);
  }
  EXPECT_EQ(got->samples, n);
  EXPECT_NEAR(got->loss, loss / static_cast<double>(n), 1e-6);
  EXPECT_DOUBLE_EQ(got->top1, 100.0 * static_cast<double>(correct) / static_cast<double>(n));
  EXPECT_GT(got->seconds, 0);
  // Without the flag the plain logits: a different loss (the mirror is another image).
  TrainerOptions plain;
  Trainer untouched(net, sgd, train, plain);
  absl::StatusOr<EvalStats> no_tta = untouched.Evaluate(test);
  ASSERT_TRUE(no_tta.ok());
  EXPECT_NE(no_tta->loss, got->loss);
}

TEST(LabBlock, MatchesTheLabsFormatExactly) {
  EpochStats s;
  s.epoch = 1;
  s.loss = 1.90551;
  s.top1 = 30.7712;
  s.load_s = 4.59661;
  s.train_s = 7.95232;
  s.epoch_s = 13.36234;
  s.batches.resize(391);
  EXPECT_EQ(FormatLabBlock(s),
            "=====\n"
            "Epoch 1 Summary:\n"
            "- Loss: 1.9055\n"
            "- Accuracy (Top-1): 30.77%\n"
            "- Total Data Loading Time: 4.5966s\n"
            "- Total Training Time: 7.9523s\n"
            "- Average Training Time per Batch: 0.0203s\n"
            "- Total Epoch Time: 13.3623s\n"
            "=====\n");
}

struct ThingEntry {
  static constexpr std::string_view kKind = "thing";
  int value = 0;
};

TEST(Registry, FindsRegisteredNamesAndListsThemWhenOneIsUnknown) {
  Registry<ThingEntry> r;
  r.Register("b", {2});
  r.Register("a", {1});
  ASSERT_TRUE(r.Find("a").ok());
  EXPECT_EQ((*r.Find("b"))->value, 2);
  EXPECT_EQ(r.Names(), (std::vector<std::string>{"a", "b"}));
  absl::StatusOr<const ThingEntry*> missing = r.Find("c");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "unknown thing 'c'; known: a, b");
  EXPECT_DEATH(r.Register("a", {3}), "registered twice");
}

TEST(Strategies, ResolveAppliesInOrderAndRefusesWhatCannotRun) {
  auto& reg = StrategyRegistry::Global();
  reg.Register("test_nhwc", {.description = "", .can_run = nullptr, .apply = [](StepOptions& o) {
                               o.memory_format = c10::MemoryFormat::ChannelsLast;
                             }});
  reg.Register("test_gpu_only", {.description = "",
                                 .can_run =
                                     [](const c10::Device& d) {
                                       return d.is_cuda()
                                                  ? absl::OkStatus()
                                                  : absl::FailedPreconditionError(
                                                        "test_gpu_only needs a CUDA device");
                                     },
                                 .apply = [](StepOptions& o) { o.cudnn_benchmark = true; }});
  absl::StatusOr<StepOptions> o = ResolveStrategies("test_nhwc", c10::kCPU);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->memory_format, c10::MemoryFormat::ChannelsLast);
  EXPECT_EQ(o->names, std::vector<std::string>{"test_nhwc"});

  absl::StatusOr<StepOptions> gpu = ResolveStrategies("test_nhwc+test_gpu_only", c10::kCPU);
  ASSERT_FALSE(gpu.ok());
  EXPECT_EQ(gpu.status().message(), "test_gpu_only needs a CUDA device");
  EXPECT_TRUE(ResolveStrategies("test_nhwc+test_gpu_only", c10::Device(c10::kCUDA, 0)).ok());
  EXPECT_FALSE(ResolveStrategies("test_nhwc+test_nhwc", c10::kCPU).ok());
  EXPECT_FALSE(ResolveStrategies("test_nhwc+", c10::kCPU).ok());
  absl::StatusOr<StepOptions> unknown = ResolveStrategies("warp_drive", c10::kCPU);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown strategy 'warp_drive'"), std::string::npos);
}

TEST(OptimizerSettings, RejectsNonsenseWithTheValue) {
  EXPECT_TRUE(ValidateOptimizerSettings({}).ok());
  absl::Status s = ValidateOptimizerSettings({.lr = -0.1});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("-0.1"), std::string::npos);
  EXPECT_FALSE(ValidateOptimizerSettings({.lr = 0.1, .weight_decay = -1}).ok());
  EXPECT_FALSE(ValidateOptimizerSettings({.lr = 0.1, .weight_decay = 0, .momentum = 1.0}).ok());
}

TEST(Trace, WritesNamedTracksAndCompleteEvents) {
  TraceRecorder trace;
  trace.NameThisThread("main \"quoted\"");
  auto t0 = Clock::now();
  trace.Span("outer", "test", t0, t0 + std::chrono::milliseconds(2));
  std::thread([&] {
    trace.NameThisThread("worker");
    trace.Span("inner", "test", t0, t0 + std::chrono::microseconds(500));
  }).join();
  const std::string path = testing::TempDir() + "/trace.json";
  ASSERT_TRUE(trace.WriteJson(path).ok());
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  const std::string json = text.str();
  EXPECT_NE(json.find("\"traceEvents\""), std::string::npos);
  EXPECT_NE(json.find("\"args\":{\"name\":\"main \\\"quoted\\\"\"}"), std::string::npos);
  EXPECT_NE(json.find("\"args\":{\"name\":\"worker\"}"), std::string::npos);
  EXPECT_NE(json.find("\"name\":\"outer\",\"cat\":\"test\",\"pid\":1,\"tid\":1,\"ts\":"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"dur\":2000.000}"), std::string::npos) << json;
  ASSERT_EQ(trace.events().size(), 2u);
  EXPECT_NE(trace.events()[0].tid, trace.events()[1].tid);
  EXPECT_FALSE(trace.WriteJson("/nonexistent/dir/trace.json").ok());
}

}  // namespace
}  // namespace trainlab
