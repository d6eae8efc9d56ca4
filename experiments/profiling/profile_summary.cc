// The profile summary's one codec (profile_summary.h): every field written under the key it has
// always had, and read back through JsonReader's typed getters, so that an error names the field
// by its path. A key that may be absent is absent when its optional is empty; one that may be
// null ("seconds" of an untimed row, a layer's "intensity" and "roof_fraction", the peak's
// "flops_per_s") is always written, null when empty.
#include "experiments/profiling/profile_summary.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace trainlab::experiments {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();

// --- Writing -------------------------------------------------------------------------------------

nlohmann::json OrNull(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

template <typename T>
void PutIfSet(nlohmann::json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

nlohmann::json ToJson(const ProfileDtypeRates& r) {
  nlohmann::json j = {{"float32", r.float32}};
  PutIfSet(j, "bfloat16", r.bfloat16);
  return j;
}

nlohmann::json ToJson(const ProfileRoofs& r) {
  nlohmann::json j = {
      {"flops_per_s", ToJson(r.flops_per_s)},
      {"matmul_flops_per_s", ToJson(r.matmul_flops_per_s)},
      {"conv_flops_per_s", ToJson(r.conv_flops_per_s)},
      {"bytes_per_s", r.bytes_per_s},
      {"matmul_n", r.matmul_n},
      {"triad_elements", r.triad_elements},
      {"theoretical_peak",
       {{"flops_per_s", OrNull(r.theoretical_peak.flops_per_s)}, {"how", r.theoretical_peak.how}}}};
  PutIfSet(j, "bfloat16_problem", r.bfloat16_problem);
  return j;
}

nlohmann::json ToJson(const ProfileStepRow& s) {
  nlohmann::json j = {{"strategy", s.strategy},
                      {"dtype", s.dtype},
                      {"batch_size", s.batch_size},
                      {"steps", s.steps},
                      {"seconds", s.seconds},
                      {"seconds_min", s.seconds_min},
                      {"seconds_max", s.seconds_max},
                      {"traced_seconds", s.traced_seconds},
                      {"flops", s.flops},
                      {"forward_flops_per_image", s.forward_flops_per_image},
                      {"step_flops_per_image", s.step_flops_per_image},
                      {"flops_per_s", s.flops_per_s},
                      {"compute_roof_flops_per_s", s.compute_roof_flops_per_s},
                      {"mfu", s.mfu},
                      {"layers", s.layers},
                      {"parameters", s.parameters}};
  PutIfSet(j, "timeline", s.timeline);
  PutIfSet(j, "rows_seconds", s.rows_seconds);
  PutIfSet(j, "coverage", s.coverage);
  PutIfSet(j, "coverage_of_instrumented", s.coverage_of_instrumented);
  PutIfSet(j, "overhead", s.overhead);
  PutIfSet(j, "memory_bound_seconds", s.memory_bound_seconds);
  PutIfSet(j, "unattributed_backward_seconds", s.unattributed_backward_seconds);
  PutIfSet(j, "host_rows_seconds", s.host_rows_seconds);
  return j;
}

nlohmann::json ToJson(const ProfileLayerRow& l) {
  nlohmann::json j = {{"strategy", l.strategy},
                      {"name", l.name},
                      {"op", l.op},
                      {"pass", l.pass},
                      {"dtype", l.dtype},
                      {"seconds", OrNull(l.seconds)},
                      {"flops", l.flops},
                      {"bytes", l.bytes},
                      {"intensity", OrNull(l.intensity)},
                      {"flops_per_s", l.flops_per_s},
                      {"bytes_per_s", l.bytes_per_s},
                      {"roof_fraction", OrNull(l.roof_fraction)},
                      {"bound", l.bound}};
  PutIfSet(j, "host_seconds", l.host_seconds);
  return j;
}

// --- Reading -------------------------------------------------------------------------------------

absl::Status Read(const JsonReader& j, const char* key, double* out) {
  TRAINLAB_ASSIGN_OR_RETURN(*out, j.Number(key));
  return absl::OkStatus();
}
absl::Status Read(const JsonReader& j, const char* key, int64_t* out) {
  TRAINLAB_ASSIGN_OR_RETURN(*out, j.Int(key, 0, kMaxInt));
  return absl::OkStatus();
}
absl::Status Read(const JsonReader& j, const char* key, std::string* out) {
  TRAINLAB_ASSIGN_OR_RETURN(*out, j.String(key));
  return absl::OkStatus();
}
// A key that may be absent: then `out` stays empty.
template <typename T>
absl::Status ReadIfPresent(const JsonReader& j, const char* key, std::optional<T>* out) {
  if (!j.Has(key)) return absl::OkStatus();
  T v;
  TRAINLAB_RETURN_IF_ERROR(Read(j, key, &v));
  *out = std::move(v);
  return absl::OkStatus();
}
// A key always there, a number or null (then `out` stays empty).
absl::Status ReadOrNull(const JsonReader& j, const char* key, std::optional<double>* out) {
  if (j.Has(key) && j.json()[key].is_null()) return absl::OkStatus();
  double v = 0;
  TRAINLAB_RETURN_IF_ERROR(Read(j, key, &v));
  *out = v;
  return absl::OkStatus();
}

absl::StatusOr<ProfileDtypeRates> ReadRates(const JsonReader& j, const char* key) {
  TRAINLAB_ASSIGN_OR_RETURN(const JsonReader r, j.Object(key));
  ProfileDtypeRates out;
  TRAINLAB_RETURN_IF_ERROR(Read(r, "float32", &out.float32));
  TRAINLAB_RETURN_IF_ERROR(ReadIfPresent(r, "bfloat16", &out.bfloat16));
  return out;
}

absl::StatusOr<ProfileRoofs> ReadRoofs(const JsonReader& j) {
  ProfileRoofs r;
  TRAINLAB_ASSIGN_OR_RETURN(r.flops_per_s, ReadRates(j, "flops_per_s"));
  TRAINLAB_ASSIGN_OR_RETURN(r.matmul_flops_per_s, ReadRates(j, "matmul_flops_per_s"));
  TRAINLAB_ASSIGN_OR_RETURN(r.conv_flops_per_s, ReadRates(j, "conv_flops_per_s"));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "bytes_per_s", &r.bytes_per_s));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "matmul_n", &r.matmul_n));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "triad_elements", &r.triad_elements));
  TRAINLAB_ASSIGN_OR_RETURN(const JsonReader peak, j.Object("theoretical_peak"));
  TRAINLAB_RETURN_IF_ERROR(ReadOrNull(peak, "flops_per_s", &r.theoretical_peak.flops_per_s));
  TRAINLAB_RETURN_IF_ERROR(Read(peak, "how", &r.theoretical_peak.how));
  TRAINLAB_RETURN_IF_ERROR(ReadIfPresent(j, "bfloat16_problem", &r.bfloat16_problem));
  return r;
}

