// The layers one forward pass of a model runs, with their shapes and arithmetic (op_costs.h),
// caught by LibTorch's own instrumentation: a thread-local RecordFunction callback that sees every
// ATen op the forward calls, with its inputs, whatever built the model (our modules, a
// TorchScript module). An op inside another counted op (aten::_convolution inside
// aten::convolution, aten::addmm inside aten::linear) is not counted twice.
//
// Names: a layer with parameters is named after the module that owns its weight
// ("layer2.0.conv1", found by the weight's storage among the model's named parameters); one
// without (a ReLU, the residual add, pooling) after the module whose forward runs it, with the op
// and a count within that module ("layer2.0.relu", "layer2.0.relu#2", "layer2.0.add"). A module
// says it is running by opening a user scope named ModuleScopeName(its name)
// (core/module_scope.h; our models do); in a model that does not (a TorchScript module), such a
// layer is named after the parent of the module of the layer before it.
//
// Times: each counted forward op's own time (its start to its end), and the time the engine
// spends evaluating the autograd nodes its forward created (the engine's
// "autograd::engine::evaluate_function: <node>" record: the node, and the sums of its gradients
// into the next nodes' inputs; tied to the layer by autograd's sequence numbers: the nodes an op
// creates take the numbers from its start to its end, and the node's own BACKWARD_FUNCTION record
// carries its number), when backward runs inside the recording. A backward node no counted op
// created (AccumulateGrad, a view), and the engine's own sums of a gradient that reaches a tensor
// twice, add to unattributed_backward_s().
//
// Where the times come from (a Timeline): for a CPU model, the host's steady clock on the thread
// that runs the op (the CPU engine runs a CPU backward on the calling thread). For a model on a
// GPU, an op's host time is only the time to queue its kernels, so each start and end is an event
// recorded on the current stream instead (DeviceTimeline), read once the step is over: the
// device's time, without a synchronisation that would change what the device does. The GPU's
// backward runs on the engine's device thread; the callbacks follow it there (the engine hands
// the calling thread's RecordFunction callbacks to the thread that runs its graph), and each
// recording's callbacks know their tracer by the slot they were made for.
//
// Beside each time on the timeline, the tracer keeps the host's clock at the same marks
// (forward_host_s ...): on a GPU, the host's time to issue the work; set against the device's
// time, it says whether the host's launches or the device's work pace a layer.
//
// Cost: a callback, a lock and a mark per op, microseconds of host time each (on a GPU, an event
// record per mark); compare a step's time with and without a recording for the overhead.
//
// Example:
//   OpTracer tracer(*model, device);
//   {
//     OpTracer::Recording r(tracer);   // on this thread, until r goes out of scope
//     at::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
//     loss.backward();
//   }   // on a GPU, read after the step's work is done
//   if (!tracer.status().ok()) ... the times are missing; the layers stand
//   for (const TracedOp& op : tracer.ops()) ... op.module, op.forward_s, op.backward.flops
#ifndef TRAINLAB_CORE_OP_TRACE_H_
#define TRAINLAB_CORE_OP_TRACE_H_

#include <ATen/ATen.h>
#include <ATen/SequenceNumber.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/nn/module.h>
#include <torch/version.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/module_scope.h"
#include "core/op_costs.h"
#include "core/torch_error.h"

