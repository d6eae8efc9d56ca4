// What the profile keeps in its results file's "summary": the roofs it measured, each strategy's
// step, every layer's rows, the strategies it skipped and why. profile.cc fills it, the section
// (profile_report.cc) renders it, and this file's one codec stands between them and the file.
// No LibTorch here: the report links it. The JSON, with "?" for a key that may be absent:
//
//   summary  {"model"?, "optimizer"?, "device"?, "batch_size"?, "warmup_steps"?, "roofs"?,
//             "step": [step], "layers": [layer], "skipped": [{"strategy", "reason"}]}
//            (the first six together, or none: a data-parallel run only names what it skipped)
//   roofs    {"flops_per_s", "matmul_flops_per_s", "conv_flops_per_s": {"float32", "bfloat16"?},
//             "bytes_per_s", "matmul_n", "triad_elements", "bfloat16_problem"?,
//             "theoretical_peak": {"flops_per_s" (null: unknown), "how"}}
//   step     {"strategy", "dtype", "batch_size", "steps", "seconds", "seconds_min", "seconds_max",
//             "traced_seconds", "flops", "forward_flops_per_image", "step_flops_per_image",
//             "flops_per_s", "compute_roof_flops_per_s", "mfu", "layers", "parameters",
//             "timeline"?, and when the layers were timed: "rows_seconds"?, "coverage"?,
//             "coverage_of_instrumented"?, "overhead"?, "memory_bound_seconds"?,
//             "unattributed_backward_seconds"?, "host_rows_seconds"? (a device timeline)}
//   layer    {"strategy", "name", "op", "pass", "dtype", "seconds" (null: not timed), "flops",
//             "bytes", "intensity" (null: no bytes), "flops_per_s", "bytes_per_s",
//             "roof_fraction" (null: no roof applies), "bound", "host_seconds"?}
// Reading checks every field's type and names the one that is wrong, by its path.
//
// Example:
//   ProfileSummary s;
//   s.skipped.push_back({.strategy = "cuda_graph", .reason = "no CUDA device"});
//   result.summary = ToJson(s);
//   absl::StatusOr<ProfileSummary> back =
//       ProfileSummaryFromJson(JsonReader(result.summary, "summary"));  // == s
#ifndef TRAINLAB_EXPERIMENTS_PROFILING_PROFILE_SUMMARY_H_
#define TRAINLAB_EXPERIMENTS_PROFILING_PROFILE_SUMMARY_H_

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/results/json_reader.h"

namespace trainlab::experiments {

// A rate measured in float32 and, where bfloat16 was asked for and could be measured, bfloat16.
struct ProfileDtypeRates {
  double float32 = 0;
  std::optional<double> bfloat16;
  bool operator==(const ProfileDtypeRates&) const = default;
};

// The float32 peak derived from /proc/cpuinfo, or why there is none (a GPU, no clock or flags).
struct ProfilePeak {
  std::optional<double> flops_per_s;  // null in the JSON when unknown
  std::string how;
  bool operator==(const ProfilePeak&) const = default;
};

// The roofs measured on this machine before the strategies ran.
struct ProfileRoofs {
  ProfileDtypeRates flops_per_s;         // per dtype, the higher of the two below
  ProfileDtypeRates matmul_flops_per_s;  // an n x n matrix multiply
  ProfileDtypeRates conv_flops_per_s;    // a 3x3 convolution
  double bytes_per_s = 0;                // the float32 triad's bandwidth
  int64_t matmul_n = 0;
  int64_t triad_elements = 0;
  ProfilePeak theoretical_peak;
  std::optional<std::string> bfloat16_problem;  // why bfloat16 was asked for and not measured
  bool operator==(const ProfileRoofs&) const = default;
};

// One strategy's step: the plain steps' median and spread, the instrumented steps', and the sums
// of its rows. The optional figures are there only when the layers were timed.
struct ProfileStepRow {
  std::string strategy;
  std::string dtype;  // of the step's arithmetic: "float32", or the autocast's
  int64_t batch_size = 0;
  int64_t steps = 0;                                     // timed each way
  double seconds = 0, seconds_min = 0, seconds_max = 0;  // the plain steps
  double traced_seconds = 0;                             // the instrumented steps' median
  double flops = 0;                                      // the rows' sum
  double forward_flops_per_image = 0, step_flops_per_image = 0;
  double flops_per_s = 0, compute_roof_flops_per_s = 0, mfu = 0;
  int64_t layers = 0;  // the layers traced
  int64_t parameters = 0;
  std::optional<std::string> timeline;  // what timed the layers ("host clock", "none", ...)
  std::optional<double> rows_seconds;
  std::optional<double> coverage;                  // the rows' share of the plain step
  std::optional<double> coverage_of_instrumented;  // ... and of the instrumented one
  std::optional<double> overhead;                  // instrumented over plain, less 1
  std::optional<double> memory_bound_seconds;
  std::optional<double> unattributed_backward_seconds;
  std::optional<double> host_rows_seconds;  // on a device timeline: the host's time to issue
  bool operator==(const ProfileStepRow&) const = default;
};

// One row of a strategy: a layer's forward or backward, the backward no layer owns, or the
// optimizer step.
struct ProfileLayerRow {
  std::string strategy;
  std::string name;  // the module, "autograd (no layer)", or the optimizer
  std::string op;
  std::string pass;  // "forward", "backward" or "optimizer"
  std::string dtype;
  std::optional<double> seconds;  // null in the JSON when the layers were not timed
  double flops = 0, bytes = 0;
  std::optional<double> intensity;  // FLOP/byte; null in the JSON without bytes
  double flops_per_s = 0, bytes_per_s = 0;
  std::optional<double> roof_fraction;  // of the attainable rate; null where no roof applies
  std::string bound;                    // "memory", "compute", or "" (no arithmetic)
  std::optional<double> host_seconds;   // on a device timeline: the host's time to issue it
  bool operator==(const ProfileLayerRow&) const = default;
};

struct ProfileSkipped {
  std::string strategy;
  std::string reason;
  bool operator==(const ProfileSkipped&) const = default;
};

// A strategy's choice of algorithm for one convolution shape and pass (conv_autotune).
struct ProfileConvChoice {
  std::string strategy;
  std::string shape;  // "128x512x4x4 k3 s1 p1 -> 512, Float, channels_last"
  std::string pass;   // "forward", "input gradient", "weight gradient"
  std::string algorithm;
  std::optional<double> library_seconds, matmul_seconds;  // null: not timed
  std::string note;
  bool operator==(const ProfileConvChoice&) const = default;
};

struct ProfileSummary {
  // What was profiled and against which roofs; the JSON holds model, optimizer, device,
  // batch_size and warmup_steps exactly when it holds the roofs (a data-parallel run: none).
  std::optional<ProfileRoofs> roofs;
  std::string model, optimizer, device;
  int64_t batch_size = 0;
  int64_t warmup_steps = 0;
  std::vector<ProfileStepRow> steps;    // "step": one per strategy profiled, in order
  std::vector<ProfileLayerRow> layers;  // each strategy's rows, ranked by time
  std::vector<ProfileSkipped> skipped;
  // "convolution_choices" (absent in older files: empty).
  std::vector<ProfileConvChoice> convolution_choices;
  bool operator==(const ProfileSummary&) const = default;
};

nlohmann::json ToJson(const ProfileSummary& s);
// `summary`'s paths name the fields in errors ("summary.step[1].seconds: missing").
absl::StatusOr<ProfileSummary> ProfileSummaryFromJson(const JsonReader& summary);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_PROFILING_PROFILE_SUMMARY_H_
