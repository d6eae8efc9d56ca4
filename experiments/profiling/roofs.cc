// The profile's roofs (roofs.h): each measured once, best of 3 after a warm-up, at sizes past the
// caches, and each row of the profile set against the roof of its dtype.
#include "experiments/profiling/roofs.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/host.h"
#include "core/roofline.h"
#include "core/status_macros.h"
#include "plugins/compile/conv_matmul.h"

namespace trainlab::experiments {

std::string ProfileDtypeName(c10::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "float32";
    case at::kBFloat16:
      return "bfloat16";
    case at::kHalf:
      return "float16";
    case at::kDouble:
      return "float64";
    default:
      return c10::toString(t);
  }
}

double MeasuredRoofs::Compute(c10::ScalarType t) const {
  return t == at::kBFloat16 || t == at::kHalf ? std::max(matmul_bf16, conv_bf16)
                                              : std::max(matmul_fp32, conv_fp32);
}

absl::StatusOr<MeasuredRoofs> MeasureRoofs(c10::Device device, bool bf16) {
  MeasuredRoofs r;
  // Sizes past the caches (a GPU's too), each repeat bounded: about a second in all on a CPU.
  const RoofOptions o{.device = device,
                      .matmul_n = device.is_cuda() ? 8192 : 512,
                      .triad_elements = device.is_cuda() ? int64_t{256} << 20 : int64_t{32} << 20,
                      .repeats = 3,
                      .budget_s = 2};
  r.matmul_n = o.matmul_n;
  r.triad_elements = o.triad_elements;
  TRAINLAB_ASSIGN_OR_RETURN(r.matmul_fp32, MeasureMatmulFlops(o, at::kFloat));
  // On a CPU, oneDNN's matmul as well (what conv_autotune's matrix multiplies run on): the
  // matrix multiply roof is the faster of the two.
  RoofOptions onednn = o;
  onednn.matmul = [](at::Tensor& c, const at::Tensor& a, const at::Tensor& b) {
    c = compile::MatMul(a, b);
  };
  if (device.is_cpu()) {
    TRAINLAB_ASSIGN_OR_RETURN(const double fp32, MeasureMatmulFlops(onednn, at::kFloat));
    r.matmul_fp32 = std::max(r.matmul_fp32, fp32);
  }
  TRAINLAB_ASSIGN_OR_RETURN(r.conv_fp32, MeasureConvFlops(o, at::kFloat));
  TRAINLAB_ASSIGN_OR_RETURN(r.bytes_per_s, MeasureTriadBandwidth(o));
  if (bf16) {
    absl::StatusOr<double> mm = MeasureMatmulFlops(o, at::kBFloat16);
    // oneDNN's bfloat16 matmul only where it has a kernel (else MatMul emulates it in float32).
    if (mm.ok() && device.is_cpu() && compile::FastMatMul(at::kBFloat16)) {
      absl::StatusOr<double> onednn_mm = MeasureMatmulFlops(onednn, at::kBFloat16);
      if (onednn_mm.ok()) mm = std::max(*mm, *onednn_mm);
    }
    absl::StatusOr<double> conv = MeasureConvFlops(o, at::kBFloat16);
    if (mm.ok() && conv.ok()) {
      r.matmul_bf16 = *mm;
      r.conv_bf16 = *conv;
    } else {  // oneDNN without bf16 kernels (limited below avx512_core): named, not fatal
      r.bf16_problem = std::string((mm.ok() ? conv : mm).status().message());
    }
  }
  return r;
}

ProfilePeak TheoreticalPeak(c10::Device device) {
  if (!device.is_cpu()) {
    return {.how =
                "unknown: not derived for a GPU here (its FLOPs per clock per SM are not in "
                "cudaDeviceProp); the measured roofs stand"};
  }
  const double mhz = std::atof(CpuInfoField("cpu MHz").value_or("0").c_str());
  const std::string flags = " " + CpuInfoField("flags").value_or("") + " ";
  if (mhz <= 0 || flags.size() <= 2) {
    return {.how = "unknown: /proc/cpuinfo has no clock or flags"};
  }
  auto has = [&](const char* f) { return flags.find(absl::StrCat(" ", f, " ")) != flags.npos; };
  const bool fma = has("fma");
  const int lanes = has("avx512f") ? 16 : has("avx2") || has("avx") ? 8 : 4;
  const int per_cycle = lanes * 2 * (fma ? 2 : 1);  // two vector units; an FMA is 2 FLOPs
  const int threads = at::get_num_threads();
  return {.flops_per_s = threads * mhz * 1e6 * per_cycle,
          .how = absl::StrFormat(
              "%d threads x %.0f MHz x %d FLOP/cycle (%d float32 lanes%s, two vector units "
              "per core assumed): an upper bound, not a measurement: vCPUs that are "
              "hyper-threads share one core's units, and wide vector code may run below "
              "the nominal clock",
              threads, mhz, per_cycle, lanes, fma ? ", FMA" : "")};
}