namespace trainlab {

struct TracedOp {
  std::string module;  // "layer2.0.conv1", "layer2.0.relu#2"
  std::string op;      // conv | linear | batch_norm | relu | add | pool | cross_entropy | cast
  std::string aten;    // the ATen op it came from ("aten::convolution")
  std::vector<int64_t> input_shape;
  c10::ScalarType dtype = c10::ScalarType::Float;  // of its input (bfloat16 under autocast)
  OpCost forward;
  OpCost backward;
  double forward_s = 0;   // this op's forward, start to end, on the recording's timeline
  double backward_s = 0;  // the autograd nodes it created, when backward ran in the recording
  // The same spans on the host's clock: on a GPU, the host's time to issue the work (launch its
  // kernels); the same as the above on a CPU.
  double forward_host_s = 0, backward_host_s = 0;
  uint64_t first_sequence_nr = 0,
           end_sequence_nr = 0;  // the autograd nodes it created: [first, end)
};

// One interval of a recording: a layer's forward, one autograd node of its backward, the
// optimizer step, or backward time no layer owns (`op` -1). On a device timeline the times are
// the device's, placed on the host's clock at the recording's first mark.
struct TracedSpan {
  enum class Pass { kForward, kBackward, kOptimizer };
  int op = -1;  // index into OpTracer::ops(), or -1
  Pass pass = Pass::kForward;
  std::chrono::steady_clock::time_point start, end;
};

// Where a recording's times come from. Mark() notes "now" on the calling thread's timeline and
// returns the mark's number (0, 1, ...); once the recording is over, Resolve() gives every mark's
// time since mark 0, in seconds, waiting for the device where it must. The tracer calls these one
// at a time, under its lock, from the threads that run the recorded work.
class Timeline {
 public:
  virtual ~Timeline() = default;
  virtual std::string Name() const = 0;  // "host clock", "cuda events"
  // Before a recording, on its thread: forget the marks; may throw (a LibTorch error).
  virtual void Clear() = 0;
  virtual size_t Mark() = 0;  // may throw (a LibTorch error): the tracer catches it
  virtual absl::StatusOr<std::vector<double>> Resolve() = 0;
  // Mark 0 on the host's steady clock (where a trace draws the recording).
  virtual std::chrono::steady_clock::time_point Origin() const = 0;
};

// The host's steady clock: a CPU model's ops run on the thread that calls them, so their time on
// that thread is theirs.
class HostTimeline final : public Timeline {
 public:
  std::string Name() const override { return "host clock"; }
  void Clear() override { marks_.clear(); }
  size_t Mark() override {
    marks_.push_back(std::chrono::steady_clock::now());
    return marks_.size() - 1;
  }
  absl::StatusOr<std::vector<double>> Resolve() override {
    std::vector<double> s;
    s.reserve(marks_.size());
    for (const auto& m : marks_) s.push_back(std::chrono::duration<double>(m - Origin()).count());
    return s;
  }
  std::chrono::steady_clock::time_point Origin() const override {
    return marks_.empty() ? std::chrono::steady_clock::time_point{} : marks_.front();
  }

 private:
  std::vector<std::chrono::steady_clock::time_point> marks_;
};

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
#define TRAINLAB_DEVICE_TIMELINE 1
// A device's own timeline (CUDA, or any backend whose events time): each mark is an event
// recorded on one stream, so a span is the device's time from the work queued before its start to
// the work queued before its end, kernels and the gaps between them, not the host's time to queue
// them. The stream is the one current on the recording thread for the model's device when the
// recording starts (the stream the forward runs on), and every mark goes there, from whichever
// thread makes it: the autograd engine's device thread, whose own current stream is its default
// one (the engine makes the forward's stream current only inside a node, after its
// "evaluate_function" record has started), queues the backward's kernels on the forward's
// stream, so marks there bracket them. One stream per recording: a model that spreads one step
// over several streams is timed on the first. Events are created once and reused by later
// recordings (creating one costs microseconds); recording one costs a few microseconds of host
// time.
class DeviceTimeline final : public Timeline {
 public:
  // Fails (a LibTorch error) where this LibTorch has no such device (a CPU-only build).
  explicit DeviceTimeline(c10::Device device) : device_(device), guard_(device.type()) {}
  std::string Name() const override {
    return absl::StrCat(c10::DeviceTypeName(device_.type(), /*lower_case=*/true), " events");
  }
  void Clear() override {
    used_ = 0;
    stream_ = guard_.getStream(device_.has_index() ? device_ : guard_.getDevice());
  }
  size_t Mark() override {
    if (!stream_) throw std::logic_error("DeviceTimeline::Mark before Clear");
    if (used_ == events_.size()) {
      events_.emplace_back(device_.type(), c10::EventFlag::BACKEND_DEFAULT);
    }
    events_[used_].record(*stream_);
    if (used_ == 0) origin_ = std::chrono::steady_clock::now();
    return used_++;
  }
  absl::StatusOr<std::vector<double>> Resolve() override {
    std::vector<double> s;
    s.reserve(used_);
    try {
      for (size_t k = 0; k < used_; ++k) {
        events_[k].synchronize();
        s.push_back(events_[0].elapsedTime(events_[k]) / 1e3);  // milliseconds
      }
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("reading the ", Name(), ": ", TorchErrorLine(e)));
    }
    return s;
  }
  std::chrono::steady_clock::time_point Origin() const override { return origin_; }

 private:
  c10::Device device_;
  c10::impl::VirtualGuardImpl guard_;
  std::optional<c10::Stream> stream_;  // the stream marks go to, from Clear()
  std::deque<c10::Event> events_;      // a deque: an event is never moved once recorded
  size_t used_ = 0;
  std::chrono::steady_clock::time_point origin_;
};
#endif

