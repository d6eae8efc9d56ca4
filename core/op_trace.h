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
// Times: each counted forward op's own time (its start to its end, on this thread's steady
// clock), and the time the engine spends evaluating the autograd nodes its forward created (the
// engine's "autograd::engine::evaluate_function: <node>" record: the node, and the sums of its
// gradients into the next nodes' inputs; tied to the layer by autograd's sequence numbers: the
// nodes an op creates take the numbers from its start to its end, and the node's own
// BACKWARD_FUNCTION record carries its number), when backward runs inside the recording
// on this thread (the CPU engine runs a CPU backward on the calling thread). A backward node no
// counted op created (AccumulateGrad, a view), and the engine's own sums of a gradient that
// reaches a tensor twice, add to unattributed_backward_s(). The callbacks cost
// microseconds per op; compare a step's time with and without a recording for the overhead.
//
// Example:
//   OpTracer tracer(*model);
//   {
//     OpTracer::Recording r(tracer);   // on this thread, until r goes out of scope
//     at::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
//     loss.backward();
//   }
//   for (const TracedOp& op : tracer.ops()) ... op.module, op.forward.flops, op.backward.bytes
#ifndef TRAINLAB_CORE_OP_TRACE_H_
#define TRAINLAB_CORE_OP_TRACE_H_

#include <ATen/ATen.h>
#include <ATen/SequenceNumber.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <torch/nn/module.h>
#include <torch/version.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/module_scope.h"
#include "core/op_costs.h"

namespace trainlab {

struct TracedOp {
  std::string module;  // "layer2.0.conv1", "layer2.0.relu#2"
  std::string op;      // conv | linear | batch_norm | relu | add | pool | cross_entropy | cast
  std::string aten;    // the ATen op it came from ("aten::convolution")
  std::vector<int64_t> input_shape;
  c10::ScalarType dtype = c10::ScalarType::Float;  // of its input (bfloat16 under autocast)
  OpCost forward;
  OpCost backward;
  double forward_s = 0;   // this op's forward, start to end
  double backward_s = 0;  // the autograd nodes it created, when backward ran in the recording
  uint64_t first_sequence_nr = 0,
           end_sequence_nr = 0;  // the autograd nodes it created: [first, end)
};

// One interval of a recording on this thread's steady clock: a layer's forward, one autograd
// node of its backward, the optimizer step, or backward time no layer owns (`op` -1).
struct TracedSpan {
  enum class Pass { kForward, kBackward, kOptimizer };
  int op = -1;  // index into OpTracer::ops(), or -1
  Pass pass = Pass::kForward;
  std::chrono::steady_clock::time_point start, end;
};

class OpTracer {
 public:
  explicit OpTracer(const torch::nn::Module& model) {
    for (const auto& item : model.named_parameters(/*recurse=*/true)) {
      const std::string& key = item.key();  // "layer2.0.conv1.weight"
      const size_t dot = key.rfind('.');
      owner_[item.value().data_ptr()] = dot == std::string::npos ? "" : key.substr(0, dot);
    }
  }
  OpTracer(const OpTracer&) = delete;
  OpTracer& operator=(const OpTracer&) = delete;

  // Records the ops this thread runs while it lives.
  class Recording {
   public:
    explicit Recording(OpTracer& tracer) : previous_(Active()) {
      Active() = &tracer;
      tracer.Clear();
      handle_ = at::addThreadLocalCallback(
          at::RecordFunctionCallback(&OpTracer::OnStart, &OpTracer::OnEnd)
              .needsInputs(true)
              .needsOutputs(true)  // a parameter's autocast copy: named after the parameter
              .scopes({at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE}));
      backward_handle_ = at::addThreadLocalCallback(
          at::RecordFunctionCallback(&OpTracer::OnBackwardStart, &OpTracer::OnBackwardEnd)
              .scopes({at::RecordScope::BACKWARD_FUNCTION}));
    }
    ~Recording() {
      at::removeCallback(backward_handle_);
      at::removeCallback(handle_);
      Active() = previous_;
    }
    Recording(const Recording&) = delete;
    Recording& operator=(const Recording&) = delete;

   private:
    OpTracer* previous_;
    at::CallbackHandle handle_{}, backward_handle_{};
  };

