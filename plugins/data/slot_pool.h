// The loader's batch memory, reused: slots of a (B, 3, 32, 32) float tensor and a (B) int64
// tensor, allocated up front (pinned when asked, by the thread that builds the loader, so that
// workers never call CUDA). A slot goes back to the pool when its lease is destroyed: the loader
// ties the lease to the batch's tensors, so a batch may be held as long as the caller likes, and
// a slot is never lost to an error between taking it and handing out the batch.
//
// Example:
//   auto pool = std::make_shared<SlotPool>(/*batch_size=*/128);
//   pool->AddSlots(4, /*pinned=*/false, nullptr);
//   auto lease = std::make_shared<SlotLease>(pool, pool->Acquire());   // back when destroyed
#ifndef TRAINLAB_PLUGINS_DATA_SLOT_POOL_H_
#define TRAINLAB_PLUGINS_DATA_SLOT_POOL_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "plugins/data/copy_fence.h"

namespace trainlab::data {

class SlotPool {
 public:
  struct Slot {
    int index = -1;
    float* images = nullptr;
    int64_t* labels = nullptr;
    CopyFence* fence = nullptr;  // owned by the pool; null when the slot is not fenced
  };

  explicit SlotPool(int64_t batch_size) : batch_size_(batch_size) {}

  // Adds `n` free slots; `fence` (may be empty) makes each slot's fence.
  void AddSlots(int64_t n, bool pinned, const std::function<std::unique_ptr<CopyFence>()>& fence);
  // A free slot, or a new unpinned one when the consumer holds them all (never blocks on the
  // consumer); a fenced slot first waits for the copy out of it queued before its release.
  Slot Acquire();
  // Records the slot's fence (the copy out of it queued so far), then frees it.
  void Release(const Slot& slot);
  // Slots allocated on the fly because every pooled one was held.
  int64_t overflow() const;
  int64_t free_slots() const;

 private:
  int AddSlotLocked(bool pinned, std::unique_ptr<CopyFence> fence);

  const int64_t batch_size_;
  mutable std::mutex mu_;
  std::vector<at::Tensor> images_, labels_;
  std::vector<std::unique_ptr<CopyFence>> fences_;  // per slot; null for unfenced slots
  std::vector<int> free_;
  int64_t overflow_ = 0;
};

// Holds a slot; returns it to its pool when destroyed.
class SlotLease {
 public:
  SlotLease(std::shared_ptr<SlotPool> pool, SlotPool::Slot slot)
      : pool_(std::move(pool)), slot_(slot) {}
  ~SlotLease() { pool_->Release(slot_); }
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;
  const SlotPool::Slot& slot() const { return slot_; }

 private:
  std::shared_ptr<SlotPool> pool_;
  SlotPool::Slot slot_;
};

}  // namespace trainlab::data

#endif  // TRAINLAB_PLUGINS_DATA_SLOT_POOL_H_