class OpTracer {
 public:
  // Times on `device`'s timeline: the host's clock for the CPU, the device's events otherwise.
  // Where it cannot (a device this LibTorch has no events for), status() says so after each
  // recording, and the layers and their arithmetic are still recorded.
  explicit OpTracer(const torch::nn::Module& model, c10::Device device = c10::kCPU)
      : OpTracer(model, nullptr) {
    absl::StatusOr<std::unique_ptr<Timeline>> timeline = MakeTimeline(device);
    if (timeline.ok()) {
      timeline_ = *std::move(timeline);
    } else {
      timeline_problem_ = timeline.status();
    }
  }
  // Times on the timeline given (a test's).
  OpTracer(const torch::nn::Module& model, std::unique_ptr<Timeline> timeline)
      : timeline_(std::move(timeline)) {
    for (const auto& item : model.named_parameters(/*recurse=*/true)) {
      const std::string& key = item.key();  // "layer2.0.conv1.weight"
      const size_t dot = key.rfind('.');
      owner_[item.value().data_ptr()] = dot == std::string::npos ? "" : key.substr(0, dot);
    }
  }
  OpTracer(const OpTracer&) = delete;
  OpTracer& operator=(const OpTracer&) = delete;

  // Records, while it lives, the ops this thread runs and those that threads working for it run:
  // the callbacks are thread-local, and the autograd engine hands a thread's callbacks to the
  // device thread that runs its backward (at::ThreadLocalState). Each recording holds one of
  // kSlots slots, whose own callbacks find its tracer on any thread. One recording of a tracer at
  // a time: a second one while the first lives records nothing, and the tracer's status() says so.
  class Recording {
   public:
    explicit Recording(OpTracer& tracer) : tracer_(tracer) {
      {
        std::lock_guard<std::mutex> lock(tracer.mu_);
        if (tracer.recording_) {
          tracer.status_ = absl::FailedPreconditionError(
              "a second recording of one op tracer while the first lives");
          return;
        }
        tracer.recording_ = true;
      }
      owner_ = true;
      tracer.Begin();
      slot_ = ClaimSlot(&tracer);
      if (slot_ < 0) {
        std::lock_guard<std::mutex> lock(tracer.mu_);
        tracer.status_ = absl::ResourceExhaustedError(
            absl::StrCat("more than ", kSlots, " op-trace recordings at once"));
        return;
      }
      const SlotCallbacks& c = CallbackTable()[static_cast<size_t>(slot_)];
      try {
        handle_ = at::addThreadLocalCallback(
            at::RecordFunctionCallback(c.start, c.end)
                .needsInputs(true)
                .needsOutputs(true)  // a parameter's autocast copy: named after the parameter
                .scopes({at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE}));
        backward_handle_ =
            at::addThreadLocalCallback(at::RecordFunctionCallback(c.backward_start, c.backward_end)
                                           .scopes({at::RecordScope::BACKWARD_FUNCTION}));
      } catch (const std::exception& e) {
        if (handle_ != 0) at::removeCallback(handle_);
        handle_ = 0;
        ReleaseSlot(slot_);
        slot_ = -1;
        std::lock_guard<std::mutex> lock(tracer.mu_);
        tracer.status_ =
            absl::InternalError(absl::StrCat("adding the op-trace callbacks: ", TorchErrorLine(e)));
      }
    }
    ~Recording() {
      if (!owner_) return;
      if (slot_ >= 0) {
        at::removeCallback(backward_handle_);
        at::removeCallback(handle_);
        ReleaseSlot(slot_);  // waits for a callback still running on another thread
      }
      tracer_.Finish();
      std::lock_guard<std::mutex> lock(tracer_.mu_);
      tracer_.recording_ = false;
    }
    Recording(const Recording&) = delete;
    Recording& operator=(const Recording&) = delete;

   private:
    OpTracer& tracer_;
    bool owner_ = false;  // this recording started the tracer's (not a refused second one)
    int slot_ = -1;
    at::CallbackHandle handle_ = 0, backward_handle_ = 0;
  };

  // Whether the last recording went right: its timeline could be read, a slot was free. When it
  // did not, the layers and their arithmetic stand and the times are zero.
  const absl::Status& status() const { return status_; }
  std::string timeline_name() const { return timeline_ ? timeline_->Name() : "none"; }

  // The layers of the last recording, in the order the forward ran them.
  const std::vector<TracedOp>& ops() const { return ops_; }
  // Backward time in autograd nodes that no counted op created.
  double unattributed_backward_s() const { return unattributed_backward_s_; }
  double unattributed_backward_host_s() const { return unattributed_backward_host_s_; }
  // The optimizer step's time: the user scope kOptimizerStepScope (core/module_scope.h) that the
  // step opens around it (core/step.h), start to end; the ops inside are not layers.
  double optimizer_s() const { return optimizer_s_; }
  double optimizer_host_s() const { return optimizer_host_s_; }
  // Every timed interval of the last recording, in the order each ended.
  const std::vector<TracedSpan>& spans() const { return spans_; }
  OpCost TotalForward() const {
    OpCost t;
    for (const TracedOp& op : ops_) t += op.forward;
    return t;
  }
  OpCost TotalBackward() const {
    OpCost t;
    for (const TracedOp& op : ops_) t += op.backward;
    return t;
  }

  static constexpr int kSlots = 8;

 private:
  static constexpr size_t kNoMark = static_cast<size_t>(-1);

