// Clocks for the training loop, and the device synchronisation that must precede a clock read.
//
// A CUDA kernel launch returns before the kernel runs, so a host clock read after a launch
// measures the launch, not the work. `SyncAndNow(device)` waits for the device first; on the CPU
// it is just `Clock::now()`.
//
// Example:
//   auto t0 = trainlab::Clock::now();
//   RunStep();
//   double train_s = trainlab::Seconds(trainlab::SyncAndNow(device) - t0);
#ifndef TRAINLAB_CORE_TIMER_H_
#define TRAINLAB_CORE_TIMER_H_

#include <c10/core/Device.h>
#include <torch/cuda.h>

#include <chrono>

namespace trainlab {

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Waits until all work queued on `device` has finished (no-op on the CPU).
inline void SyncDevice(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

// The time after all queued device work has finished.
inline Clock::time_point SyncAndNow(const c10::Device& device) {
  SyncDevice(device);
  return Clock::now();
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_TIMER_H_