  // The layers of the last recording, in the order the forward ran them.
  const std::vector<TracedOp>& ops() const { return ops_; }
  // Backward time in autograd nodes that no counted op created.
  double unattributed_backward_s() const { return unattributed_backward_s_; }
  // The optimizer step's time: the user scope kOptimizerStepScope (core/module_scope.h) that the
  // step opens around it (core/step.h), start to end; the ops inside are not layers.
  double optimizer_s() const { return optimizer_s_; }
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

 private:
  static OpTracer*& Active() {
    static thread_local OpTracer* active = nullptr;
    return active;
  }

  // A module's user scope: its name (without the prefix), or nullopt for any other op.
  static std::optional<std::string> ModuleScope(const at::RecordFunction& fn) {
    if (fn.scope() != at::RecordScope::USER_SCOPE) return std::nullopt;
    const std::string_view name = fn.name();
    if (name.substr(0, kModuleScopePrefix.size()) != kModuleScopePrefix) return std::nullopt;
    return std::string(name.substr(kModuleScopePrefix.size()));
  }

  using Clock = std::chrono::steady_clock;
  static double Seconds(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
  }
  static bool IsOptimizerScope(const at::RecordFunction& fn) {
    return std::strcmp(fn.name(), kOptimizerStepScope) == 0;
  }

  void Clear() {
    ops_.clear();
    unnamed_.clear();
    last_owner_.clear();
    copy_owner_.clear();
    param_cast_pending_ = false;
    scopes_.clear();
    backward_.clear();
    wrappers_.clear();
    spans_.clear();
    in_optimizer_ = false;
    optimizer_s_ = 0;
    depth_ = 0;
    counted_depth_ = -1;
    loose_depth_ = -1;
    in_backward_ = false;
    unattributed_backward_s_ = 0;
  }

  static std::unique_ptr<at::ObserverContext> OnStart(const at::RecordFunction& fn) {
    OpTracer* t = Active();
    if (t == nullptr) return nullptr;
    if (fn.scope() == at::RecordScope::USER_SCOPE) {
      if (IsOptimizerScope(fn)) {
        t->in_optimizer_ = true;
        t->optimizer_start_ = Clock::now();
      } else if (std::optional<std::string> module = ModuleScope(fn)) {
        t->scopes_.push_back(*module);
      }
      return nullptr;
    }
    ++t->depth_;
    if (t->in_optimizer_) return nullptr;  // the optimizer's own ops: its row, not layers
    if (IsEngineWrapper(fn)) {  // the whole of one node's evaluation, sums of its outputs included
      t->in_backward_ = true;
      t->wrappers_.push_back({-2, Clock::now()});
      return nullptr;
    }
    // Once backward has started, ops are backward's, not layers of the forward: inside a node
    // they are the node's time; outside any (the engine summing the gradients of a tensor used
    // twice, as a residual block's input is) they are unattributed backward time.
    if (t->in_backward_) {
      if (t->backward_.empty() && t->wrappers_.empty() && t->loose_depth_ < 0) {
        t->loose_depth_ = t->depth_;
        t->loose_start_ = Clock::now();
      }
      return nullptr;
    }
    if (t->counted_depth_ < 0) {
      const uint64_t first = at::sequence_number::peek();
      if (t->Count(fn)) {
        t->counted_depth_ = t->depth_;
        t->ops_.back().first_sequence_nr = first;
        t->counted_start_ = Clock::now();
      }
    }
    return nullptr;
  }
  static void OnEnd(const at::RecordFunction& fn, at::ObserverContext*) {
    OpTracer* t = Active();
    if (t == nullptr) return;
    if (fn.scope() == at::RecordScope::USER_SCOPE) {
      if (IsOptimizerScope(fn) && t->in_optimizer_) {
        t->in_optimizer_ = false;
        const Clock::time_point end = Clock::now();
        t->optimizer_s_ += Seconds(t->optimizer_start_, end);
        t->spans_.push_back({-1, TracedSpan::Pass::kOptimizer, t->optimizer_start_, end});
      } else if (ModuleScope(fn) && !t->scopes_.empty()) {
        t->scopes_.pop_back();
      }
      return;
    }
    if (IsEngineWrapper(fn) && !t->wrappers_.empty()) {
      const auto [seq, start] = t->wrappers_.back();
      t->wrappers_.pop_back();
      t->Attribute(seq, start, Clock::now());
      --t->depth_;
      return;
    }
    if (t->depth_ == t->loose_depth_) {
      const Clock::time_point end = Clock::now();
      t->unattributed_backward_s_ += Seconds(t->loose_start_, end);
      t->spans_.push_back({-1, TracedSpan::Pass::kBackward, t->loose_start_, end});
      t->loose_depth_ = -1;
    }
    if (t->depth_ == t->counted_depth_) {
      const Clock::time_point end = Clock::now();
      t->ops_.back().forward_s = Seconds(t->counted_start_, end);
      t->ops_.back().end_sequence_nr = at::sequence_number::peek();
      if (t->param_cast_pending_) {  // the copy autocast hands the layer is the parameter's
        const auto& out = fn.outputs();
        if (!out.empty() && IsTensor(out[0])) {
          t->copy_owner_[out[0].toTensor().data_ptr()] = t->ops_.back().module;
        }
        t->param_cast_pending_ = false;
      }
      t->spans_.push_back({static_cast<int>(t->ops_.size()) - 1, TracedSpan::Pass::kForward,
                           t->counted_start_, end});
      t->counted_depth_ = -1;
    }
    --t->depth_;
  }