  static absl::StatusOr<std::unique_ptr<Timeline>> MakeTimeline(c10::Device device) {
    if (device.is_cpu()) return std::make_unique<HostTimeline>();
#ifdef TRAINLAB_DEVICE_TIMELINE
    try {
      return std::make_unique<DeviceTimeline>(device);
    } catch (const std::exception& e) {
      return absl::FailedPreconditionError(
          absl::StrCat("per-layer times on ", device.str(), ": ", TorchErrorLine(e)));
    }
#else
    return absl::FailedPreconditionError(absl::StrCat(
        "per-layer times on ", device.str(),
        " need LibTorch 2.5 or newer (c10::Event::elapsedTime); this is ", TORCH_VERSION));
#endif
  }

  // --- Which recording a callback belongs to ---------------------------------------------------
  // RecordFunction callbacks are plain function pointers; each slot has its own, which find the
  // slot's tracer (on whatever thread they run). A callback counts itself in while it runs, so
  // that releasing a slot can wait for one still running on another thread (the engine's device
  // thread finishing a node as an error unwinds the caller) before the tracer may go away; slots
  // are claimed round-robin, so a released one is not the next one claimed.
  struct Slot {
    std::atomic<OpTracer*> tracer{nullptr};
    std::atomic<int> running{0};
  };
  static std::array<Slot, kSlots>& Slots() {
    static std::array<Slot, kSlots> slots;
    return slots;
  }
  static int ClaimSlot(OpTracer* tracer) {
    static std::atomic<unsigned> next{0};
    const unsigned first = next.fetch_add(1);
    for (unsigned i = 0; i < static_cast<unsigned>(kSlots); ++i) {
      const size_t s = (first + i) % kSlots;
      OpTracer* expected = nullptr;
      if (Slots()[s].tracer.compare_exchange_strong(expected, tracer)) return static_cast<int>(s);
    }
    return -1;
  }
  static void ReleaseSlot(int s) {
    Slot& slot = Slots()[static_cast<size_t>(s)];
    slot.tracer.store(nullptr);
    while (slot.running.load() != 0) std::this_thread::yield();
  }
  // Runs `f(tracer)` when slot S has a tracer, counted in while it runs.
  template <int S, typename F>
  static void WithSlot(F f) {
    Slot& slot = Slots()[S];
    slot.running.fetch_add(1);
    if (OpTracer* t = slot.tracer.load()) f(t);
    slot.running.fetch_sub(1);
  }
  template <int S>
  static std::unique_ptr<at::ObserverContext> SlotStart(const at::RecordFunction& fn) {
    WithSlot<S>([&](OpTracer* t) { t->OnStart(fn); });
    return nullptr;
  }
  template <int S>
  static void SlotEnd(const at::RecordFunction& fn, at::ObserverContext*) {
    WithSlot<S>([&](OpTracer* t) { t->OnEnd(fn); });
  }
  template <int S>
  static std::unique_ptr<at::ObserverContext> SlotBackwardStart(const at::RecordFunction& fn) {
    WithSlot<S>([&](OpTracer* t) { t->OnBackwardStart(fn); });
    return nullptr;
  }
  template <int S>
  static void SlotBackwardEnd(const at::RecordFunction&, at::ObserverContext*) {
    WithSlot<S>([](OpTracer* t) { t->OnBackwardEnd(); });
  }
  struct SlotCallbacks {
    at::RecordFunctionCallback::StartCallback start, backward_start;
    at::RecordFunctionCallback::EndCallback end, backward_end;
  };
  template <int... S>
  static std::array<SlotCallbacks, kSlots> MakeCallbackTable(std::integer_sequence<int, S...>) {
    return {
        SlotCallbacks{&SlotStart<S>, &SlotBackwardStart<S>, &SlotEnd<S>, &SlotBackwardEnd<S>}...};
  }
  static const std::array<SlotCallbacks, kSlots>& CallbackTable() {
    static const std::array<SlotCallbacks, kSlots> table =
        MakeCallbackTable(std::make_integer_sequence<int, kSlots>{});
    return table;
  }

  // A module's user scope: its name (without the prefix), or nullopt for any other op.
  static std::optional<std::string> ModuleScope(const at::RecordFunction& fn) {
    if (fn.scope() != at::RecordScope::USER_SCOPE) return std::nullopt;
    const std::string_view name = fn.name();
    if (name.substr(0, kModuleScopePrefix.size()) != kModuleScopePrefix) return std::nullopt;
    return std::string(name.substr(kModuleScopePrefix.size()));
  }
  static bool IsOptimizerScope(const at::RecordFunction& fn) {
    return std::strcmp(fn.name(), kOptimizerStepScope) == 0;
  }

