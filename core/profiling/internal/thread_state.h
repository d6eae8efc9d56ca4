// Per-thread state of the op tracer (core/profiling/layer_tracer.h). A recording's callbacks run
// on the thread that records and on the threads that work for it (the autograd engine's device
// thread), each in the middle of its own nesting of ops, autograd nodes and engine wrappers; the
// tracer keeps one ThreadState per thread, under its lock, and kNoMark where a mark is missing.
#ifndef TRAINLAB_CORE_PROFILING_INTERNAL_THREAD_STATE_H_
#define TRAINLAB_CORE_PROFILING_INTERNAL_THREAD_STATE_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace trainlab::profiling_internal {

// No mark on the timeline (none made yet, or the timeline could not make one).
inline constexpr size_t kNoMark = static_cast<size_t>(-1);

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

}  // namespace trainlab::profiling_internal

#endif  // TRAINLAB_CORE_PROFILING_INTERNAL_THREAD_STATE_H_
