#include "plugins/data/copy_fence.h"

#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/cuda.h>

#include <chrono>
#include <exception>
#include <thread>

namespace trainlab::data {
namespace {

class CudaCopyFence final : public CopyFence {
 public:
  explicit CudaCopyFence(int device) : device_(device) {}
  void Record() override {
    try {
      const c10::impl::VirtualGuardImpl cuda(c10::DeviceType::CUDA);
      const c10::Device d =
          device_ >= 0 ? c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device_))
                       : cuda.getDevice();
      event_.record(cuda.getStream(d));
      sync_instead_ = false;
    } catch (const std::exception&) {
      sync_instead_ = true;
    }
  }
  void Wait() override {
    if (sync_instead_) {
      torch::cuda::synchronize(device_);
      return;
    }
    // c10::Event has no host-side wait in LibTorch 1.13; a copy of one batch takes microseconds
    // to a few milliseconds, so polling costs nothing measurable.
    while (!event_.query()) std::this_thread::sleep_for(std::chrono::microseconds(20));
  }

 private:
  int device_;
  c10::Event event_{c10::DeviceType::CUDA};
  bool sync_instead_ = false;
};

}  // namespace

std::unique_ptr<CopyFence> MakeCudaCopyFence(int device) {
  return std::make_unique<CudaCopyFence>(device);
}

}  // namespace trainlab::data
