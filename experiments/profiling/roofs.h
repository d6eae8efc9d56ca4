// The profile's roofs: what this machine measurably reaches (core/roofline.h: a matrix multiply
// and a 3x3 convolution per dtype, a streaming triad's bandwidth), sized for the device, the
// float32 peak a CPU's /proc/cpuinfo implies, and one row of the profile set against them.
// profile.cc measures once, before the strategies run; the summary keeps the figures
// (profile_summary.h).
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(const MeasuredRoofs roofs, MeasureRoofs(device, /*bf16=*/false));
//   const ProfilePeak peak = TheoreticalPeak(device);
//   PrintRoofs(roofs, peak);
//   summary.roofs = SummaryRoofs(roofs, peak);
#ifndef TRAINLAB_EXPERIMENTS_PROFILING_ROOFS_H_
#define TRAINLAB_EXPERIMENTS_PROFILING_ROOFS_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/op_costs.h"
#include "experiments/profiling/profile_summary.h"

namespace trainlab::experiments {

// "float32", "bfloat16", "float16", "float64", or LibTorch's name.
std::string ProfileDtypeName(c10::ScalarType t);

struct MeasuredRoofs {
  double matmul_fp32 = 0, conv_fp32 = 0, matmul_bf16 = 0, conv_bf16 = 0, bytes_per_s = 0;
  std::string bf16_problem;  // why bfloat16 was not measured, when it was asked for
  int64_t matmul_n = 0, triad_elements = 0;

  // The compute roof of a dtype: the higher of the matrix multiply's and the convolution's (on
  // Debian's LibTorch a float32 at::mm goes to the reference BLAS, 40x below oneDNN: roofline.h).
  double Compute(c10::ScalarType t) const;
};

// float32's roofs, and bfloat16's when `bf16` (where it cannot be measured, bf16_problem says
// why: not an error).
absl::StatusOr<MeasuredRoofs> MeasureRoofs(c10::Device device, bool bf16);

// The float32 peak where /proc/cpuinfo lets one derive it, with how; on a GPU, unknown.
ProfilePeak TheoreticalPeak(c10::Device device);

void PrintRoofs(const MeasuredRoofs& r, const ProfilePeak& peak);

// The roofs as the summary keeps them.
ProfileRoofs SummaryRoofs(const MeasuredRoofs& r, const ProfilePeak& peak);

// One row of `strategy` (a layer's pass, the backward no layer owns, the optimizer step): its
// rates, and how far it is from the roof that bounds it.
ProfileLayerRow RowAgainstRoofs(const std::string& strategy, const std::string& name,
                                const std::string& op, const std::string& pass,
                                c10::ScalarType dtype, double seconds, const OpCost& cost,
                                const MeasuredRoofs& roofs);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_PROFILING_ROOFS_H_
