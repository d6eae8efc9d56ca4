// GraphStepRunner's decisions (warm-up, capture, replay, eager, recapture, failure), driven on
// the CPU by a fake backend that logs what it is asked to do; and the in-place eager step that
// keeps gradients in the graph's static buffers.
#include "plugins/compile/graph_step.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace trainlab::compile {
namespace {

// Logs each call: "W" warm-up, "C<size>" capture, "R" replay, "E" eager, "D" discard.
class FakeBackend final : public GraphBackend {
 public:
  FakeBackend(std::vector<std::string>* log, absl::Status capture_result)
      : log_(log), capture_result_(std::move(capture_result)) {}
  StepOutput WarmupStep(const at::Tensor&, const at::Tensor&) override { return Log("W"); }
  absl::Status Capture(const at::Tensor& x, const at::Tensor&) override {
    log_->push_back("C" + std::to_string(x.size(0)));
    return capture_result_;
  }
  StepOutput Replay(const at::Tensor&, const at::Tensor&) override { return Log("R"); }
  StepOutput EagerStepKeepingGradients(const at::Tensor&, const at::Tensor&, PhaseTimes*) override {
    return Log("E");
  }
  void Discard() override { log_->push_back("D"); }

 private:
  StepOutput Log(const std::string& what) {
    log_->push_back(what);
    return {at::zeros({}), at::zeros({}, at::kLong)};
  }
  std::vector<std::string>* log_;
  absl::Status capture_result_;
};

// Runs batches of the given sizes; returns the backend's log joined by spaces.
std::string Drive(const std::vector<int64_t>& sizes, int warmup,
                  absl::Status capture_result = absl::OkStatus(),
                  GraphStepCounts* counts = nullptr) {
  std::vector<std::string> log;
  GraphStepRunner runner("cuda_graph", std::make_unique<FakeBackend>(&log, capture_result), warmup);
  for (int64_t b : sizes) {
    absl::StatusOr<StepOutput> out = runner.Run(at::zeros({b, 3}), at::zeros({b}), nullptr);
    if (!out.ok()) log.push_back("error");
  }
  if (counts) *counts = runner.counts();
  return absl::StrJoin(log, " ");
}

TEST(GraphStepRunner, WarmsUpCapturesOnceReplaysAndStepsTheShortLastBatchEagerly) {
  GraphStepCounts c;
  // Two epochs of 6 batches of 8 and a last batch of 5.
  EXPECT_EQ(Drive({8, 8, 8, 8, 8, 8, 5, 8, 8, 8, 8, 8, 8, 5}, 3, absl::OkStatus(), &c),
            "W W W C8 R R R E R R R R R R E");
  EXPECT_EQ(c.warmup, 3);
  EXPECT_EQ(c.captures, 1);
  EXPECT_EQ(c.replays, 9);
  EXPECT_EQ(c.eager, 2);
}

// An epoch's short last batch arriving right after the warm-up is not captured: the capture
// waits for the next full batch, so full batches still replay.
TEST(GraphStepRunner, NeverCapturesAShortBatch) {
  EXPECT_EQ(Drive({8, 8, 8, 5, 8, 8}, 3), "W W W E C8 R R");
  EXPECT_EQ(Drive({8, 5, 8, 8}, 2), "W W C8 R R");
}

TEST(GraphStepRunner, WarmsUpAndCapturesAgainWhenALargerBatchComes) {
  EXPECT_EQ(Drive({4, 4, 8, 8, 8, 4}, 1), "W C4 R D W C8 R R E");
}

TEST(GraphStepRunner, AFailedCaptureIsAnErrorAndNothingIsReplayed) {
  std::vector<std::string> log;
  GraphStepRunner runner(
      "cuda_graph",
      std::make_unique<FakeBackend>(&log, absl::InternalError("operation not permitted")), 1);
  const at::Tensor x = at::zeros({8, 3}), y = at::zeros({8});
  ASSERT_TRUE(runner.Run(x, y, nullptr).ok());
  absl::StatusOr<StepOutput> failed = runner.Run(x, y, nullptr);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(),
            "cuda_graph: capturing the step (batch of 8) failed: operation not permitted");
  // Asked again, the runner repeats the error; it neither replays nor captures again.
  absl::StatusOr<StepOutput> again = runner.Run(x, y, nullptr);
  EXPECT_EQ(again.status(), failed.status());
  EXPECT_EQ(absl::StrJoin(log, " "), "W C8");
}

// The step a short batch takes after a capture: gradients keep their storage (the graph's
// static buffers), even when the optimizer's zero_grad would set them to None as LibTorch 2.x's
// does; and they hold this batch's gradients, as a fresh eager step computes them.
TEST(EagerStepKeepingGradients, KeepsGradientStorageAndComputesTheSameGradients) {
  torch::manual_seed(3);
  torch::nn::Linear model(4, 3);
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.0));  // lr 0: no update
  StepFunctions fns;
  fns.module = model.get();
  fns.forward = [&](const at::Tensor& x) { return model->forward(x); };
  fns.zero_grad = [&] {  // LibTorch 2.x's default: set_to_none
    for (auto& p : model->parameters()) p.mutable_grad().reset();
  };
  fns.optimizer_step = [&] { sgd.step(); };
  const at::Tensor x1 = at::randn({5, 4}), y1 = at::randint(0, 3, {5});
  const at::Tensor x2 = at::randn({2, 4}), y2 = at::randint(0, 3, {2});

  EagerStep(fns, StepOptions{}, x1, y1, nullptr);  // gradients now exist ("static buffers")
  std::vector<at::Tensor> storage;  // held, so that freed memory cannot be handed out again
  for (auto& p : model->parameters()) storage.push_back(p.grad());

  EagerStepKeepingGradients(fns, StepOptions{}, x2, y2, nullptr);
  std::vector<at::Tensor> kept;
  for (size_t i = 0; i < storage.size(); ++i) {
    const at::Tensor& g = model->parameters()[i].grad();
    EXPECT_EQ(g.data_ptr(), storage[i].data_ptr()) << "parameter " << i;
    kept.push_back(g.clone());
  }

  EagerStep(fns, StepOptions{}, x2, y2, nullptr);  // set to None, then fresh gradients
  for (size_t i = 0; i < storage.size(); ++i) {
    const at::Tensor& g = model->parameters()[i].grad();
    EXPECT_NE(g.data_ptr(), storage[i].data_ptr()) << "the plain step allocates new gradients";
    EXPECT_TRUE(at::allclose(kept[i], g)) << "parameter " << i;
  }
}

}  // namespace
}  // namespace trainlab::compile