void PrintRoofs(const MeasuredRoofs& r, const ProfilePeak& peak) {
  std::printf("Roofs (measured here, best of 3 after a warm-up):\n");
  std::printf("- float32: matrix multiply (%" PRId64 "x%" PRId64
              "; the faster of at::mm and oneDNN's matmul on a CPU) %.1f GFLOP/s, 3x3 convolution "
              "%.1f GFLOP/s\n",
              r.matmul_n, r.matmul_n, r.matmul_fp32 / 1e9, r.conv_fp32 / 1e9);
  if (r.matmul_bf16 > 0) {
    std::printf("- bfloat16: matrix multiply %.1f GFLOP/s, 3x3 convolution %.1f GFLOP/s\n",
                r.matmul_bf16 / 1e9, r.conv_bf16 / 1e9);
  } else if (!r.bf16_problem.empty()) {
    std::printf("- bfloat16: not measured: %s\n", r.bf16_problem.c_str());
  }
  std::printf("- bandwidth (float32 triad over %" PRId64 " elements): %.1f GB/s\n",
              r.triad_elements, r.bytes_per_s / 1e9);
  if (peak.flops_per_s) {
    std::printf("- theoretical float32 peak: %.1f GFLOP/s (%s)\n", *peak.flops_per_s / 1e9,
                peak.how.c_str());
  } else {
    std::printf("- theoretical peak: %s\n", peak.how.c_str());
  }
  std::fflush(stdout);
}

ProfileRoofs SummaryRoofs(const MeasuredRoofs& r, const ProfilePeak& peak) {
  ProfileRoofs out{.flops_per_s = {.float32 = r.Compute(at::kFloat)},
                   .matmul_flops_per_s = {.float32 = r.matmul_fp32},
                   .conv_flops_per_s = {.float32 = r.conv_fp32},
                   .bytes_per_s = r.bytes_per_s,
                   .matmul_n = r.matmul_n,
                   .triad_elements = r.triad_elements,
                   .theoretical_peak = peak};
  if (r.matmul_bf16 > 0) {
    out.flops_per_s.bfloat16 = r.Compute(at::kBFloat16);
    out.matmul_flops_per_s.bfloat16 = r.matmul_bf16;
    out.conv_flops_per_s.bfloat16 = r.conv_bf16;
  }
  if (!r.bf16_problem.empty()) out.bfloat16_problem = r.bf16_problem;
  return out;
}

ProfileLayerRow RowAgainstRoofs(const std::string& strategy, const std::string& name,
                                const std::string& op, const std::string& pass,
                                c10::ScalarType dtype, double seconds, const OpCost& cost,
                                const MeasuredRoofs& roofs) {
  ProfileLayerRow row{.strategy = strategy,
                      .name = name,
                      .op = op,
                      .pass = pass,
                      .dtype = ProfileDtypeName(dtype),
                      .seconds = seconds,
                      .flops = cost.flops,
                      .bytes = cost.bytes};
  const double compute = roofs.Compute(dtype);
  if (cost.bytes > 0) row.intensity = cost.flops / cost.bytes;
  row.flops_per_s = seconds > 0 ? cost.flops / seconds : 0.0;
  row.bytes_per_s = seconds > 0 ? cost.bytes / seconds : 0.0;
  if (seconds > 0 && cost.flops > 0 && cost.bytes > 0 && compute > 0) {
    const RoofBound b = BoundAt(cost.flops / cost.bytes, compute, roofs.bytes_per_s);
    row.roof_fraction = cost.flops / seconds / b.attainable_flops_per_s;
    row.bound = b.memory_bound ? "memory" : "compute";
  } else if (seconds > 0 && cost.bytes > 0 && roofs.bytes_per_s > 0) {  // a copy: no arithmetic
    row.roof_fraction = cost.bytes / seconds / roofs.bytes_per_s;
    row.bound = "memory";
  }  // else no roof applies: roof_fraction null, bound ""
  return row;
}

}  // namespace trainlab::experiments