absl::StatusOr<ProfileStepRow> ReadStep(const JsonReader& j) {
  ProfileStepRow s;
  TRAINLAB_RETURN_IF_ERROR(Read(j, "strategy", &s.strategy));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "dtype", &s.dtype));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "batch_size", &s.batch_size));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "steps", &s.steps));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "seconds", &s.seconds));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "seconds_min", &s.seconds_min));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "seconds_max", &s.seconds_max));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "traced_seconds", &s.traced_seconds));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "flops", &s.flops));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "forward_flops_per_image", &s.forward_flops_per_image));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "step_flops_per_image", &s.step_flops_per_image));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "flops_per_s", &s.flops_per_s));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "compute_roof_flops_per_s", &s.compute_roof_flops_per_s));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "mfu", &s.mfu));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "layers", &s.layers));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "parameters", &s.parameters));
  TRAINLAB_RETURN_IF_ERROR(ReadIfPresent(j, "timeline", &s.timeline));
  TRAINLAB_RETURN_IF_ERROR(ReadIfPresent(j, "rows_seconds", &s.rows_seconds));
  TRAINLAB_RETURN_IF_ERROR(ReadIfPresent(j, "coverage", &s.coverage));
  TRAINLAB_RETURN_IF_ERROR(
      ReadIfPresent(j, "coverage_of_instrumented", &s.coverage_of_instrumented));
  TRAINLAB_RETURN_IF_ERROR(ReadIfPresent(j, "overhead", &s.overhead));
  TRAINLAB_RETURN_IF_ERROR(ReadIfPresent(j, "memory_bound_seconds", &s.memory_bound_seconds));
  TRAINLAB_RETURN_IF_ERROR(
      ReadIfPresent(j, "unattributed_backward_seconds", &s.unattributed_backward_seconds));
  TRAINLAB_RETURN_IF_ERROR(ReadIfPresent(j, "host_rows_seconds", &s.host_rows_seconds));
  return s;
}

absl::StatusOr<ProfileLayerRow> ReadLayer(const JsonReader& j) {
  ProfileLayerRow l;
  TRAINLAB_RETURN_IF_ERROR(Read(j, "strategy", &l.strategy));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "name", &l.name));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "op", &l.op));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "pass", &l.pass));
  if (l.pass != "forward" && l.pass != "backward" && l.pass != "optimizer") {
    return absl::InvalidArgumentError(
        absl::StrCat(j.path(), ".pass: '", l.pass, "' is not forward, backward or optimizer"));
  }
  TRAINLAB_RETURN_IF_ERROR(Read(j, "dtype", &l.dtype));
  TRAINLAB_RETURN_IF_ERROR(ReadOrNull(j, "seconds", &l.seconds));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "flops", &l.flops));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "bytes", &l.bytes));
  TRAINLAB_RETURN_IF_ERROR(ReadOrNull(j, "intensity", &l.intensity));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "flops_per_s", &l.flops_per_s));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "bytes_per_s", &l.bytes_per_s));
  TRAINLAB_RETURN_IF_ERROR(ReadOrNull(j, "roof_fraction", &l.roof_fraction));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "bound", &l.bound));
  TRAINLAB_RETURN_IF_ERROR(ReadIfPresent(j, "host_seconds", &l.host_seconds));
  return l;
}

