// ResNet-18 as the per-layer profile sees it: every module with parameters appears, under its
// module name, and the traced forward FLOPs equal a count made from the architecture alone; the
// layers' times come from the tracer's timeline on whichever thread runs the backward (the
// autograd engine's device thread on a GPU), and a timeline that cannot be read is an error.
#include <ATen/ATen.h>
#include <ATen/ThreadLocalState.h>
#include <c10/core/StreamGuard.h>
#include <torch/cuda.h>
#include <torch/nn/functional/loss.h>

#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "core/profiling/layer_tracer.h"
#include "gtest/gtest.h"
#include "plugins/models/resnet18.h"

namespace trainlab::models {
namespace {

// The multiply-adds of the CIFAR ResNet-18 at 32x32, per image, from its definition (kuangliu's
// pytorch-cifar; 3x3 convolutions, 1x1 shortcuts), not from any traced shape:
//   conv1: 3 -> 64 at 32x32;  layer1: 4 convs 64 -> 64 at 32x32;
//   layer g = 2..4 (C = 64 * 2^(g-1) channels, S = 32 / 2^(g-1) side): the first conv C/2 -> C
//   at SxS (stride 2), three convs C -> C at SxS, a 1x1 shortcut C/2 -> C at SxS;
//   linear 512 -> 10.
double ArchitectureMacs() {
  double macs = 64.0 * 32 * 32 * 3 * 9 + 4 * (64.0 * 32 * 32 * 64 * 9);
  for (int g = 2; g <= 4; ++g) {
    const double c = 64 << (g - 1), s = 32 >> (g - 1);
    macs += c * s * s * (c / 2) * 9 + 3 * (c * s * s * c * 9) + c * s * s * (c / 2);
  }
  return macs + 512.0 * 10;
}

TEST(OpTraceResNet18, ForwardFlopsMatchTheArchitecturesCount) {
  // 555,422,720 multiply-adds (thop's 556.65 M adds batch norm and the bias); checked by hand:
  // 1,769,472 + 150,994,944 + 3 x 134,217,728 + 5,120.
  ASSERT_EQ(ArchitectureMacs(), 555422720.0);
  ResNet18 net;
  LayerTracer tracer(*net);
  const int64_t batch = 2;
  {
    LayerTracer::Recording r(tracer);
    at::Tensor loss = torch::nn::functional::cross_entropy(
        net->forward(at::randn({batch, 3, 32, 32})), at::zeros({batch}, at::kLong));
    (void)loss;
  }
  double conv_linear = 0, bias_adds = 0;
  for (const TracedOp& op : tracer.ops()) {
    if (op.op == "conv") conv_linear += op.forward.flops;
    if (op.op == "linear") {
      conv_linear += op.forward.flops - batch * 10;  // without the bias adds
      bias_adds += batch * 10;
    }
  }
  EXPECT_EQ(conv_linear, 2 * ArchitectureMacs() * batch);
  EXPECT_EQ(bias_adds, batch * 10);
  // Backward: every conv twice its forward except conv1 (the images need no gradient).
  double conv_backward = 0, conv_forward = 0, conv1_forward = 0;
  for (const TracedOp& op : tracer.ops()) {
    if (op.op != "conv") continue;
    conv_backward += op.backward.flops;
    conv_forward += op.forward.flops;
    if (op.module == "conv1") conv1_forward = op.forward.flops;
  }
  EXPECT_EQ(conv1_forward, 2.0 * 64 * 32 * 32 * 3 * 9 * batch);
  EXPECT_EQ(conv_backward, 2 * conv_forward - conv1_forward);
}

TEST(OpTraceResNet18, EveryModuleAppearsUnderItsName) {
  ResNet18 net;
  LayerTracer tracer(*net);
  {
    LayerTracer::Recording r(tracer);
    at::Tensor loss = torch::nn::functional::cross_entropy(net->forward(at::randn({2, 3, 32, 32})),
                                                           at::zeros({2}, at::kLong));
    (void)loss;
  }
  std::set<std::string> traced;
  for (const TracedOp& op : tracer.ops()) traced.insert(op.module);
  // Every module that owns parameters (conv, batch norm, linear) is a row of its own.
  int with_parameters = 0;
  for (const auto& item : net->named_modules("", /*include_self=*/false)) {
    if (item.value()->parameters(/*recurse=*/false).empty()) continue;
    ++with_parameters;
    EXPECT_TRUE(traced.count(item.key())) << item.key() << " is not in the trace";
  }
  EXPECT_EQ(with_parameters, 20 + 20 + 1);  // 20 convs, 20 batch norms, the linear layer
  // The parameter-free layers, named after their block: 17 ReLUs, 8 residual adds, the pool, the
  // loss.
  int relu = 0, add = 0, pool = 0, loss = 0;
  for (const TracedOp& op : tracer.ops()) {
    relu += op.op == "relu";
    add += op.op == "add";
    pool += op.op == "pool";
    loss += op.op == "cross_entropy";
  }
  EXPECT_EQ(relu, 17);
  EXPECT_EQ(add, 8);
  EXPECT_EQ(pool, 1);
  EXPECT_EQ(loss, 1);
  EXPECT_TRUE(traced.count("layer2.0.relu"));
  EXPECT_TRUE(traced.count("layer2.0.relu#2"));
  EXPECT_TRUE(traced.count("layer2.0.add"));
  EXPECT_TRUE(traced.count("layer1.1.add"));  // an identity shortcut: named by its block's scope
  EXPECT_TRUE(traced.count("relu"));          // the model's own, after bn1
  EXPECT_TRUE(traced.count("pool"));
  EXPECT_TRUE(traced.count("cross_entropy"));
  EXPECT_EQ(tracer.ops().size(), 41u + 17 + 8 + 1 + 1);
}

// With backward inside the recording, every layer's autograd nodes are found through the
// sequence numbers: each conv, batch norm, ReLU, the pool, the linear layer and the loss gets
// backward time of its own, and the attributed times fit inside the pass that contains them.
TEST(OpTraceResNet18, TiesEachBackwardNodeToItsForwardLayer) {
  ResNet18 net;
  LayerTracer tracer(*net);
  const auto t0 = std::chrono::steady_clock::now();
  {
    LayerTracer::Recording r(tracer);
    at::Tensor loss = torch::nn::functional::cross_entropy(net->forward(at::randn({2, 3, 32, 32})),
                                                           at::zeros({2}, at::kLong));
    loss.backward();
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double forward = 0, backward = 0;
  for (const TracedOp& op : tracer.ops()) {
    EXPECT_GT(op.forward_s, 0) << op.module;
    EXPECT_LT(op.first_sequence_nr, op.end_sequence_nr) << op.module << " created no autograd node";
    if (op.op != "add") {
      EXPECT_GT(op.backward_s, 0) << op.module << " got no backward time";
    }
    forward += op.forward_s;
    backward += op.backward_s;
  }
  EXPECT_LT(forward + backward + tracer.unattributed_backward_s(), wall)
      << "forward " << forward << " backward " << backward << " unattributed "
      << tracer.unattributed_backward_s();
  // The parameters' AccumulateGrad nodes belong to no layer.
  EXPECT_GT(tracer.unattributed_backward_s(), 0);
  // A second recording starts afresh.
  {
    LayerTracer::Recording r(tracer);
    (void)net->forward(at::randn({1, 3, 32, 32}));
  }
  EXPECT_EQ(tracer.ops().size(), 41u + 17 + 8 + 1);
  for (const TracedOp& op : tracer.ops()) EXPECT_EQ(op.backward_s, 0) << op.module;
}

// Runs `loss.backward()` on another thread that carries this thread's thread-local state, as the
// autograd engine's device thread does for a GPU's backward (at::ThreadLocalStateGuard).
void BackwardOnAnotherThread(const at::Tensor& loss) {
  const at::ThreadLocalState state;
  std::thread worker([&] {
    at::ThreadLocalStateGuard guard(state);
    loss.backward();
  });
  worker.join();
}

at::Tensor Loss(ResNet18& net, const at::Tensor& x) {
  return torch::nn::functional::cross_entropy(net->forward(x),
                                              at::zeros({x.size(0)}, at::kLong).to(x.device()));
}

// The backward on a thread of its own, like a GPU's: each layer's nodes are still found and
// timed, inside the recording's wall time.
TEST(OpTraceResNet18, TimesABackwardThatRunsOnAnotherThread) {
  ResNet18 net;
  LayerTracer tracer(*net);
  const auto t0 = std::chrono::steady_clock::now();
  {
    LayerTracer::Recording r(tracer);
    BackwardOnAnotherThread(Loss(net, at::randn({2, 3, 32, 32})));
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(tracer.status().ok()) << tracer.status();
  double total = tracer.unattributed_backward_s();
  for (const TracedOp& op : tracer.ops()) {
    EXPECT_GT(op.forward_s, 0) << op.module;
    if (op.op != "add") {
      EXPECT_GT(op.backward_s, 0) << op.module << " got no backward time";
    }
    total += op.forward_s + op.backward_s;
  }
  EXPECT_LT(total, wall);
  EXPECT_GT(tracer.unattributed_backward_s(), 0);  // AccumulateGrad, on the other thread too
}

// A timeline whose clock advances one millisecond per mark, and which notes the thread of each.
class CountingTimeline final : public Timeline {
 public:
  std::string Name() const override { return "counting"; }
  void Clear() override { threads.clear(); }
  size_t Mark() override {
    if (throw_on_mark) throw std::runtime_error("the device is gone");
    threads.push_back(std::this_thread::get_id());
    return threads.size() - 1;
  }
  absl::StatusOr<std::vector<double>> Resolve() override {
    ++resolved;
    if (fail_resolve) return absl::InternalError("cannot read the events");
    std::vector<double> s;
    for (size_t k = 0; k < threads.size(); ++k) s.push_back(1e-3 * static_cast<double>(k));
    return s;
  }
  std::chrono::steady_clock::time_point Origin() const override { return {}; }

  std::vector<std::thread::id> threads;
  int resolved = 0;
  bool throw_on_mark = false, fail_resolve = false;
};

// Every time is the timeline's, read once after the recording, whichever thread marked it: a
// forward layer spans exactly its own two marks, and a backward node its wrapper's two, marked on
// the backward's thread.
TEST(OpTraceTimeline, TimesComeFromTheTimelineOnEveryThread) {
  ResNet18 net;
  auto owned = std::make_unique<CountingTimeline>();
  CountingTimeline* timeline = owned.get();
  LayerTracer tracer(*net, std::move(owned));
  EXPECT_EQ(tracer.timeline_name(), "counting");
  const auto t0 = std::chrono::steady_clock::now();
  {
    LayerTracer::Recording r(tracer);
    BackwardOnAnotherThread(Loss(net, at::randn({2, 3, 32, 32})));
    EXPECT_EQ(timeline->resolved, 0);
  }
  ASSERT_TRUE(tracer.status().ok()) << tracer.status();
  EXPECT_EQ(timeline->resolved, 1);
  std::map<std::thread::id, int> marks;
  for (std::thread::id id : timeline->threads) ++marks[id];
  ASSERT_EQ(marks.size(), 2u) << "marks on the recording thread and on the backward's";
  const int own = marks[std::this_thread::get_id()];
  EXPECT_EQ(own, 1 + 2 * static_cast<int>(tracer.ops().size()));  // the origin, each layer's two
  constexpr double kTick = 1e-3;
  double host = 0;
  for (const TracedOp& op : tracer.ops()) {
    EXPECT_NEAR(op.forward_s, kTick, 1e-12) << op.module;
    // Beside the timeline's times, the host's clock at the same marks.
    EXPECT_GT(op.forward_host_s, 0) << op.module;
    host += op.forward_host_s + op.backward_host_s;
    const double nodes = op.backward_s / kTick;
    EXPECT_NEAR(nodes, std::round(nodes), 1e-9) << op.module << ": " << op.backward_s;
    if (op.op == "conv" || op.op == "batch_norm") {
      EXPECT_NEAR(op.backward_s, kTick, 1e-12) << op.module << " created one autograd node";
    }
  }
  EXPECT_LT(host, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  // The spans are the timeline's too, on the host's clock from its origin.
  ASSERT_FALSE(tracer.spans().empty());
  for (const TracedSpan& span : tracer.spans()) {
    EXPECT_GE(std::chrono::duration<double>(span.end - span.start).count(), kTick * 0.999);
  }
}

TEST(OpTraceTimeline, AnUnreadableTimelineIsAnErrorNotZeroTimes) {
  ResNet18 net;
  for (const bool throw_on_mark : {true, false}) {
    auto owned = std::make_unique<CountingTimeline>();
    owned->throw_on_mark = throw_on_mark;
    owned->fail_resolve = !throw_on_mark;
    LayerTracer tracer(*net, std::move(owned));
    {
      LayerTracer::Recording r(tracer);
      (void)Loss(net, at::randn({1, 3, 32, 32}));
    }
    EXPECT_FALSE(tracer.status().ok());
    EXPECT_NE(tracer.status().message().find(throw_on_mark ? "the device is gone"
                                                           : "cannot read the events"),
              std::string::npos)
        << tracer.status();
    EXPECT_EQ(tracer.ops().size(), 41u + 17 + 8 + 1 + 1) << "the layers stand without times";
  }
}

// Recordings of different tracers at once: each sees the same ops, and one more than the slots
// is refused by name, not mixed up with another.
TEST(OpTraceTimeline, RecordingsAtOnceEachGetTheirOwn) {
  ResNet18 net;
  std::vector<std::unique_ptr<LayerTracer>> tracers;
  for (int i = 0; i <= LayerTracer::kSlots; ++i)
    tracers.push_back(std::make_unique<LayerTracer>(*net));
  {
    std::vector<std::unique_ptr<LayerTracer::Recording>> recordings;
    for (auto& t : tracers) recordings.push_back(std::make_unique<LayerTracer::Recording>(*t));
    (void)Loss(net, at::randn({1, 3, 32, 32}));
  }
  for (int i = 0; i < LayerTracer::kSlots; ++i) {
    EXPECT_TRUE(tracers[static_cast<size_t>(i)]->status().ok());
    EXPECT_EQ(tracers[static_cast<size_t>(i)]->ops().size(), 41u + 17 + 8 + 1 + 1);
  }
  EXPECT_EQ(tracers.back()->status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(tracers.back()->ops().empty());
}

// A second recording of a tracer while the first lives is refused by name; it neither wipes the
// first's layers nor counts them twice.
TEST(OpTraceTimeline, ASecondRecordingOfOneTracerIsRefused) {
  ResNet18 net;
  LayerTracer tracer(*net);
  {
    LayerTracer::Recording first(tracer);
    (void)Loss(net, at::randn({1, 3, 32, 32}));
    {
      LayerTracer::Recording second(tracer);
      (void)Loss(net, at::randn({1, 3, 32, 32}));
    }
  }
  EXPECT_EQ(tracer.status().code(), absl::StatusCode::kFailedPrecondition) << tracer.status();
  EXPECT_EQ(tracer.ops().size(), 2 * (41u + 17 + 8 + 1 + 1)) << "each op once, both passes";
  // And the tracer records again once both are gone.
  {
    LayerTracer::Recording again(tracer);
    (void)Loss(net, at::randn({1, 3, 32, 32}));
  }
  EXPECT_TRUE(tracer.status().ok()) << tracer.status();
  EXPECT_EQ(tracer.ops().size(), 41u + 17 + 8 + 1 + 1);
}

// Asking for GPU times where there is no GPU: one named error after the recording, and the
// layers with their arithmetic still there (whatever this build's LibTorch: one without CUDA,
// one with CUDA on a machine without a GPU).
TEST(OpTraceTimeline, ADeviceThatCannotBeTimedIsNamed) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "a GPU is here: OpTraceGpu covers it";
  ResNet18 net;
  LayerTracer tracer(*net, c10::Device(c10::kCUDA, 0));
  {
    LayerTracer::Recording r(tracer);
    (void)Loss(net, at::randn({1, 3, 32, 32}));
  }
  EXPECT_FALSE(tracer.status().ok());
  const std::string message(tracer.status().message());
#ifdef TRAINLAB_DEVICE_TIMELINE
  // This LibTorch has no CUDA (the tracer could not be made), or has CUDA and no GPU (the
  // stream or the first event failed).
  EXPECT_TRUE(message.rfind("per-layer times on cuda:0: ", 0) == 0 ||
              message.rfind("marking the cuda events: ", 0) == 0)
      << message;
#else
  EXPECT_EQ(message.rfind("per-layer times on cuda:0 need LibTorch 2.5 or newer", 0), 0u)
      << message;
#endif
  EXPECT_EQ(tracer.ops().size(), 41u + 17 + 8 + 1 + 1);
  for (const TracedOp& op : tracer.ops()) EXPECT_EQ(op.forward_s, 0) << op.module;
}

// On a GPU (tools/gpu_check.sh runs this): the device's events time every layer, forward on this
// thread and backward on the engine's device thread, and the layers fit inside the step. The
// backward's marks must land on the forward's stream: a convolution's backward (twice its
// forward's arithmetic) must not read as nothing, on the default stream, on a stream from the
// pool (which does not wait for the default one), and on the second GPU where there is one.
void ExpectEveryLayerTimedOnTheDevice(const c10::Device& cuda, bool pool_stream) {
  SCOPED_TRACE(cuda.str() + (pool_stream ? ", a pool stream" : ", the default stream"));
  ResNet18 net;
  net->to(cuda);
  // Batch 256: the kernels take longer than their launches, so marks on a stream the work is
  // not on (which complete as soon as they are queued) would read as the launch time, far below
  // the kernels'.
  const at::Tensor x = at::randn({256, 3, 32, 32}).to(cuda);
  LayerTracer tracer(*net, cuda);
  std::optional<c10::StreamGuard> on_pool;
#ifdef TRAINLAB_DEVICE_TIMELINE
  if (pool_stream) {
    on_pool.emplace(c10::impl::VirtualGuardImpl(c10::kCUDA).getStreamFromGlobalPool(cuda));
  }
#endif
  for (int step = 0; step < 3; ++step) {  // the first creates the events; later ones reuse them
    torch::cuda::synchronize(cuda.index());
    const auto t0 = std::chrono::steady_clock::now();
    {
      LayerTracer::Recording r(tracer);
      Loss(net, x).backward();
      torch::cuda::synchronize(cuda.index());
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_TRUE(tracer.status().ok()) << tracer.status();
    EXPECT_EQ(tracer.timeline_name(), "cuda events");
    double total = tracer.unattributed_backward_s(), conv_forward = 0, conv_backward = 0;
    for (const TracedOp& op : tracer.ops()) {
      EXPECT_GT(op.forward_s, 0) << op.module;
      if (op.op == "conv" || op.op == "batch_norm" || op.op == "linear") {
        EXPECT_GT(op.backward_s, 0) << op.module << " got no backward time";
      }
      if (op.op == "conv") {
        conv_forward += op.forward_s;
        conv_backward += op.backward_s;
      }
      total += op.forward_s + op.backward_s;
    }
    EXPECT_LT(total, wall);
    if (step > 0) {  // (the first step's include cuDNN's choices)
      EXPECT_GT(conv_backward, 0.5 * conv_forward)
          << "forward " << conv_forward << " s, backward " << conv_backward << " s";
    }
  }
}

TEST(OpTraceGpu, TimesEveryLayerOnTheDevice) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU here";
  ExpectEveryLayerTimedOnTheDevice(c10::Device(c10::kCUDA, 0), /*pool_stream=*/false);
#ifdef TRAINLAB_DEVICE_TIMELINE
  ExpectEveryLayerTimedOnTheDevice(c10::Device(c10::kCUDA, 0), /*pool_stream=*/true);
#endif
  if (torch::cuda::device_count() >= 2) {
    ExpectEveryLayerTimedOnTheDevice(c10::Device(c10::kCUDA, 1), /*pool_stream=*/false);
  }
}

}  // namespace
}  // namespace trainlab::models
