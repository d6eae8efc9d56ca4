// A recording's marks, for the op tracer (core/profiling/layer_tracer.h): MarkNow() notes a mark
// on the recording's timeline and the host's clock beside it; Begin() starts a recording afresh
// (mark 0, the origin); Finish() reads the timeline once the recorded work is done and turns the
// marked spans into the layers' times and the spans. The first error a mark meets stops the
// marking and becomes the recording's status. Included by layer_tracer.h, after the class.
#ifndef TRAINLAB_CORE_PROFILING_INTERNAL_MARKS_H_
#define TRAINLAB_CORE_PROFILING_INTERNAL_MARKS_H_

#include <chrono>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/profiling/layer_tracer.h"
#include "core/torch_error.h"

namespace trainlab {

// A mark on the timeline, and the host's time of it (marks are numbered 0, 1, ...).
inline size_t LayerTracer::MarkNow() {
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

inline void LayerTracer::Begin() {
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
inline void LayerTracer::Finish() {
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

}  // namespace trainlab

#endif  // TRAINLAB_CORE_PROFILING_INTERNAL_MARKS_H_