absl::StatusOr<ProfileSkipped> ReadSkipped(const JsonReader& j) {
  ProfileSkipped k;
  TRAINLAB_RETURN_IF_ERROR(Read(j, "strategy", &k.strategy));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "reason", &k.reason));
  return k;
}

absl::StatusOr<ProfileConvChoice> ReadConvChoice(const JsonReader& j) {
  ProfileConvChoice c;
  TRAINLAB_RETURN_IF_ERROR(Read(j, "strategy", &c.strategy));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "shape", &c.shape));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "pass", &c.pass));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "algorithm", &c.algorithm));
  TRAINLAB_RETURN_IF_ERROR(Read(j, "note", &c.note));
  TRAINLAB_RETURN_IF_ERROR(ReadOrNull(j, "library_seconds", &c.library_seconds));
  TRAINLAB_RETURN_IF_ERROR(ReadOrNull(j, "matmul_seconds", &c.matmul_seconds));
  return c;
}

// Each element of the array `key`, read by `read`.
template <typename T, typename F>
absl::StatusOr<std::vector<T>> ReadArray(const JsonReader& j, const char* key, F read) {
  TRAINLAB_ASSIGN_OR_RETURN(const std::vector<JsonReader> elements, j.Array(key));
  std::vector<T> out;
  out.reserve(elements.size());
  for (const JsonReader& e : elements) {
    TRAINLAB_ASSIGN_OR_RETURN(T v, read(e));
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

nlohmann::json ToJson(const ProfileSummary& s) {
  nlohmann::json steps = nlohmann::json::array(), layers = nlohmann::json::array(),
                 skipped = nlohmann::json::array();
  for (const ProfileStepRow& st : s.steps) steps.push_back(ToJson(st));
  for (const ProfileLayerRow& l : s.layers) layers.push_back(ToJson(l));
  for (const ProfileSkipped& k : s.skipped) {
    skipped.push_back({{"strategy", k.strategy}, {"reason", k.reason}});
  }
  nlohmann::json j = {
      {"step", std::move(steps)}, {"layers", std::move(layers)}, {"skipped", std::move(skipped)}};
  if (!s.convolution_choices.empty()) {
    nlohmann::json choices = nlohmann::json::array();
    for (const ProfileConvChoice& c : s.convolution_choices) {
      choices.push_back({{"strategy", c.strategy},
                         {"shape", c.shape},
                         {"pass", c.pass},
                         {"algorithm", c.algorithm},
                         {"library_seconds", OrNull(c.library_seconds)},
                         {"matmul_seconds", OrNull(c.matmul_seconds)},
                         {"note", c.note}});
    }
    j["convolution_choices"] = std::move(choices);
  }
  if (s.roofs) {
    j["model"] = s.model;
    j["optimizer"] = s.optimizer;
    j["device"] = s.device;
    j["batch_size"] = s.batch_size;
    j["warmup_steps"] = s.warmup_steps;
    j["roofs"] = ToJson(*s.roofs);
  }
  return j;
}

absl::StatusOr<ProfileSummary> ProfileSummaryFromJson(const JsonReader& summary) {
  TRAINLAB_RETURN_IF_ERROR(summary.ExpectObject());
  ProfileSummary s;
  if (summary.Has("roofs")) {
    TRAINLAB_RETURN_IF_ERROR(Read(summary, "model", &s.model));
    TRAINLAB_RETURN_IF_ERROR(Read(summary, "optimizer", &s.optimizer));
    TRAINLAB_RETURN_IF_ERROR(Read(summary, "device", &s.device));
    TRAINLAB_RETURN_IF_ERROR(Read(summary, "batch_size", &s.batch_size));
    TRAINLAB_RETURN_IF_ERROR(Read(summary, "warmup_steps", &s.warmup_steps));
    TRAINLAB_ASSIGN_OR_RETURN(const JsonReader roofs, summary.Object("roofs"));
    TRAINLAB_ASSIGN_OR_RETURN(s.roofs, ReadRoofs(roofs));
  }
  TRAINLAB_ASSIGN_OR_RETURN(s.steps, ReadArray<ProfileStepRow>(summary, "step", ReadStep));
  TRAINLAB_ASSIGN_OR_RETURN(s.layers, ReadArray<ProfileLayerRow>(summary, "layers", ReadLayer));
  TRAINLAB_ASSIGN_OR_RETURN(s.skipped, ReadArray<ProfileSkipped>(summary, "skipped", ReadSkipped));
  if (summary.Has("convolution_choices")) {
    TRAINLAB_ASSIGN_OR_RETURN(
        s.convolution_choices,
        ReadArray<ProfileConvChoice>(summary, "convolution_choices", ReadConvChoice));
  }
  return s;
}

}  // namespace trainlab::experiments
