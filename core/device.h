// The device a binary trains on, from its --device flag: one rule for every binary (the
// experiments' session, the benchmarks).
//   auto: CUDA when LibTorch can use it (and it is not disabled), else the CPU; but never the
//         CPU of a machine with an NVIDIA GPU that LibTorch cannot use (a CPU build of LibTorch,
//         or one built for a newer CUDA than the driver runs): that is an error naming the
//         driver's CUDA, the build's and the fixes (docs/gpu.md). A machine with no NVIDIA GPU
//         trains on its CPU without a word.
//   cpu:  the CPU
//   cuda: a CUDA device, or an error when there is none (naming the same, when a GPU is there)
// Data-parallel, `local_rank` picks this rank's GPU (torchrun's one process per GPU).
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(c10::Device d, ChooseDevice("auto"));  // cuda:0 or cpu
#ifndef TRAINLAB_CORE_DEVICE_H_
#define TRAINLAB_CORE_DEVICE_H_

#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/Device.h>
#include <torch/cuda.h>

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/nvidia_driver.h"

namespace trainlab {

// The CUDA version this LibTorch was built for (12080 for 12.8), or 0 for a CPU build. Asks
// LibTorch's CUDA hooks, which need no driver; a CPU build has none and throws.
inline int LibTorchCudaVersion() {
  try {
    return static_cast<int>(at::detail::getCUDAHooks().versionCUDART());
  } catch (const std::exception&) {
    return 0;
  }
}

// The oldest driver that runs a build for CUDA `major`.x (NVIDIA's minor-version compatibility;
// docs/gpu.md has the table), or empty.
inline std::string OldestDriverFor(int cuda_version) {
  switch (cuda_version / 1000) {
    case 11:
      return "450.80.02";
    case 12:
      return "525.60.13";
    case 13:
      return "580.65.06";
    default:
      return "";
  }
}

// Why LibTorch cannot use the GPU `driver` reports (HasGpu()), as the one line `--device=FLAG`
// fails with: the driver's CUDA, the build's, and the ways out. `torch_cuda`:
// LibTorchCudaVersion().
inline absl::Status UnusableGpu(const std::string& flag, const NvidiaDriver& driver,
                                int torch_cuda) {
  const int n = driver.GpuCount();
  std::string gpu = absl::StrCat("this machine has ", n, " NVIDIA GPU", n == 1 ? "" : "s");
  std::string about;
  if (!driver.version.empty()) about = absl::StrCat("driver ", driver.version);
  if (driver.cuda_version > 0) {
    absl::StrAppend(&about, about.empty() ? "" : ", ", "runs CUDA up to ",
                    CudaVersionName(driver.cuda_version));
  }
  if (!about.empty()) absl::StrAppend(&gpu, " (", about, ")");
  std::string why;
  std::string fix;
  const std::string cpu = "or pass --device=cpu to train on the CPU on purpose (docs/gpu.md)";
  const std::string newest =
      driver.cuda_version > 0
          ? absl::StrCat(" for CUDA ", CudaVersionName(driver.cuda_version), " or older")
          : "";
  if (torch_cuda == 0) {
    why = "this LibTorch is a CPU build";
    fix = absl::StrCat("build with --config=cuda against a torch", newest,
                       " (TRAINLAB_TORCH_VERSION=python: this machine's own torch; or "
                       "LIBTORCH_HOME=a CUDA LibTorch), ",
                       cpu);
  } else if (!driver.library_loaded || !driver.library_problem.empty()) {
    why = absl::StrCat("this LibTorch (CUDA ", CudaVersionName(torch_cuda),
                       ") cannot reach it: ", driver.library_problem);
    fix = absl::StrCat(
        "make the driver's library loadable (in a container: start it with the "
        "GPU, e.g. docker run --gpus all), ",
        cpu);
  } else if (driver.cuda_version > 0 && driver.cuda_version < torch_cuda) {
    const std::string oldest = OldestDriverFor(torch_cuda);
    why = absl::StrCat(
        "this LibTorch was built for CUDA ", CudaVersionName(torch_cuda),
        oldest.empty() ? "" : absl::StrCat(", which needs driver ", oldest, " or newer"));
    fix = absl::StrCat("update the driver, or build against a torch", newest,
                       " (TRAINLAB_TORCH_VERSION=python: this machine's own torch; or "
                       "LIBTORCH_HOME=an official LibTorch for that CUDA), ",
                       cpu);
  } else {
    why = absl::StrCat("this LibTorch (CUDA ", CudaVersionName(torch_cuda),
                       ") finds no usable CUDA device (torch::cuda::is_available() is false)");
    fix = absl::StrCat("check nvidia-smi and LibTorch's warning above, ", cpu);
  }
  return absl::FailedPreconditionError(
      absl::StrCat("--device=", flag, ": ", gpu, ", but ", why, ": ", fix));
}

inline absl::StatusOr<c10::Device> ChooseDevice(std::string_view flag, bool disable_cuda = false,
                                                int local_rank = 0) {
  const std::string want(flag);
  if (want != "auto" && want != "cpu" && want != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--device=", want, ": unknown device (auto, cpu or cuda)"));
  }
  const bool cuda = torch::cuda::is_available();
  if (!cuda && (want == "cuda" || (want == "auto" && !disable_cuda))) {
    // Only now is the driver asked (a machine LibTorch trains on the GPU of never asks it).
    const NvidiaDriver driver = ProbeNvidiaDriver(DriverPathsFromEnvironment());
    if (driver.HasGpu()) return UnusableGpu(want, driver, LibTorchCudaVersion());
    if (want == "cuda") {
      return absl::FailedPreconditionError("--device=cuda: no CUDA device is available");
    }
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
