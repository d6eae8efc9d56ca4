// The device a binary trains on, from its --device flag: one rule for every binary (the
// experiments' session, the benchmarks).
//   auto: CUDA when LibTorch can use it (and it is not disabled), else the CPU
//   cpu:  the CPU
//   cuda: a CUDA device, or an error when there is none
// Data-parallel, `local_rank` picks this rank's GPU (torchrun's one process per GPU).
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(c10::Device d, ChooseDevice("auto"));  // cuda:0 or cpu
#ifndef TRAINLAB_CORE_DEVICE_H_
#define TRAINLAB_CORE_DEVICE_H_

#include <c10/core/Device.h>
#include <torch/cuda.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace trainlab {

inline absl::StatusOr<c10::Device> ChooseDevice(std::string_view flag, bool disable_cuda = false,
                                                int local_rank = 0) {
  const std::string want(flag);
  if (want != "auto" && want != "cpu" && want != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--device=", want, ": unknown device (auto, cpu or cuda)"));
  }
  const bool cuda = torch::cuda::is_available();
  if (want == "cuda" && !cuda) {
    return absl::FailedPreconditionError("--device=cuda: no CUDA device is available");
  }
  if (!(want == "cuda" || (want == "auto" && cuda && !disable_cuda))) return c10::Device(c10::kCPU);
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (local_rank >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("LOCAL_RANK=", local_rank, ": this machine has ", count,
                     " CUDA device(s); run at most one rank per GPU (--nproc_per_node=", count,
                     ") or pass --device=cpu"));
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

// The devices this process can train on: the CPU, and CUDA device 0 when LibTorch can use it and
// it is not disabled (C5 compares them).
inline std::vector<c10::Device> AvailableDevices(bool disable_cuda) {
  std::vector<c10::Device> devices = {c10::Device(c10::kCPU)};
  if (torch::cuda::is_available() && !disable_cuda) devices.emplace_back(c10::kCUDA, 0);
  return devices;
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_DEVICE_H_
