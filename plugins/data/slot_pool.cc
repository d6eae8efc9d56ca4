#include "plugins/data/slot_pool.h"

#include <ATen/ATen.h>

#include "plugins/data/dataset.h"

namespace trainlab::data {

void SlotPool::AddSlots(int64_t n, bool pinned,
                        const std::function<std::unique_ptr<CopyFence>()>& fence) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t i = 0; i < n; ++i) free_.push_back(AddSlotLocked(pinned, fence ? fence() : nullptr));
}

int SlotPool::AddSlotLocked(bool pinned, std::unique_ptr<CopyFence> fence) {
  auto opts = at::TensorOptions().pinned_memory(pinned);
  images_.push_back(at::empty({batch_size_, kChannels, kHeight, kWidth}, opts.dtype(at::kFloat)));
  labels_.push_back(at::empty({batch_size_}, opts.dtype(at::kLong)));
  fences_.push_back(std::move(fence));
  return static_cast<int>(images_.size()) - 1;
}

SlotPool::Slot SlotPool::Acquire() {
  Slot slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int s;
    if (!free_.empty()) {
      s = free_.back();
      free_.pop_back();
    } else {
      ++overflow_;
      s = AddSlotLocked(/*pinned=*/false, nullptr);
    }
    slot = {s, images_[s].data_ptr<float>(), labels_[s].data_ptr<int64_t>(), fences_[s].get()};
  }
  if (slot.fence != nullptr) {
    try {
      slot.fence->Wait();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      free_.push_back(slot.index);  // not lost: the caller gets the error, the pool its slot
      throw;
    }
  }
  return slot;
}

void SlotPool::Release(const Slot& slot) {
  // Recorded before the slot is free: no worker can take it between the two.
  if (slot.fence != nullptr) slot.fence->Record();
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(slot.index);
}

int64_t SlotPool::overflow() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overflow_;
}

int64_t SlotPool::free_slots() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(free_.size());
}

}  // namespace trainlab::data
