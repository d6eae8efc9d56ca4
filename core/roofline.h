// The machine's measured roofs: how many FLOP/s a large matrix multiply reaches, per dtype, and
// how many bytes/s a large streaming triad moves, on the device and thread count a run uses.
// Each is the best of a few timed repeats after a warm-up, bounded in time: a roof is what this
// machine demonstrably does, not a datasheet's number (PeakFlopsFromCpuInfo derives the
// datasheet kind where it can).
//
// The matrix multiply is at::mm of two n x n matrices (2 n^3 FLOPs: MKL or oneDNN on the CPU,
// cuBLAS on a GPU); the triad is a = b + s c over float32 vectors far larger than the last-level
// cache (3 x 4 bytes per element: two reads and a write; a write-allocate cache really moves a
// fourth stream, so the figure is the useful bandwidth STREAM reports).
//
// Example:
//   RoofOptions o{.device = torch::kCPU};
//   absl::StatusOr<double> fp32 = MeasureMatmulFlops(o, at::kFloat);
//   absl::StatusOr<double> bw = MeasureTriadBandwidth(o);
#ifndef TRAINLAB_CORE_ROOFLINE_H_
#define TRAINLAB_CORE_ROOFLINE_H_

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/timer.h"

namespace trainlab {

struct RoofOptions {
  c10::Device device = c10::kCPU;
  int64_t matmul_n = 2048;            // n of the n x n matrix multiply
  int64_t triad_elements = 32 << 20;  // 128 MiB per float32 vector
  int repeats = 5;                    // the best of these, after one warm-up
  double budget_s = 10;               // stop repeating after this long (at least one repeat)
  // The matrix multiply to time, c = a x b; null: at::mm_out. (The profile times oneDNN's matmul
  // this way too: Debian's at::mm is the reference BLAS.)
  std::function<void(at::Tensor& c, const at::Tensor& a, const at::Tensor& b)> matmul;
};

namespace roofline_detail {
// The best (shortest) time of fn() over the repeats, after one warm-up call.
template <class F>
double BestSeconds(const RoofOptions& o, F&& fn) {
  fn();
  SyncDevice(o.device);
  const Clock::time_point begin = Clock::now();
  double best = 0;
  for (int i = 0; i < std::max(o.repeats, 1); ++i) {
    const Clock::time_point t0 = Clock::now();
    fn();
    const double s = Seconds(SyncAndNow(o.device) - t0);
    best = i == 0 ? s : std::min(best, s);
    if (Seconds(Clock::now() - begin) > o.budget_s) break;
  }
  return best;
}
}  // namespace roofline_detail

// FLOP/s of an n x n matrix multiply in `dtype` (float32, bfloat16, float16).
inline absl::StatusOr<double> MeasureMatmulFlops(const RoofOptions& o, at::ScalarType dtype) {
  if (o.matmul_n < 1) return absl::InvalidArgumentError("roofline: matmul_n must be at least 1");
  try {
    at::TensorOptions t = at::TensorOptions().device(o.device).dtype(dtype);
    at::Tensor a = at::randn({o.matmul_n, o.matmul_n}, t),
               b = at::randn({o.matmul_n, o.matmul_n}, t);
    at::Tensor c = at::empty({o.matmul_n, o.matmul_n}, t);
    const double s = roofline_detail::BestSeconds(o, [&] {
      if (o.matmul) {
        o.matmul(c, a, b);
      } else {
        at::mm_out(c, a, b);
      }
    });
    const double n = static_cast<double>(o.matmul_n);
    return 2 * n * n * n / s;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("roofline: matrix multiply in ", c10::toString(dtype),
                                            " on ", o.device.str(), ": ", e.what()));
  }
}

// FLOP/s of a 3x3 convolution in `dtype` (ResNet-18's layer3 shape: 256 -> 256 channels at 8x8,
// padding 1, batch `batch`): the compute roof through the engine convolutions use (oneDNN on the
// CPU, cuDNN on a GPU). It need not be the matrix multiply's: Debian's LibTorch sends a float32
// at::mm to the system BLAS, the netlib reference BLAS unless OpenBLAS is installed, measured
// 40x below oneDNN's convolution on the same cores (docs/profile.md). The profile's compute roof
// for a dtype is the higher of the two.
inline absl::StatusOr<double> MeasureConvFlops(const RoofOptions& o, at::ScalarType dtype,
                                               int64_t batch = 32) {
  if (batch < 1) return absl::InvalidArgumentError("roofline: batch must be at least 1");
  try {
    at::TensorOptions t = at::TensorOptions().device(o.device).dtype(dtype);
    at::Tensor x = at::randn({batch, 256, 8, 8}, t), w = at::randn({256, 256, 3, 3}, t);
    at::Tensor y;
    const double s = roofline_detail::BestSeconds(o, [&] { y = at::conv2d(x, w, {}, 1, 1); });
    return 2.0 * static_cast<double>(batch) * 256 * 8 * 8 * 256 * 9 / s;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("roofline: convolution in ", c10::toString(dtype),
                                            " on ", o.device.str(), ": ", e.what()));
  }
}

// Bytes/s of the triad a = b + 3 c over float32 vectors (12 bytes per element).
inline absl::StatusOr<double> MeasureTriadBandwidth(const RoofOptions& o) {
  if (o.triad_elements < 1) {
    return absl::InvalidArgumentError("roofline: triad_elements must be at least 1");
  }
  try {
    at::TensorOptions t = at::TensorOptions().device(o.device).dtype(at::kFloat);
    at::Tensor a = at::empty({o.triad_elements}, t), b = at::rand({o.triad_elements}, t),
               c = at::rand({o.triad_elements}, t);
    const double s = roofline_detail::BestSeconds(o, [&] { at::add_out(a, b, c, 3.0); });
    return 12.0 * static_cast<double>(o.triad_elements) / s;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("roofline: triad on ", o.device.str(), ": ", e.what()));
  }
}

// Which roof bounds an op of arithmetic intensity `flops_per_byte`: the attainable rate
// min(peak, intensity x bandwidth), and whether it is the bandwidth's.
struct RoofBound {
  double attainable_flops_per_s = 0;
  bool memory_bound = false;
};
inline RoofBound BoundAt(double flops_per_byte, double peak_flops_per_s, double bytes_per_s) {
  const double memory = flops_per_byte * bytes_per_s;
  return memory < peak_flops_per_s ? RoofBound{memory, true} : RoofBound{peak_flops_per_s, false};
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_ROOFLINE_H_
