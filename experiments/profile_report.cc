// The profile's section: the measured roofs, the step of each strategy against them, per strategy
// the layers ranked by time (the top 15, then the rest summed) and a roofline plot (log-log:
// arithmetic intensity against achieved FLOP/s, one point per layer and pass). Every figure was
// computed by profile.cc into the summary; this file only selects and formats.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/status_macros.h"
#include "experiments/experiment_report.h"

namespace trainlab::experiments {
namespace {

constexpr size_t kTopRows = 15;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double Num(const nlohmann::json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return kNaN;
  return j[key].get<double>();
}
std::string Str(const nlohmann::json& j, const char* key) { return SummaryString(j, key); }
const nlohmann::json& Arr(const nlohmann::json& s, const char* key) {
  static const nlohmann::json* empty = new nlohmann::json(nlohmann::json::array());
  return s.is_object() && s.contains(key) && s[key].is_array() ? s[key] : *empty;
}

std::string Or(double v, const char* format, double scale = 1, const char* missing = "n/a") {
  return std::isfinite(v) ? absl::StrFormat(format, v * scale) : std::string(missing);
}
std::string Ms(double s) { return Or(s, "%.2f ms", 1e3, "not timed"); }
std::string Percent(double f) { return Or(f, "%.1f%%", 100); }

// Where a layer table puts the host's time to issue a row, on a GPU: beside the device's time.
constexpr size_t kHostColumn = 4;

// The figures a table row of layers shows (with the host's time to issue it, on a GPU).
std::vector<std::string> LayerCells(const nlohmann::json& l, double step_s, bool host) {
  const double s = Num(l, "seconds");
  std::vector<std::string> cells = {
      Str(l, "name"),
      Str(l, "pass"),
      Str(l, "op"),
      Ms(s),
      Percent(s / step_s),
      Or(Num(l, "flops"), "%.3f", 1e-9),
      Or(Num(l, "bytes"), "%.1f", 1e-6),
      Or(Num(l, "intensity"), "%.1f"),
      std::isfinite(s) ? Or(Num(l, "flops_per_s"), "%.1f", 1e-9) : "n/a",
      std::isfinite(s) ? Or(Num(l, "bytes_per_s"), "%.1f", 1e-9) : "n/a",
      Percent(Num(l, "roof_fraction")),
      Str(l, "bound").empty() ? "-" : Str(l, "bound")};
  if (host) cells.insert(cells.begin() + kHostColumn, Ms(Num(l, "host_seconds")));
  return cells;
}

Table RoofsTable(const nlohmann::json& roofs) {
  Table t{.header = {"roof", "float32", "bfloat16"}};
  const nlohmann::json mm = SummaryObject(roofs, "matmul_flops_per_s"),
                       conv = SummaryObject(roofs, "conv_flops_per_s");
  const int64_t n = SummaryInt(roofs, "matmul_n", 0);
  t.rows.push_back({absl::StrCat("matrix multiply (", n, "x", n, "), GFLOP/s"),
                    Or(Num(mm, "float32"), "%.1f", 1e-9), Or(Num(mm, "bfloat16"), "%.1f", 1e-9)});
  t.rows.push_back({"3x3 convolution (256 channels at 8x8, batch 32), GFLOP/s",
                    Or(Num(conv, "float32"), "%.1f", 1e-9),
                    Or(Num(conv, "bfloat16"), "%.1f", 1e-9)});
  t.rows.push_back({"bandwidth (float32 triad), GB/s", Or(Num(roofs, "bytes_per_s"), "%.1f", 1e-9),
                    "(the same)"});
  return t;
}

Table StepTable(const nlohmann::json& steps) {
  Table t{.header = {"strategy", "step", "instrumented", "rows cover (of instrumented)",
                     "GFLOP per step", "forward MFLOP per image", "GFLOP/s",
                     "of compute roof (MFU)", "memory-bound rows", "layers timed by"}};
  for (const nlohmann::json& st : steps) {
    const double s = Num(st, "seconds");
    t.rows.push_back({Str(st, "strategy"),
                      absl::StrCat(FormatSeconds(s), " (", Or(Num(st, "seconds_min"), "%.4f"), "-",
                                   Or(Num(st, "seconds_max"), "%.4f"), ")"),
                      absl::StrCat(FormatSeconds(Num(st, "traced_seconds")), " (",
                                   Or(Num(st, "overhead"), "%+.1f%%", 100), ")"),
                      absl::StrCat(Percent(Num(st, "coverage")), " (",
                                   Percent(Num(st, "coverage_of_instrumented")), ")"),
                      Or(Num(st, "flops"), "%.1f", 1e-9),
                      Or(Num(st, "forward_flops_per_image"), "%.1f", 1e-6),
                      Or(Num(st, "flops_per_s"), "%.1f", 1e-9), Percent(Num(st, "mfu")),
                      Percent(Num(st, "memory_bound_seconds") / s),
                      Str(st, "timeline").empty() ? "-" : Str(st, "timeline")});
  }
  return t;
}

// The layers of `strategy`, which profile.cc stored ranked by time: the top rows, then the rest.
// On a GPU (rows with host_seconds), a column with the host's time to issue each row.
Table LayersTable(const nlohmann::json& layers, const std::string& strategy, double step_s) {
  bool host = false;
  for (const nlohmann::json& l : layers) {
    host |= Str(l, "strategy") == strategy && std::isfinite(Num(l, "host_seconds"));
  }
  Table t{.header = {"layer", "pass", "op", "time", "of step", "GFLOP", "MB", "FLOP/byte",
                     "GFLOP/s", "GB/s", "of roof", "bound"}};
  if (host) t.header.insert(t.header.begin() + kHostColumn, "host issue");
  size_t shown = 0, rest = 0;
  double rest_s = 0, rest_host_s = 0, rest_flops = 0, rest_bytes = 0;
  for (const nlohmann::json& l : layers) {
    if (Str(l, "strategy") != strategy) continue;
    if (shown < kTopRows) {
      t.rows.push_back(LayerCells(l, step_s, host));
      ++shown;
      continue;
    }
    ++rest;
    if (std::isfinite(Num(l, "seconds"))) rest_s += Num(l, "seconds");
    if (std::isfinite(Num(l, "host_seconds"))) rest_host_s += Num(l, "host_seconds");
    rest_flops += Num(l, "flops");
    rest_bytes += Num(l, "bytes");
  }
  if (rest > 0) {
    std::vector<std::string> cells = {absl::StrCat("the other ", rest, " rows"),
                                      "-",
                                      "-",
                                      Ms(rest_s),
                                      Percent(rest_s / step_s),
                                      Or(rest_flops, "%.3f", 1e-9),
                                      Or(rest_bytes, "%.1f", 1e-6),
                                      "-",
                                      "-",
                                      "-",
                                      "-",
                                      "-"};
    if (host) cells.insert(cells.begin() + kHostColumn, Ms(rest_host_s));
    t.rows.push_back(std::move(cells));
  }
  return t;
}

// The roof min(compute, intensity x bandwidth), sampled on a log scale.
Series RoofSeries(const std::string& title, double compute, double bandwidth) {
  Series roof{.title = title, .style = Series::Style::kLines};
  for (double e = -2; e <= 3.0001; e += 0.125) {
    const double x = std::pow(10.0, e);
    roof.points.emplace_back(x, std::min(compute, x * bandwidth));
  }
  return roof;
}

Plot RooflinePlot(const nlohmann::json& summary, const nlohmann::json& step) {
  const std::string strategy = Str(step, "strategy");
  const nlohmann::json roofs = SummaryObject(summary, "roofs");
  const nlohmann::json compute = SummaryObject(roofs, "flops_per_s");
  const double bw = Num(roofs, "bytes_per_s");
  Plot p{.file = absl::StrCat("profile_", absl::StrReplaceAll(strategy, {{"+", "_"}}), ".svg"),
         .title = absl::StrCat("Roofline of one training step: ", strategy, " (",
                               Str(summary, "device"), ")"),
         .xlabel = "arithmetic intensity (FLOP/byte)",
         .ylabel = "achieved FLOP/s",
         .tics_at_points = false,
         .log_x = true,
         .log_y = true};
  for (const char* dtype : {"float32", "bfloat16"}) {
    const double c = Num(compute, dtype);
    if (!std::isfinite(c)) continue;
    if (std::string(dtype) == "bfloat16" && Str(step, "dtype") != "bfloat16") continue;
    p.series.push_back(RoofSeries(
        absl::StrFormat("roof, %s (%.0f GFLOP/s, %.1f GB/s)", dtype, c / 1e9, bw / 1e9), c, bw));
  }
  for (const char* pass : {"forward", "backward", "optimizer"}) {
    Series points{.title = pass, .style = Series::Style::kPoints};
    for (const nlohmann::json& l : Arr(summary, "layers")) {
      if (Str(l, "strategy") != strategy || Str(l, "pass") != pass) continue;
      const double i = Num(l, "intensity"), r = Num(l, "flops_per_s");
      if (std::isfinite(i) && i > 0 && std::isfinite(Num(l, "seconds")) && r > 0) {
        points.points.emplace_back(i, r);
      }
    }
    if (!points.points.empty()) p.series.push_back(std::move(points));
  }
  return p;
}

Section ProfileSection(const ExperimentResult& result) {
  const nlohmann::json& s = result.summary;
  Section out;
  const nlohmann::json& steps = Arr(s, "step");
  const nlohmann::json& layers = Arr(s, "layers");
  if (s.contains("roofs")) {
    out.AddText(absl::StrCat("Measured on ", Str(s, "device"), ": ", Str(s, "model"), ", batch ",
                             SummaryInt(s, "batch_size", 0), ", ", Str(s, "optimizer"), "; ",
                             SummaryInt(s, "warmup_steps", 0),
                             " warm-up steps, then plain steps (nothing listening) and "
                             "instrumented ones, medians. The roofs, measured here:"));
    const nlohmann::json roofs = SummaryObject(s, "roofs");
    out.AddTable(RoofsTable(roofs));
    const nlohmann::json peak = SummaryObject(roofs, "theoretical_peak");
    if (std::isfinite(Num(peak, "flops_per_s"))) {
      out.AddText(absl::StrFormat("Theoretical float32 peak: %.0f GFLOP/s (%s).",
                                  Num(peak, "flops_per_s") / 1e9, Str(peak, "how")));
    } else if (!Str(peak, "how").empty()) {
      out.AddText(absl::StrCat("Theoretical peak: ", Str(peak, "how"), "."));
    }
    if (!Str(roofs, "bfloat16_problem").empty()) {
      out.AddText(absl::StrCat("bfloat16 roofs not measured: ", Str(roofs, "bfloat16_problem")));
    }
  }
  if (!steps.empty()) out.AddTable(StepTable(steps));
  for (const nlohmann::json& st : steps) {
    const std::string strategy = Str(st, "strategy");
    const double step_s = Num(st, "seconds");
    out.AddText(absl::StrCat(
        "`", strategy, "`: the rows by time (", SummaryInt(st, "layers", 0),
        " layers, each forward and backward; the optimizer step; backward "
        "time no layer owns).",
        std::isfinite(Num(st, "coverage"))
            ? absl::StrFormat(" They sum to %.1f%% of the plain step "
                              "(%.1f%% of the instrumented one).",
                              100 * Num(st, "coverage"), 100 * Num(st, "coverage_of_instrumented"))
            : std::string(),
        std::isfinite(Num(st, "host_rows_seconds"))
            ? absl::StrFormat(
                  " Times are the device's (its events); the host took %.1f%% of the plain "
                  "step to issue the rows (\"host issue\"): near 100%%, the host's launches "
                  "pace the step; far below, the device's work does.",
                  100 * Num(st, "host_rows_seconds") / step_s)
            : std::string()));
    out.AddTable(LayersTable(layers, strategy, step_s));
  }
  std::vector<std::string> skipped;
  for (const nlohmann::json& k : Arr(s, "skipped")) {
    skipped.push_back(absl::StrCat("`", Str(k, "strategy"), "`: ", Str(k, "reason")));
  }
  if (!skipped.empty()) out.AddText("Skipped here: " + absl::StrJoin(skipped, "; ") + ".");
  if (!steps.empty()) {
    const nlohmann::json& first = steps.front();
    const std::string strategy = Str(first, "strategy");
    std::string top;
    for (const nlohmann::json& l : layers) {  // ranked by time: the first of the strategy
      if (Str(l, "strategy") == strategy && std::isfinite(Num(l, "seconds"))) {
        top =
            absl::StrCat("the costliest row is `", Str(l, "name"), "` ", Str(l, "pass"), " (",
                         Percent(Num(l, "seconds") / Num(first, "seconds")), " of the step, ",
                         Str(l, "bound").empty() ? "no arithmetic" : Str(l, "bound"), "-bound); ");
        break;
      }
    }
    std::string fastest = strategy;
    double best = Num(first, "seconds");
    for (const nlohmann::json& st : steps) {
      if (Num(st, "seconds") < best) {
        best = Num(st, "seconds");
        fastest = Str(st, "strategy");
      }
    }
    out.AddAnswer(absl::StrCat(
        "under `", strategy, "`, ", top, "memory-bound rows take ",
        Percent(Num(first, "memory_bound_seconds") / Num(first, "seconds")),
        " of the step, and the step runs at **", Percent(Num(first, "mfu")),
        "** of the measured compute roof",
        steps.size() > 1 ? absl::StrCat("; the fastest step is `", fastest, "`") : "", "."));
    for (const nlohmann::json& st : steps) out.AddPlot(RooflinePlot(s, st));
  }
  return out;
}

absl::Status ProfileCheckSummary(const JsonReader& s) {
  if (s.Has("roofs")) {
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader roofs, s.Object("roofs"));
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader compute, roofs.Object("flops_per_s"));
    TRAINLAB_RETURN_IF_ERROR(compute.Number("float32").status());
    TRAINLAB_RETURN_IF_ERROR(roofs.Number("bytes_per_s").status());
  }
  TRAINLAB_ASSIGN_OR_RETURN(std::vector<JsonReader> steps, s.Array("step"));
  for (const JsonReader& st : steps) {
    TRAINLAB_RETURN_IF_ERROR(st.String("strategy").status());
    TRAINLAB_RETURN_IF_ERROR(st.Number("seconds").status());
    TRAINLAB_RETURN_IF_ERROR(st.Number("flops").status());
    if (st.Has("coverage")) TRAINLAB_RETURN_IF_ERROR(st.Number("coverage").status());
  }
  TRAINLAB_ASSIGN_OR_RETURN(std::vector<JsonReader> layers, s.Array("layers"));
  for (const JsonReader& l : layers) {
    for (const char* key : {"strategy", "name", "op"}) {
      TRAINLAB_RETURN_IF_ERROR(l.String(key).status());
    }
    TRAINLAB_ASSIGN_OR_RETURN(const std::string pass, l.String("pass"));
    if (pass != "forward" && pass != "backward" && pass != "optimizer") {
      return absl::InvalidArgumentError(
          absl::StrCat(l.path(), ".pass: '", pass, "' is not forward, backward or optimizer"));
    }
    if (!l.json().contains("seconds") || !l.json()["seconds"].is_null()) {
      TRAINLAB_RETURN_IF_ERROR(l.Number("seconds").status());
    }
    TRAINLAB_RETURN_IF_ERROR(l.Number("flops").status());
    TRAINLAB_RETURN_IF_ERROR(l.Number("bytes").status());
  }
  TRAINLAB_ASSIGN_OR_RETURN(std::vector<JsonReader> skipped, s.Array("skipped"));
  for (const JsonReader& k : skipped) {
    TRAINLAB_RETURN_IF_ERROR(k.String("strategy").status());
    TRAINLAB_RETURN_IF_ERROR(k.String("reason").status());
  }
  return absl::OkStatus();
}

const bool kRegistered = ReportRegistry::Global().Register(
    "profile", {.title = "Profile: where the step's time goes",
                .question = "Which layers take a training step's time, how far each is from "
                            "this machine's measured roofs, and what bounds it.",
                .section = ProfileSection,
                .check_summary = ProfileCheckSummary});

}  // namespace
}  // namespace trainlab::experiments
