// The op tracer's (core/profiling/layer_tracer.h) timeline on a device: DeviceTimeline, where
// this LibTorch's events can time (2.5 or newer: c10::Event::elapsedTime; TRAINLAB_DEVICE_TIMELINE
// says it is there), and LayerTracer::MakeTimeline, which picks the host's clock for the CPU and
// this for any other device, or says why there is none. Included by layer_tracer.h, after the
// class.
#ifndef TRAINLAB_CORE_PROFILING_INTERNAL_DEVICE_TIMELINE_H_
#define TRAINLAB_CORE_PROFILING_INTERNAL_DEVICE_TIMELINE_H_

#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/version.h>

#include <chrono>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/profiling/layer_tracer.h"
#include "core/torch_error.h"

namespace trainlab {

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

inline absl::StatusOr<std::unique_ptr<Timeline>> LayerTracer::MakeTimeline(c10::Device device) {
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

}  // namespace trainlab

#endif  // TRAINLAB_CORE_PROFILING_INTERNAL_DEVICE_TIMELINE_H_
