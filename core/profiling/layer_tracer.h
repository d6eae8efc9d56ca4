// The layers one forward pass of a model runs, with their shapes and arithmetic (core/op_costs.h),
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
//   LayerTracer tracer(*model, device);
//   {
//     LayerTracer::Recording r(tracer);   // on this thread, until r goes out of scope
//     at::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
//     loss.backward();
//   }   // on a GPU, read after the step's work is done
//   if (!tracer.status().ok()) ... the times are missing; the layers stand
//   for (const TracedOp& op : tracer.ops()) ... op.module, op.forward_s, op.backward.flops
//
// This header is the tracer's API: LayerTracer and its Recording, TracedOp, TracedSpan, the
// Timeline interface and HostTimeline. Its internals are in core/profiling/internal/, which this
// header includes (the slot table and per-thread state before the class, the definitions of its
// private members after it):
//   slot_table.h       the process-wide slots of RecordFunction callbacks, one per recording
//   thread_state.h     what a thread that runs recorded work is in the middle of
//   device_timeline.h  DeviceTimeline (LibTorch 2.5 or newer), and the timeline for a device
//   marks.h            a recording's marks on its timeline, and reading them back
//   op_callbacks.h     the callbacks' work: module scopes, the counted ops, backward nodes
//   op_counting.h      which ATen ops are layers, their names, shapes and arithmetic
#ifndef TRAINLAB_CORE_PROFILING_LAYER_TRACER_H_
#define TRAINLAB_CORE_PROFILING_LAYER_TRACER_H_

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <torch/nn/module.h>

#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/op_costs.h"
#include "core/profiling/internal/slot_table.h"
#include "core/profiling/internal/thread_state.h"
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
  int op = -1;  // index into LayerTracer::ops(), or -1
  Pass pass = Pass::kForward;
  std::chrono::steady_clock::time_point start, end;
};

// Told when each layer's forward and each autograd node of a backward starts and ends, on the
// thread that runs it, in the order it runs them (so Begin and End nest per thread), under the
// tracer's lock: core/profiling/nvtx_layers.h draws them as NVTX ranges.
class LayerListener {
 public:
  virtual ~LayerListener() = default;
  // `layer`: the layer (its forward, or the layer whose forward created this backward node), or
  // nullptr for a backward node no counted op created; `node`: the ATen op or autograd node
  // ("aten::convolution", "torch::autograd::AccumulateGrad").
  virtual void Begin(TracedSpan::Pass pass, const TracedOp* layer, const char* node) = 0;
  virtual void End(TracedSpan::Pass pass) = 0;
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

class LayerTracer {
 public:
  // Times on `device`'s timeline: the host's clock for the CPU, the device's events otherwise.
  // Where it cannot (a device this LibTorch has no events for), status() says so after each
  // recording, and the layers and their arithmetic are still recorded.
  explicit LayerTracer(const torch::nn::Module& model, c10::Device device = c10::kCPU)
      : LayerTracer(model, nullptr) {
    absl::StatusOr<std::unique_ptr<Timeline>> timeline = MakeTimeline(device);
    if (timeline.ok()) {
      timeline_ = *std::move(timeline);
    } else {
      timeline_problem_ = timeline.status();
    }
  }
  // Times on the timeline given (a test's).
  LayerTracer(const torch::nn::Module& model, std::unique_ptr<Timeline> timeline)
      : timeline_(std::move(timeline)) {
    for (const auto& item : model.named_parameters(/*recurse=*/true)) {
      const std::string& key = item.key();  // "layer2.0.conv1.weight"
      const size_t dot = key.rfind('.');
      owner_[item.value().data_ptr()] = dot == std::string::npos ? "" : key.substr(0, dot);
    }
  }
  LayerTracer(const LayerTracer&) = delete;
  LayerTracer& operator=(const LayerTracer&) = delete;

