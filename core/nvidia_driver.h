// Whether this machine has an NVIDIA GPU, asked of its driver without linking CUDA: the kernel
// module's /proc/driver/nvidia (its version, one folder per GPU), and the driver's library
// libcuda.so.1 loaded with dlopen (cuDriverGetVersion, cuInit, cuDeviceGetCount). ChooseDevice
// (core/device.h) asks it only when LibTorch cannot use CUDA, so that a GPU machine whose
// LibTorch is a CPU build, or was built for a newer CUDA than the driver runs, never trains on
// its CPU by accident.
//
// Tests point it elsewhere: TRAINLAB_LIBCUDA names the driver library to load instead of
// libcuda.so.1 (tests/fake_cuda_driver: a stand-in that reports a GPU and an old driver), and
// TRAINLAB_NVIDIA_PROC the folder to read instead of /proc/driver/nvidia.
//
// Example:
//   const NvidiaDriver d = ProbeNvidiaDriver(DriverPathsFromEnvironment());
//   if (d.HasGpu()) ... d.cuda_version (12020: the newest CUDA the driver runs), d.version
#ifndef TRAINLAB_CORE_NVIDIA_DRIVER_H_
#define TRAINLAB_CORE_NVIDIA_DRIVER_H_

#include <dlfcn.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace trainlab {

struct DriverPaths {
  std::string libcuda = "libcuda.so.1";      // a name for the loader's search, or a path
  std::string proc = "/proc/driver/nvidia";  // the kernel module's folder
};

// DriverPaths, with TRAINLAB_LIBCUDA and TRAINLAB_NVIDIA_PROC where set.
inline DriverPaths DriverPathsFromEnvironment() {
  DriverPaths p;
  if (const char* lib = std::getenv("TRAINLAB_LIBCUDA"); lib != nullptr && *lib != '\0') {
    p.libcuda = lib;
  }
  if (const char* proc = std::getenv("TRAINLAB_NVIDIA_PROC"); proc != nullptr && *proc != '\0') {
    p.proc = proc;
  }
  return p;
}

struct NvidiaDriver {
  // The kernel module: loaded (its version file is there), its version ("535.104.05"), and the
  // GPUs it drives (folders under gpus/).
  bool module_loaded = false;
  std::string version;
  int module_gpus = 0;
  // The driver's library: loaded, the newest CUDA it runs (cuDriverGetVersion: 12020 is 12.2;
  // 0 when unknown), and the devices it counts (-1 when it could not be asked).
  bool library_loaded = false;
  int cuda_version = 0;
  int devices = -1;
  std::string library_problem;  // why the library could not be loaded or asked, or empty

  // A GPU is there: the library counts one, or (when it cannot be asked) the module drives one.
  bool HasGpu() const { return devices > 0 || (devices < 0 && module_gpus > 0); }
  int GpuCount() const { return devices > 0 ? devices : module_gpus; }
};

// "12.2" for 12020 (CUDA's encoding: 1000 * major + 10 * minor).
inline std::string CudaVersionName(int v) { return absl::StrCat(v / 1000, ".", (v % 1000) / 10); }

namespace nvidia_driver_internal {

// The version in the module's version line ("NVRM version: NVIDIA UNIX x86_64 Kernel Module
// 535.104.05  Sat Aug 19 ..."; the open module says "Open Kernel Module for x86_64"): the first
// word of digits and dots with a dot in it, or empty.
inline std::string ModuleVersion(const std::string& line) {
  std::istringstream words(line);
  std::string w;
  while (words >> w) {
    if (w.find('.') == std::string::npos || !std::isdigit(static_cast<unsigned char>(w[0]))) {
      continue;
    }
    bool dotted = true;
    for (char ch : w)
      dotted = dotted && (std::isdigit(static_cast<unsigned char>(ch)) || ch == '.');
    if (dotted) return w;
  }
  return "";
}

// The driver API's functions this probe calls (CUresult is an int; CUDA_SUCCESS is 0).
using CuInit = int (*)(unsigned int);
using CuDriverGetVersion = int (*)(int*);
using CuDeviceGetCount = int (*)(int*);
using CuGetErrorString = int (*)(int, const char**);

inline std::string ErrorName(void* lib, int code) {
  const char* text = nullptr;
  auto name = reinterpret_cast<CuGetErrorString>(dlsym(lib, "cuGetErrorString"));
  if (name != nullptr && name(code, &text) == 0 && text != nullptr) {
    return absl::StrCat(text, " (", code, ")");
  }
  return absl::StrCat("error ", code);
}

}  // namespace nvidia_driver_internal

inline NvidiaDriver ProbeNvidiaDriver(const DriverPaths& paths) {
  namespace internal = nvidia_driver_internal;
  NvidiaDriver d;
  std::error_code ec;
  if (std::ifstream version(paths.proc + "/version"); version) {
    d.module_loaded = true;
    std::string line;
    std::getline(version, line);
    d.version = internal::ModuleVersion(line);
    for (const auto& gpu : std::filesystem::directory_iterator(paths.proc + "/gpus", ec)) {
      if (gpu.is_directory(ec)) ++d.module_gpus;
    }
  }
  // RTLD_LOCAL: nothing of the library's is seen by LibTorch's own loading of it. It stays
  // loaded (a driver library is not meant to be unloaded).
  void* lib = dlopen(paths.libcuda.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();
    d.library_problem = absl::StrCat(paths.libcuda, " cannot be loaded: ", why ? why : "?");
    return d;
  }
  d.library_loaded = true;
  auto get_version =
      reinterpret_cast<internal::CuDriverGetVersion>(dlsym(lib, "cuDriverGetVersion"));
  auto init = reinterpret_cast<internal::CuInit>(dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<internal::CuDeviceGetCount>(dlsym(lib, "cuDeviceGetCount"));
  if (get_version == nullptr || init == nullptr || count == nullptr) {
    d.library_problem = absl::StrCat(paths.libcuda, " lacks the driver API's functions");
    return d;
  }
  if (int v = 0; get_version(&v) == 0) d.cuda_version = v;
  if (const int r = init(0); r != 0) {
    // 100, CUDA_ERROR_NO_DEVICE: the library is installed, and there is no GPU.
    if (r == 100) {
      d.devices = 0;
    } else {
      d.library_problem = absl::StrCat("cuInit: ", internal::ErrorName(lib, r));
    }
    return d;
  }
  if (int n = 0; count(&n) == 0) {
    d.devices = n;
  } else {
    d.library_problem = "cuDeviceGetCount failed";
  }
  return d;
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_NVIDIA_DRIVER_H_