  static std::unique_ptr<at::ObserverContext> OnBackwardStart(const at::RecordFunction& fn) {
    OpTracer* t = Active();
    if (t == nullptr) return nullptr;
    t->in_backward_ = true;
    if (!t->wrappers_.empty() && t->wrappers_.back().first == -2) {
      t->wrappers_.back().first = fn.seqNr();
    }
    t->backward_.push_back({fn.seqNr(), Clock::now()});
    return nullptr;
  }
  static void OnBackwardEnd(const at::RecordFunction&, at::ObserverContext*) {
    OpTracer* t = Active();
    if (t == nullptr || t->backward_.empty()) return;
    const auto [seq, start] = t->backward_.back();
    t->backward_.pop_back();
    // Inside the engine's wrapper, the wrapper's end attributes the whole evaluation.
    if (t->wrappers_.empty()) t->Attribute(seq, start, Clock::now());
  }

  // LibTorch's engine opens a FUNCTION-scope "autograd::engine::evaluate_function: <node>"
  // around each node it runs (the node's own BACKWARD_FUNCTION record inside it).
  static bool IsEngineWrapper(const at::RecordFunction& fn) {
    static constexpr std::string_view kWrapper = "autograd::engine::evaluate_function";
    return std::string_view(fn.name()).substr(0, kWrapper.size()) == kWrapper;
  }

  // Adds the backward interval [start, end) to the layer whose forward created node `seq`.
  void Attribute(int64_t seq, Clock::time_point start, Clock::time_point end) {
    const double s = Seconds(start, end);
    for (size_t i = 0; i < ops_.size(); ++i) {
      TracedOp& op = ops_[i];
      if (seq >= 0 && static_cast<uint64_t>(seq) >= op.first_sequence_nr &&
          static_cast<uint64_t>(seq) < op.end_sequence_nr) {
        op.backward_s += s;
        spans_.push_back({static_cast<int>(i), TracedSpan::Pass::kBackward, start, end});
        return;
      }
    }
    unattributed_backward_s_ += s;
    spans_.push_back({-1, TracedSpan::Pass::kBackward, start, end});
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

  std::map<const void*, std::string> owner_;  // a parameter's storage -> its module's name
  // This recording's autocast copies of parameters -> the module (cleared with each recording:
  // a freed copy's address may be reused).
  std::map<const void*, std::string> copy_owner_;
  bool param_cast_pending_ = false;
  std::map<std::string, int> unnamed_;
  std::string last_owner_;
  std::vector<std::string> scopes_;  // the module scopes open now, innermost last
  std::vector<std::pair<int64_t, Clock::time_point>> backward_;  // the nodes running now
  std::vector<std::pair<int64_t, Clock::time_point>> wrappers_;  // the engine's, running now
  std::vector<TracedOp> ops_;
  std::vector<TracedSpan> spans_;
  bool in_optimizer_ = false;
  Clock::time_point optimizer_start_;
  double optimizer_s_ = 0;
  int depth_ = 0;
  int counted_depth_ = -1;
  Clock::time_point counted_start_;
  bool in_backward_ = false;  // a backward node has run in this recording
  int loose_depth_ = -1;      // an op backward runs outside any node, while it runs
  Clock::time_point loose_start_;
  double unattributed_backward_s_ = 0;
};

}  // namespace trainlab

#endif  // TRAINLAB_CORE_OP_TRACE_H_