  // Records, while it lives, the ops this thread runs and those that threads working for it run:
  // the callbacks are thread-local, and the autograd engine hands a thread's callbacks to the
  // device thread that runs its backward (at::ThreadLocalState). Each recording holds one of
  // kSlots slots, whose own callbacks find its tracer on any thread. One recording of a tracer at
  // a time: a second one while the first lives records nothing, and the tracer's status() says so.
  class Recording {
   public:
    explicit Recording(LayerTracer& tracer) : tracer_(tracer) {
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
      slot_ = SlotTable::ClaimSlot(&tracer);
      if (slot_ < 0) {
        std::lock_guard<std::mutex> lock(tracer.mu_);
        tracer.status_ = absl::ResourceExhaustedError(
            absl::StrCat("more than ", kSlots, " op-trace recordings at once"));
        return;
      }
      const SlotTable::SlotCallbacks& c = SlotTable::CallbackTable()[static_cast<size_t>(slot_)];
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
        SlotTable::ReleaseSlot(slot_);
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
        SlotTable::ReleaseSlot(slot_);  // waits for a callback still running on another thread
      }
      tracer_.Finish();
      std::lock_guard<std::mutex> lock(tracer_.mu_);
      tracer_.recording_ = false;
    }
    Recording(const Recording&) = delete;
    Recording& operator=(const Recording&) = delete;

   private:
    LayerTracer& tracer_;
    bool owner_ = false;  // this recording started the tracer's (not a refused second one)
    int slot_ = -1;
    at::CallbackHandle handle_ = 0, backward_handle_ = 0;
  };

  // Tells `listener` (or nobody: nullptr) of every layer as it runs, from the next recording on;
  // it must outlive the recordings.
  void set_listener(LayerListener* listener) {
    std::lock_guard<std::mutex> lock(mu_);
    listener_ = listener;
  }

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
  // The slots' callbacks (internal/slot_table.h) call OnStart, OnEnd, OnBackwardStart and
  // OnBackwardEnd on the tracer in their slot.
  using SlotTable = profiling_internal::SlotTable<LayerTracer, kSlots>;
  friend SlotTable;
  using ThreadState = profiling_internal::ThreadState;  // internal/thread_state.h
  static constexpr size_t kNoMark = profiling_internal::kNoMark;

  // The timeline for `device` (internal/device_timeline.h).
  static absl::StatusOr<std::unique_ptr<Timeline>> MakeTimeline(c10::Device device);

  // A timed interval, by its marks, until the recording's timeline is read.
  struct MarkedSpan {
    int op = -1;
    TracedSpan::Pass pass = TracedSpan::Pass::kForward;
    size_t start = kNoMark, end = kNoMark;
  };

  // Marks on the timeline, and reading them back (internal/marks.h).
  size_t MarkNow();
  void Begin();
  void Finish();

  // The callbacks' work, under mu_ (internal/op_callbacks.h).
  static std::optional<std::string> ModuleScope(const at::RecordFunction& fn);
  static bool IsOptimizerScope(const at::RecordFunction& fn);
  void OnStart(const at::RecordFunction& fn);
  void OnEnd(const at::RecordFunction& fn);
  void OnBackwardStart(const at::RecordFunction& fn);
  void OnBackwardEnd();
  static bool IsEngineWrapper(const at::RecordFunction& fn);
  void Attribute(int64_t seq, size_t start, size_t end);
  const TracedOp* CreatorOf(int64_t seq) const;

  // Which ops are layers, and what they are (internal/op_counting.h).
  static std::vector<int64_t> Sizes(const at::Tensor& t) { return t.sizes().vec(); }
  static bool IsTensor(const c10::IValue& v) { return v.isTensor() && v.toTensor().defined(); }
  std::string NameFor(const at::Tensor* weight, const std::string& op);
  static std::optional<c10::ScalarType> AutocastTarget(const at::Tensor& t);
  void Add(const char* aten, std::string op, const at::Tensor& input, const at::Tensor* weight,
           OpCost forward, OpCost backward, std::optional<c10::ScalarType> dtype = std::nullopt);
  bool Count(const at::RecordFunction& fn);

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
  LayerListener* listener_ = nullptr;
};

}  // namespace trainlab

// The private members' definitions, which need the class whole.
#include "core/profiling/internal/device_timeline.h"  // IWYU pragma: export
#include "core/profiling/internal/marks.h"            // IWYU pragma: export
#include "core/profiling/internal/op_callbacks.h"     // IWYU pragma: export
#include "core/profiling/internal/op_counting.h"      // IWYU pragma: export

#endif  // TRAINLAB_CORE_PROFILING_LAYER_TRACER_H_
