// Keeps a pooled batch slot from being refilled while a device copy out of it may still be
// running (loader.h: pinned batches copied with non_blocking).
//
// Example:
//   std::unique_ptr<CopyFence> f = MakeCudaCopyFence(/*device=*/0);
//   f->Record();   // on the thread that frees the slot's last tensor
//   f->Wait();     // on the worker that takes the slot next, before it writes
#ifndef TRAINLAB_PLUGINS_DATA_COPY_FENCE_H_
#define TRAINLAB_PLUGINS_DATA_COPY_FENCE_H_

#include <memory>

namespace trainlab::data {

class CopyFence {
 public:
  virtual ~CopyFence() = default;
  virtual void Record() = 0;
  virtual void Wait() = 0;
};

// A CUDA event recorded on the current stream of `device` (-1: the current device), waited for
// before the slot is reused. It compiles and links in the CPU build (c10's device-generic API);
// made only for pinned slots, which the loader allows only with a CUDA device. Record() runs in a
// destructor, so it never throws: if recording fails, Wait() synchronizes the device instead.
std::unique_ptr<CopyFence> MakeCudaCopyFence(int device);

}  // namespace trainlab::data

#endif  // TRAINLAB_PLUGINS_DATA_COPY_FENCE_H_