  // A timed interval, by its marks, until the recording's timeline is read.
  struct MarkedSpan {
    int op = -1;
    TracedSpan::Pass pass = TracedSpan::Pass::kForward;
    size_t start = kNoMark, end = kNoMark;
  };
  // What one thread is in the middle of (the recording thread's forward, a device thread's
  // backward): the op depth, the counted op, the autograd nodes and engine wrappers running.
  struct ThreadState {
    int depth = 0;
    int counted_depth = -1;
    size_t counted_start = kNoMark;
    int loose_depth = -1;  // an op backward runs outside any node, while it runs
    size_t loose_start = kNoMark;
    std::vector<std::pair<int64_t, size_t>> backward;  // the nodes running now
    std::vector<std::pair<int64_t, size_t>> wrappers;  // the engine's, running now
  };

  // A mark on the timeline, and the host's time of it (marks are numbered 0, 1, ...).
  size_t MarkNow() {
    if (timeline_ == nullptr || !mark_error_.empty()) return kNoMark;  // after an error: no more
    try {
      const size_t mark = timeline_->Mark();
      if (mark != host_marks_.size()) {
        throw std::logic_error(absl::StrCat("the ", timeline_->Name(), " numbered a mark ", mark,
                                            ", not ", host_marks_.size()));
      }
      host_marks_.push_back(std::chrono::steady_clock::now());
      return mark;
    } catch (const std::exception& e) {
      if (mark_error_.empty()) mark_error_ = TorchErrorLine(e);
      return kNoMark;
    }
  }

  void Begin() {
    std::lock_guard<std::mutex> lock(mu_);
    ops_.clear();
    unnamed_.clear();
    last_owner_.clear();
    copy_owner_.clear();
    param_cast_pending_ = false;
    scopes_.clear();
    threads_.clear();
    marked_.clear();
    spans_.clear();
    in_optimizer_ = false;
    optimizer_start_ = kNoMark;
    optimizer_s_ = 0;
    optimizer_host_s_ = 0;
    in_backward_ = false;
    unattributed_backward_s_ = 0;
    unattributed_backward_host_s_ = 0;
    host_marks_.clear();
    mark_error_.clear();
    status_ = timeline_problem_;
    recording_thread_ = std::this_thread::get_id();
    if (timeline_ == nullptr) return;  // the layers without times
    try {
      timeline_->Clear();
    } catch (const std::exception& e) {
      mark_error_ = TorchErrorLine(e);
      return;
    }
    MarkNow();  // mark 0: the origin
  }

