// The op tracer's (core/profiling/layer_tracer.h) process-wide table of RecordFunction callbacks.
// LibTorch takes a callback as a plain function pointer, with no room for the tracer it belongs
// to, and the autograd engine runs a recording's callbacks on its own threads too; so there are
// kSlots slots, each with its own callbacks (one template instance per slot), and a recording
// claims a slot for its tracer while it lives. Process-wide: a slot's callbacks may run on any
// thread.
#ifndef TRAINLAB_CORE_PROFILING_INTERNAL_SLOT_TABLE_H_
#define TRAINLAB_CORE_PROFILING_INTERNAL_SLOT_TABLE_H_

#include <ATen/record_function.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>
#include <utility>

namespace trainlab::profiling_internal {

// RecordFunction callbacks are plain function pointers; each slot has its own, which find the
// slot's tracer (on whatever thread they run). A callback counts itself in while it runs, so
// that releasing a slot can wait for one still running on another thread (the engine's device
// thread finishing a node as an error unwinds the caller) before the tracer may go away; slots
// are claimed round-robin, so a released one is not the next one claimed.
//
// `Tracer` (LayerTracer, which befriends its table) has the callbacks' work: OnStart, OnEnd,
// OnBackwardStart and OnBackwardEnd.
template <typename Tracer, int kSlots>
class SlotTable {
 public:
  struct SlotCallbacks {
    at::RecordFunctionCallback::StartCallback start, backward_start;
    at::RecordFunctionCallback::EndCallback end, backward_end;
  };
  static int ClaimSlot(Tracer* tracer) {
    static std::atomic<unsigned> next{0};
    const unsigned first = next.fetch_add(1);
    for (unsigned i = 0; i < static_cast<unsigned>(kSlots); ++i) {
      const size_t s = (first + i) % kSlots;
      Tracer* expected = nullptr;
      if (Slots()[s].tracer.compare_exchange_strong(expected, tracer)) return static_cast<int>(s);
    }
    return -1;
  }
  static void ReleaseSlot(int s) {
    Slot& slot = Slots()[static_cast<size_t>(s)];
    slot.tracer.store(nullptr);
    while (slot.running.load() != 0) std::this_thread::yield();
  }
  static const std::array<SlotCallbacks, kSlots>& CallbackTable() {
    static const std::array<SlotCallbacks, kSlots> table =
        MakeCallbackTable(std::make_integer_sequence<int, kSlots>{});
    return table;
  }

 private:
  struct Slot {
    std::atomic<Tracer*> tracer{nullptr};
    std::atomic<int> running{0};
  };
  static std::array<Slot, kSlots>& Slots() {
    static std::array<Slot, kSlots> slots;
    return slots;
  }
  // Runs `f(tracer)` when slot S has a tracer, counted in while it runs.
  template <int S, typename F>
  static void WithSlot(F f) {
    Slot& slot = Slots()[S];
    slot.running.fetch_add(1);
    if (Tracer* t = slot.tracer.load()) f(t);
    slot.running.fetch_sub(1);
  }
  template <int S>
  static std::unique_ptr<at::ObserverContext> SlotStart(const at::RecordFunction& fn) {
    WithSlot<S>([&](Tracer* t) { t->OnStart(fn); });
    return nullptr;
  }
  template <int S>
  static void SlotEnd(const at::RecordFunction& fn, at::ObserverContext*) {
    WithSlot<S>([&](Tracer* t) { t->OnEnd(fn); });
  }
  template <int S>
  static std::unique_ptr<at::ObserverContext> SlotBackwardStart(const at::RecordFunction& fn) {
    WithSlot<S>([&](Tracer* t) { t->OnBackwardStart(fn); });
    return nullptr;
  }
  template <int S>
  static void SlotBackwardEnd(const at::RecordFunction&, at::ObserverContext*) {
    WithSlot<S>([](Tracer* t) { t->OnBackwardEnd(); });
  }
  template <int... S>
  static std::array<SlotCallbacks, kSlots> MakeCallbackTable(std::integer_sequence<int, S...>) {
    return {
        SlotCallbacks{&SlotStart<S>, &SlotBackwardStart<S>, &SlotEnd<S>, &SlotBackwardEnd<S>}...};
  }
};

}  // namespace trainlab::profiling_internal

#endif  // TRAINLAB_CORE_PROFILING_INTERNAL_SLOT_TABLE_H_
