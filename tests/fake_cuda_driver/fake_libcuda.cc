// A stand-in for libcuda.so.1, the NVIDIA driver's library (the CUDA driver API), for tests that
// show what trainlab does on a machine with an NVIDIA GPU its LibTorch cannot use, on a machine
// with no GPU. It exports the four functions core/nvidia_driver.h calls, with the driver API's C
// signatures (CUresult is an int; CUDA_SUCCESS is 0), and answers what the environment says:
//   FAKE_CUDA_INIT_RESULT     what cuInit returns (default 0; 100 is CUDA_ERROR_NO_DEVICE)
//   FAKE_CUDA_DRIVER_VERSION  the newest CUDA the driver runs (default 12020: CUDA 12.2, a
//                             535-series driver)
//   FAKE_CUDA_DEVICE_COUNT    the devices cuDeviceGetCount counts after cuInit (default 1)
//
// Example (a GPU behind a CUDA 11.4 driver; --device=auto then asks the driver why not CUDA):
//   export TRAINLAB_LIBCUDA=$PWD/bazel-bin/tests/fake_cuda_driver/libcuda_fake.so
//   FAKE_CUDA_DRIVER_VERSION=11040 bazel-bin/experiments/c2 --device=auto
#include <atomic>
#include <cstdlib>

namespace {

// The CUresult codes this library returns or names.
enum CuResult : int {
  kSuccess = 0,              // CUDA_SUCCESS
  kInvalidValue = 1,         // CUDA_ERROR_INVALID_VALUE
  kNotInitialized = 3,       // CUDA_ERROR_NOT_INITIALIZED
  kInsufficientDriver = 35,  // CUDA_ERROR_INSUFFICIENT_DRIVER
  kNoDevice = 100,           // CUDA_ERROR_NO_DEVICE
};

// Whether cuInit has succeeded: the driver API's other calls fail until it has.
std::atomic<bool> initialized{false};

// The integer in environment variable `name`, or `fallback` when it is unset or not a number.
int IntFromEnvironment(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return *end == '\0' ? static_cast<int>(value) : fallback;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int cuInit(unsigned int /*flags*/) {
  const int result = IntFromEnvironment("FAKE_CUDA_INIT_RESULT", kSuccess);
  if (result == kSuccess) initialized = true;
  return result;
}

__attribute__((visibility("default"))) int cuDriverGetVersion(int* version) {
  if (version == nullptr) return kInvalidValue;
  *version = IntFromEnvironment("FAKE_CUDA_DRIVER_VERSION", 12020);
  return kSuccess;
}

__attribute__((visibility("default"))) int cuDeviceGetCount(int* count) {
  if (!initialized) return kNotInitialized;
  if (count == nullptr) return kInvalidValue;
  *count = IntFromEnvironment("FAKE_CUDA_DEVICE_COUNT", 1);
  return kSuccess;
}

__attribute__((visibility("default"))) int cuGetErrorString(int error, const char** str) {
  if (str == nullptr) return kInvalidValue;
  switch (error) {
    case kSuccess:
      *str = "CUDA_SUCCESS";
      break;
    case kInvalidValue:
      *str = "CUDA_ERROR_INVALID_VALUE";
      break;
    case kNotInitialized:
      *str = "CUDA_ERROR_NOT_INITIALIZED";
      break;
    case kInsufficientDriver:
      *str = "CUDA_ERROR_INSUFFICIENT_DRIVER";
      break;
    case kNoDevice:
      *str = "CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected";
      break;
    default:
      *str = "unknown error";
      break;
  }
  return kSuccess;
}

}  // extern "C"
