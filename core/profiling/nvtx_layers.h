// --nvtx=layers: every layer's forward and backward as an NVTX range (core/nvtx.h), named as the
// per-layer profile names it (core/profiling/layer_tracer.h): "layer2.0.conv1" for its forward,
// "layer2.0.conv1 (backward)" for each autograd node its forward created, and a backward node
// no layer created by the node ("torch::autograd::AccumulateGrad"). Each is pushed and popped on
// the thread that runs it, inside the phase ranges of the step (forward, loss, backward), or on
// a GPU's backward, on the autograd engine's device thread.
//
// A LayerTracer with no timeline (it times nothing) carries the names; one recording of it per
// step and per test batch (TrainerOptions::layers) keeps the names of one step, as the profile's.
//
// Example:
//   NvtxLayerRanges ranges;
//   LayerTracer tracer(*model, std::unique_ptr<Timeline>());  // names only, no times
//   tracer.set_listener(&ranges);
//   { LayerTracer::Recording r(tracer); step(); }             // the layers' ranges, as they run
#ifndef TRAINLAB_CORE_PROFILING_NVTX_LAYERS_H_
#define TRAINLAB_CORE_PROFILING_NVTX_LAYERS_H_

#include <cstdint>
#include <map>
#include <string>

#include "core/nvtx.h"
#include "core/profiling/layer_tracer.h"

namespace trainlab {

class NvtxLayerRanges final : public LayerListener {
 public:
  // (Called under the tracer's lock: the names' table needs no lock of its own.)
  void Begin(TracedSpan::Pass pass, const TracedOp* layer, const char* node) override {
    if (!nvtx::Enabled()) return;
    const bool forward = pass == TracedSpan::Pass::kForward;
    std::string name;
    if (layer == nullptr) {
      name = node;
    } else {
      name = forward ? layer->module : layer->module + " (backward)";
    }
    nvtx::Push(Registered(name), forward ? kForwardColor : kBackwardColor);
  }
  void End(TracedSpan::Pass) override {
    if (nvtx::Enabled()) nvtx::Pop();
  }

 private:
  static constexpr uint32_t kForwardColor = 0xFF8CD17D;   // a lighter forward green
  static constexpr uint32_t kBackwardColor = 0xFF86BCB6;  // a lighter backward teal

  // Each name registered once: a step's ~150 ranges pass handles, not strings.
  nvtxStringHandle_t Registered(const std::string& name) {
    auto it = names_.find(name);
    if (it == names_.end()) it = names_.emplace(name, nvtx::RegisterString(name.c_str())).first;
    return it->second;
  }
  std::map<std::string, nvtxStringHandle_t> names_;
};

}  // namespace trainlab

#endif  // TRAINLAB_CORE_PROFILING_NVTX_LAYERS_H_
