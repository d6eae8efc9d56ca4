// The op tracer's (core/profiling/layer_tracer.h) callbacks' work, on whichever thread runs the
// recorded ops, under the tracer's lock: the module scopes and the optimizer's scope the
// recording thread opens; the counted ops of the forward (op_counting.h), each timed from its
// start to its end; and, once backward runs (on this thread or the engine's), the autograd nodes
// and the engine's wrappers around them, each tied to the layer whose forward created the node
// by autograd's sequence numbers, or left unattributed. Each thread's nesting is its
// ThreadState (thread_state.h). Included by layer_tracer.h, after the class.
#ifndef TRAINLAB_CORE_PROFILING_INTERNAL_OP_CALLBACKS_H_
#define TRAINLAB_CORE_PROFILING_INTERNAL_OP_CALLBACKS_H_

#include <ATen/SequenceNumber.h>
#include <ATen/record_function.h>

#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "core/module_scope.h"
#include "core/profiling/layer_tracer.h"

namespace trainlab {

// A module's user scope: its name (without the prefix), or nullopt for any other op.
inline std::optional<std::string> LayerTracer::ModuleScope(const at::RecordFunction& fn) {
  if (fn.scope() != at::RecordScope::USER_SCOPE) return std::nullopt;
  const std::string_view name = fn.name();
  if (name.substr(0, kModuleScopePrefix.size()) != kModuleScopePrefix) return std::nullopt;
  return std::string(name.substr(kModuleScopePrefix.size()));
}
inline bool LayerTracer::IsOptimizerScope(const at::RecordFunction& fn) {
  return std::strcmp(fn.name(), kOptimizerStepScope) == 0;
}

inline void LayerTracer::OnStart(const at::RecordFunction& fn) {
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
      if (listener_) listener_->Begin(TracedSpan::Pass::kForward, &ops_.back(), fn.name());
    }
  }
}
inline void LayerTracer::OnEnd(const at::RecordFunction& fn) {
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
    if (listener_) listener_->End(TracedSpan::Pass::kForward);
  }
  --ts.depth;
}

inline void LayerTracer::OnBackwardStart(const at::RecordFunction& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  ThreadState& ts = threads_[std::this_thread::get_id()];
  in_backward_ = true;
  if (!ts.wrappers.empty() && ts.wrappers.back().first == -2) {
    ts.wrappers.back().first = fn.seqNr();
  }
  // Inside the engine's wrapper, the wrapper's marks time the node: none needed here.
  ts.backward.push_back({fn.seqNr(), ts.wrappers.empty() ? MarkNow() : kNoMark});
  if (listener_) listener_->Begin(TracedSpan::Pass::kBackward, CreatorOf(fn.seqNr()), fn.name());
}
inline void LayerTracer::OnBackwardEnd() {
  std::lock_guard<std::mutex> lock(mu_);
  ThreadState& ts = threads_[std::this_thread::get_id()];
  if (ts.backward.empty()) return;
  const auto [seq, start] = ts.backward.back();
  ts.backward.pop_back();
  if (listener_) listener_->End(TracedSpan::Pass::kBackward);
  // Inside the engine's wrapper, the wrapper's end attributes the whole evaluation.
  if (ts.wrappers.empty()) Attribute(seq, start, MarkNow());
}

// LibTorch's engine opens a FUNCTION-scope "autograd::engine::evaluate_function: <node>"
// around each node it runs (the node's own BACKWARD_FUNCTION record inside it).
inline bool LayerTracer::IsEngineWrapper(const at::RecordFunction& fn) {
  static constexpr std::string_view kWrapper = "autograd::engine::evaluate_function";
  return std::string_view(fn.name()).substr(0, kWrapper.size()) == kWrapper;
}

// The layer whose forward created autograd node `seq`, or nullptr.
inline const TracedOp* LayerTracer::CreatorOf(int64_t seq) const {
  for (const TracedOp& op : ops_) {
    if (seq >= 0 && static_cast<uint64_t>(seq) >= op.first_sequence_nr &&
        static_cast<uint64_t>(seq) < op.end_sequence_nr) {
      return &op;
    }
  }
  return nullptr;
}

// Notes the backward interval [start, end) of the layer whose forward created node `seq`.
inline void LayerTracer::Attribute(int64_t seq, size_t start, size_t end) {
  const TracedOp* op = CreatorOf(seq);
  marked_.push_back({op == nullptr ? -1 : static_cast<int>(op - ops_.data()),
                     TracedSpan::Pass::kBackward, start, end});
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_PROFILING_INTERNAL_OP_CALLBACKS_H_