  // Reads the timeline into the layers' times and the spans (after the recorded work).
  void Finish() {
    std::lock_guard<std::mutex> lock(mu_);
    if (timeline_ == nullptr || !status_.ok()) return;
    if (!mark_error_.empty()) {
      status_ =
          absl::InternalError(absl::StrCat("marking the ", timeline_->Name(), ": ", mark_error_));
      return;
    }
    absl::StatusOr<std::vector<double>> at = timeline_->Resolve();
    if (!at.ok()) {
      status_ = at.status();
      return;
    }
    const std::chrono::steady_clock::time_point origin = timeline_->Origin();
    auto when = [&](size_t mark) {
      return origin + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                          std::chrono::duration<double>((*at)[mark]));
    };
    for (const MarkedSpan& m : marked_) {
      if (m.start >= at->size() || m.end >= at->size() || m.end >= host_marks_.size()) continue;
      const double s = (*at)[m.end] - (*at)[m.start];
      const double host =
          std::chrono::duration<double>(host_marks_[m.end] - host_marks_[m.start]).count();
      switch (m.pass) {
        case TracedSpan::Pass::kForward:
          ops_[static_cast<size_t>(m.op)].forward_s = s;
          ops_[static_cast<size_t>(m.op)].forward_host_s = host;
          break;
        case TracedSpan::Pass::kBackward:
          if (m.op >= 0) {
            ops_[static_cast<size_t>(m.op)].backward_s += s;
            ops_[static_cast<size_t>(m.op)].backward_host_s += host;
          } else {
            unattributed_backward_s_ += s;
            unattributed_backward_host_s_ += host;
          }
          break;
        case TracedSpan::Pass::kOptimizer:
          optimizer_s_ += s;
          optimizer_host_s_ += host;
          break;
      }
      spans_.push_back({m.op, m.pass, when(m.start), when(m.end)});
    }
  }

  void OnStart(const at::RecordFunction& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    const bool own_thread = std::this_thread::get_id() == recording_thread_;
    if (fn.scope() == at::RecordScope::USER_SCOPE) {
      if (!own_thread) return;
      if (IsOptimizerScope(fn)) {
        in_optimizer_ = true;
        optimizer_start_ = MarkNow();
      } else if (std::optional<std::string> module = ModuleScope(fn)) {
        scopes_.push_back(*module);
      }
      return;
    }
    ThreadState& ts = threads_[std::this_thread::get_id()];
    ++ts.depth;
    if (own_thread && in_optimizer_) return;  // the optimizer's own ops: its row, not layers
    if (IsEngineWrapper(fn)) {  // the whole of one node's evaluation, sums of its outputs included
      in_backward_ = true;
      ts.wrappers.push_back({-2, MarkNow()});
      return;
    }
    // Once backward has started, and on any thread but the recording's, ops are backward's, not
    // layers of the forward: inside a node they are the node's time; outside any (the engine
    // summing the gradients of a tensor used twice, as a residual block's input is) they are
    // unattributed backward time.
    if (in_backward_ || !own_thread) {
      if (ts.backward.empty() && ts.wrappers.empty() && ts.loose_depth < 0) {
        ts.loose_depth = ts.depth;
        ts.loose_start = MarkNow();
      }
      return;
    }
    if (ts.counted_depth < 0) {
      const uint64_t first = at::sequence_number::peek();
      if (Count(fn)) {
        ts.counted_depth = ts.depth;
        ops_.back().first_sequence_nr = first;
        ts.counted_start = MarkNow();
      }
    }
  }
  void OnEnd(const at::RecordFunction& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    const bool own_thread = std::this_thread::get_id() == recording_thread_;
    if (fn.scope() == at::RecordScope::USER_SCOPE) {
      if (!own_thread) return;
      if (IsOptimizerScope(fn) && in_optimizer_) {
        in_optimizer_ = false;
        marked_.push_back({-1, TracedSpan::Pass::kOptimizer, optimizer_start_, MarkNow()});
      } else if (ModuleScope(fn) && !scopes_.empty()) {
        scopes_.pop_back();
      }
      return;
    }
    ThreadState& ts = threads_[std::this_thread::get_id()];
    if (IsEngineWrapper(fn) && !ts.wrappers.empty()) {
      const auto [seq, start] = ts.wrappers.back();
      ts.wrappers.pop_back();
      Attribute(seq, start, MarkNow());
      --ts.depth;
      return;
    }
    if (ts.depth == ts.loose_depth) {
      marked_.push_back({-1, TracedSpan::Pass::kBackward, ts.loose_start, MarkNow()});
      ts.loose_depth = -1;
    }
    if (ts.depth == ts.counted_depth) {
      const size_t end = MarkNow();
      ops_.back().end_sequence_nr = at::sequence_number::peek();
      if (param_cast_pending_) {  // the copy autocast hands the layer is the parameter's
        const auto& out = fn.outputs();
        if (!out.empty() && IsTensor(out[0])) {
          copy_owner_[out[0].toTensor().data_ptr()] = ops_.back().module;
        }
        param_cast_pending_ = false;
      }
      marked_.push_back(
          {static_cast<int>(ops_.size()) - 1, TracedSpan::Pass::kForward, ts.counted_start, end});
      ts.counted_depth = -1;
    }
    --ts.depth;
  }

  void OnBackwardStart(const at::RecordFunction& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    ThreadState& ts = threads_[std::this_thread::get_id()];
    in_backward_ = true;
    if (!ts.wrappers.empty() && ts.wrappers.back().first == -2) {
      ts.wrappers.back().first = fn.seqNr();
    }
    // Inside the engine's wrapper, the wrapper's marks time the node: none needed here.
    ts.backward.push_back({fn.seqNr(), ts.wrappers.empty() ? MarkNow() : kNoMark});
  }
  void OnBackwardEnd() {
    std::lock_guard<std::mutex> lock(mu_);
    ThreadState& ts = threads_[std::this_thread::get_id()];
    if (ts.backward.empty()) return;
    const auto [seq, start] = ts.backward.back();
    ts.backward.pop_back();
    // Inside the engine's wrapper, the wrapper's end attributes the whole evaluation.
    if (ts.wrappers.empty()) Attribute(seq, start, MarkNow());
  }

  // LibTorch's engine opens a FUNCTION-scope "autograd::engine::evaluate_function: <node>"
  // around each node it runs (the node's own BACKWARD_FUNCTION record inside it).
  static bool IsEngineWrapper(const at::RecordFunction& fn) {
    static constexpr std::string_view kWrapper = "autograd::engine::evaluate_function";
    return std::string_view(fn.name()).substr(0, kWrapper.size()) == kWrapper;
  }

  // Notes the backward interval [start, end) of the layer whose forward created node `seq`.
  void Attribute(int64_t seq, size_t start, size_t end) {
    for (size_t i = 0; i < ops_.size(); ++i) {
      const TracedOp& op = ops_[i];
      if (seq >= 0 && static_cast<uint64_t>(seq) >= op.first_sequence_nr &&
          static_cast<uint64_t>(seq) < op.end_sequence_nr) {
        marked_.push_back({static_cast<int>(i), TracedSpan::Pass::kBackward, start, end});
        return;
      }
    }
    marked_.push_back({-1, TracedSpan::Pass::kBackward, start, end});
  }

  static std::vector<int64_t> Sizes(const at::Tensor& t) { return t.sizes().vec(); }
  static bool IsTensor(const c10::IValue& v) { return v.isTensor() && v.toTensor().defined(); }

  // The name of the module that owns `weight`, or of the module before.
  std::string NameFor(const at::Tensor* weight, const std::string& op) {
    if (weight != nullptr) {
      for (const std::map<const void*, std::string>* owners : {&owner_, &copy_owner_}) {
        auto it = owners->find(weight->data_ptr());
        if (it != owners->end()) {
          last_owner_ = it->second;
          return it->second;
        }
      }
    }
    // Parameter-free layers: in the module whose forward runs them, when it says so; else in
    // the parent of the module of the layer before ("layer2.0" for "layer2.0.bn1").
    std::string parent;
    if (!scopes_.empty()) {
      parent = scopes_.back();
    } else {
      const size_t dot = last_owner_.rfind('.');
      parent = dot == std::string::npos ? "" : last_owner_.substr(0, dot);
    }
    const std::string base = parent.empty() ? op : parent + "." + op;
    const int n = ++unnamed_[base];
    return n == 1 ? base : base + "#" + std::to_string(n);
  }

  // The dtype autocast will run an op on float32 `t` in, when autocast is on for its device at
  // this level of the dispatch; nullopt otherwise.
  static std::optional<c10::ScalarType> AutocastTarget(const at::Tensor& t) {
    if (t.scalar_type() != at::kFloat) return std::nullopt;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    const c10::DeviceType device = t.device().type();
    if (!at::autocast::is_autocast_enabled(device)) return std::nullopt;
    return at::autocast::get_autocast_dtype(device);
#else
    if (t.is_cuda()) {
      if (!at::autocast::is_enabled()) return std::nullopt;
      return at::autocast::get_autocast_gpu_dtype();
    }
    if (!t.is_cpu() || !at::autocast::is_cpu_enabled()) return std::nullopt;
    return at::autocast::get_autocast_cpu_dtype();
#endif
  }

  void Add(const char* aten, std::string op, const at::Tensor& input, const at::Tensor* weight,
           OpCost forward, OpCost backward, std::optional<c10::ScalarType> dtype = std::nullopt) {
    ops_.push_back({.module = NameFor(weight, op),
                    .op = std::move(op),
                    .aten = aten,
                    .input_shape = Sizes(input),
                    .dtype = dtype.value_or(input.scalar_type()),
                    .forward = forward,
                    .backward = backward});
  }

  // Whether `fn` is an op we count (then it is recorded).
  bool Count(const at::RecordFunction& fn) {
    const char* name = fn.name();
    c10::ArrayRef<const c10::IValue> in = fn.inputs();
    auto is = [&](const char* n) { return std::strcmp(name, n) == 0; };
    if (in.empty() || !IsTensor(in[0])) return false;
    const at::Tensor x = in[0].toTensor();
    const int64_t es = static_cast<int64_t>(x.element_size());
    const double n = static_cast<double>(x.numel());
    if (is("aten::convolution") && in.size() >= 9 && IsTensor(in[1])) {
      const at::Tensor w = in[1].toTensor();
      const std::vector<int64_t> stride = in[3].toIntVector(), pad = in[4].toIntVector(),
                                 dil = in[5].toIntVector(), out_pad = in[7].toIntVector();
      const bool transposed = in[6].toBool();
      const int64_t groups = in[8].toInt();
      std::vector<int64_t> out = {x.size(0), transposed ? w.size(1) * groups : w.size(0)};
      for (size_t d = 0; d + 2 < static_cast<size_t>(x.dim()); ++d) {
        const int64_t k = w.size(static_cast<int64_t>(d) + 2);
        const int64_t s = stride[d % stride.size()], p = pad[d % pad.size()],
                      dl = dil[d % dil.size()];
        const int64_t i = x.size(static_cast<int64_t>(d) + 2);
        out.push_back(transposed
                          ? (i - 1) * s - 2 * p + dl * (k - 1) + out_pad[d % out_pad.size()] + 1
                          : (i + 2 * p - dl * (k - 1) - 1) / s + 1);
      }
      // A transposed convolution is the input gradient of the convolution from its output to
      // its input: the same arithmetic with the two swapped.
      ConvShape shape{.input = transposed ? out : Sizes(x),
                      .weight = Sizes(w),
                      .output = transposed ? Sizes(x) : out,
                      .bias = IsTensor(in[2])};
      Add(name, "conv", x, &w, ConvForward(shape, es), ConvBackward(shape, es, x.requires_grad()));
      return true;
    }
    if ((is("aten::linear") && in.size() >= 2 && IsTensor(in[1])) ||
        (is("aten::addmm") && in.size() >= 3 && IsTensor(in[1]) && IsTensor(in[2]))) {
      const bool addmm = is("aten::addmm");
      const at::Tensor input = addmm ? in[1].toTensor() : x;
      const at::Tensor w = addmm ? in[2].toTensor() : in[1].toTensor();
      const int64_t features_in = input.size(-1);
      LinearShape shape{.rows = input.numel() / std::max<int64_t>(features_in, 1),
                        .in = features_in,
                        .out = addmm ? w.size(1) : w.size(0),
                        .bias = addmm || (in.size() >= 3 && IsTensor(in[2]))};
      // Autocast intercepts aten::linear itself (a convolution only at aten::conv2d, above the
      // aten::convolution counted here): the recorded inputs are still float32, the casts run
      // inside (their time is in this row), and the arithmetic runs at autocast's dtype.
      const std::optional<c10::ScalarType> cast = AutocastTarget(input);
      const int64_t les =
          static_cast<int64_t>(cast ? c10::elementSize(*cast) : input.element_size());
      Add(name, "linear", input, &w, LinearForward(shape, les),
          LinearBackward(shape, les, input.requires_grad()), cast);
      return true;
    }
    if (is("aten::batch_norm")) {
      const at::Tensor* w = in.size() >= 2 && IsTensor(in[1]) ? &in[1].toTensor() : nullptr;
      Add(name, "batch_norm", x, w, BatchNormForward(n, es), BatchNormBackward(n, es));
      return true;
    }
    if (is("aten::relu") || is("aten::relu_")) {
      Add(name, "relu", x, nullptr, ReluForward(n, es), ReluBackward(n, es));
      return true;
    }
    if ((is("aten::add") || is("aten::add_")) && in.size() >= 2 && IsTensor(in[1]) &&
        in[1].toTensor().numel() == x.numel() && x.numel() > 1) {
      Add(name, "add", x, nullptr, AddForward(n, es), AddBackward(n, es));
      return true;
    }
    if (is("aten::adaptive_avg_pool2d") && in.size() >= 2) {
      double out = static_cast<double>(x.numel() / (x.size(-1) * x.size(-2)));
      for (int64_t s : in[1].toIntVector()) out *= static_cast<double>(s);
      Add(name, "pool", x, nullptr, PoolForward(n, out, es), PoolBackward(n, out, es));
      return true;
    }
    // A dtype cast (autocast's copies, the logits back to float32). A cast of a parameter is
    // named after the parameter's module.
    // (An optional dtype arrives as an int IValue, or as None when only the device changes.)
    if (is("aten::_to_copy") && in.size() >= 2 && in[1].isInt() &&
        in[1].toScalarType() != x.scalar_type()) {
      const int64_t to = static_cast<int64_t>(c10::elementSize(in[1].toScalarType()));
      const bool parameter = owner_.count(x.data_ptr()) > 0;
      param_cast_pending_ = parameter;
      Add(name, "cast", x, parameter ? &x : nullptr, CastForward(n, es, to),
          CastBackward(n, to, es));
      return true;
    }
    if (is("aten::cross_entropy_loss")) {
      Add(name, "cross_entropy", x, nullptr, CrossEntropyForward(n, es),
          CrossEntropyBackward(n, es));
      return true;
    }
    return false;
  }

  std::unique_ptr<Timeline> timeline_;
  absl::Status timeline_problem_;  // why there is no timeline
  absl::Status status_;
  std::string mark_error_;  // the first error a mark met
  std::mutex mu_;           // the callbacks run on the recording thread and on autograd's
  bool recording_ = false;  // a Recording of this tracer lives
  std::thread::id recording_thread_;
  std::map<std::thread::id, ThreadState> threads_;
  std::map<const void*, std::string> owner_;  // a parameter's storage -> its module's name
  // This recording's autocast copies of parameters -> the module (cleared with each recording:
  // a freed copy's address may be reused).
  std::map<const void*, std::string> copy_owner_;
  bool param_cast_pending_ = false;
  std::map<std::string, int> unnamed_;
  std::string last_owner_;
  std::vector<std::string> scopes_;  // the module scopes open now, innermost last
  std::vector<TracedOp> ops_;
  std::vector<MarkedSpan> marked_;
  std::vector<TracedSpan> spans_;
  bool in_optimizer_ = false;
  size_t optimizer_start_ = kNoMark;
  double optimizer_s_ = 0, optimizer_host_s_ = 0;
  bool in_backward_ = false;  // a backward node has run in this recording
  double unattributed_backward_s_ = 0, unattributed_backward_host_s_ = 0;
  std::vector<std::chrono::steady_clock::time_point> host_marks_;  // each mark's, on the host
};

}  // namespace trainlab

#endif  // TRAINLAB_CORE_OP_TRACE_H_
