// NVTX ranges (the NVIDIA Tools Extension, v3, header-only: third_party/nvtx3) over the lab's
// structure, so that Nsight Systems (`nsys profile`) draws each batch's phases, and with
// --nvtx=layers each layer (core/profiling/nvtx_layers.h), above the kernels they launch.
//
// Everything is in the domain "trainlab". A range is pushed and popped on the thread that runs
// its work: the trainer's for the phases, the autograd engine's for a GPU's backward layers.
// With --nvtx off (the default) no NVTX function is called at all; with it on and no tool
// attached, each call is a test of one function pointer (NVTX's own design). A tool is whatever
// NVTX_INJECTION64_PATH names (nsys sets it; tests/nvtx's recorder stands in for it in tests).
//
// The phases, as the Trainer times them (core/trainer.h):
//   epoch (a start/end range, payload: the epoch, from 1)
//     wait        loader.next()                         (payload: the batch, from 1)
//     copy        the batch to the device               (payload: the batch)
//     step        the training step, to its sync        (payload: the batch)
//       zero grad, forward, loss, backward, optimizer step   (the eager step, core/step.h)
//       sync      the device synchronize ending the step
//     evaluation  the test set, after the epoch         (payload: the epoch)
//
// Example:
//   nvtx::SetLevel(nvtx::Level::kPhases);              // once, from --nvtx
//   { nvtx::PhaseRange r(nvtx::Phase::kForward); logits = model->forward(x); }
#ifndef TRAINLAB_CORE_NVTX_H_
#define TRAINLAB_CORE_NVTX_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "nvtx3/nvToolsExt.h"

namespace trainlab::nvtx {

// What --nvtx asks for: nothing, the phases, or the phases and every layer.
enum class Level : int { kOff = 0, kPhases = 1, kLayers = 2 };

inline std::atomic<int>& LevelStore() {
  static std::atomic<int> level{0};
  return level;
}
// Set once per process, before training (the session does, from --nvtx).
inline void SetLevel(Level level) {
  LevelStore().store(static_cast<int>(level), std::memory_order_relaxed);
}
inline Level CurrentLevel() {
  return static_cast<Level>(LevelStore().load(std::memory_order_relaxed));
}
inline bool Enabled() { return CurrentLevel() != Level::kOff; }
inline bool LayersEnabled() { return CurrentLevel() == Level::kLayers; }

// "off" | "phases" | "layers", or nullopt.
inline std::optional<Level> ParseLevel(std::string_view s) {
  if (s == "off") return Level::kOff;
  if (s == "phases") return Level::kPhases;
  if (s == "layers") return Level::kLayers;
  return std::nullopt;
}
inline const char* LevelName(Level level) {
  switch (level) {
    case Level::kOff:
      return "off";
    case Level::kPhases:
      return "phases";
    case Level::kLayers:
      return "layers";
  }
  return "?";
}

enum class Phase : int {
  kEpoch,
  kWait,
  kCopy,
  kStep,
  kZeroGrad,
  kForward,
  kLoss,
  kBackward,
  kOptimizerStep,
  kSync,
  kEvaluation,
  kCount
};

// The range's name, as nsys shows it.
inline const char* PhaseName(Phase p) {
  static constexpr std::array<const char*, static_cast<size_t>(Phase::kCount)> kNames = {
      "epoch", "wait",     "copy",           "step", "zero grad", "forward",
      "loss",  "backward", "optimizer step", "sync", "evaluation"};
  return kNames[static_cast<size_t>(p)];
}

// ARGB colours: data red and orange, the step's parts in the greens and blues, sync brown.
inline uint32_t PhaseColor(Phase p) {
  static constexpr std::array<uint32_t, static_cast<size_t>(Phase::kCount)> kColors = {
      0xFF79706E, 0xFFE15759, 0xFFF28E2B, 0xFF4E79A7, 0xFFBAB0AC, 0xFF59A14F,
      0xFFEDC948, 0xFF76B7B2, 0xFFB07AA1, 0xFF9C755F, 0xFFFF9DA7};
  return kColors[static_cast<size_t>(p)];
}

// The domain "trainlab", created by the first range (which is also what loads a tool).
inline nvtxDomainHandle_t Domain() {
  static const nvtxDomainHandle_t domain = nvtxDomainCreateA("trainlab");
  return domain;
}

// `text` registered in the domain once: a range then passes a handle, not a string to copy.
inline nvtxStringHandle_t RegisterString(const char* text) {
  return nvtxDomainRegisterStringA(Domain(), text);
}

inline nvtxStringHandle_t PhaseString(Phase p) {
  static std::array<nvtxStringHandle_t, static_cast<size_t>(Phase::kCount)> strings;
  static std::once_flag once;
  std::call_once(once, [] {
    for (size_t i = 0; i < strings.size(); ++i) {
      strings[i] = RegisterString(PhaseName(static_cast<Phase>(i)));
    }
  });
  return strings[static_cast<size_t>(p)];
}

// An event's attributes: a registered name, a colour, and an optional unsigned payload.
inline nvtxEventAttributes_t Attributes(nvtxStringHandle_t name, uint32_t color,
                                        std::optional<uint64_t> payload = std::nullopt) {
  nvtxEventAttributes_t a{};
  a.version = NVTX_VERSION;
  a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  a.colorType = NVTX_COLOR_ARGB;
  a.color = color;
  a.messageType = NVTX_MESSAGE_TYPE_REGISTERED;
  a.message.registered = name;
  if (payload) {
    a.payloadType = NVTX_PAYLOAD_TYPE_UNSIGNED_INT64;
    a.payload.ullValue = *payload;
  }
  return a;
}

// Pushes a range on this thread; Pop() ends the innermost. Only call these with Enabled().
inline void Push(nvtxStringHandle_t name, uint32_t color,
                 std::optional<uint64_t> payload = std::nullopt) {
  const nvtxEventAttributes_t a = Attributes(name, color, payload);
  nvtxDomainRangePushEx(Domain(), &a);
}
inline void Pop() { nvtxDomainRangePop(Domain()); }

// A phase's range on this thread while it lives, when --nvtx is on; nothing otherwise.
class PhaseRange {
 public:
  explicit PhaseRange(Phase p, std::optional<uint64_t> payload = std::nullopt) : on_(Enabled()) {
    if (on_) Push(PhaseString(p), PhaseColor(p), payload);
  }
  ~PhaseRange() {
    if (on_) Pop();
  }
  PhaseRange(const PhaseRange&) = delete;
  PhaseRange& operator=(const PhaseRange&) = delete;

 private:
  bool on_;
};

// A start/end range (an epoch, which spans calls): Start() begins it when --nvtx is on, End() or
// the destructor ends it; starting another ends the one open.
class SpanRange {
 public:
  SpanRange() = default;
  ~SpanRange() { End(); }
  SpanRange(const SpanRange&) = delete;
  SpanRange& operator=(const SpanRange&) = delete;

  void Start(Phase p, std::optional<uint64_t> payload = std::nullopt) {
    End();
    if (!Enabled()) return;
    const nvtxEventAttributes_t a = Attributes(PhaseString(p), PhaseColor(p), payload);
    id_ = nvtxDomainRangeStartEx(Domain(), &a);
    open_ = true;
  }
  void End() {
    if (!open_) return;
    nvtxDomainRangeEnd(Domain(), id_);
    open_ = false;
  }

 private:
  nvtxRangeId_t id_ = 0;
  bool open_ = false;
};

}  // namespace trainlab::nvtx

#endif  // TRAINLAB_CORE_NVTX_H_
