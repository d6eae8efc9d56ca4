// The profile's section: the measured roofs, the step of each strategy against them, per strategy
// the layers ranked by time (the top 15, then the rest summed) and a roofline plot (log-log:
// arithmetic intensity against achieved FLOP/s, one point per layer and pass). Every figure was
// computed by profile.cc into the summary; this file reads it back (profile_summary.h), then only
// selects and formats.
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "experiments/profiling/profile_summary.h"
#include "experiments/reporting/experiment_report.h"

namespace trainlab::experiments {
namespace {

constexpr size_t kTopRows = 15;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A figure that may be missing, as NaN (which the formatting below shows as "n/a").
double Num(const std::optional<double>& v) { return v.value_or(kNaN); }

std::string Or(double v, const char* format, double scale = 1, const char* missing = "n/a") {
  return std::isfinite(v) ? absl::StrFormat(format, v * scale) : std::string(missing);
}
std::string Ms(double s) { return Or(s, "%.2f ms", 1e3, "not timed"); }
std::string Percent(double f) { return Or(f, "%.1f%%", 100); }

// Where a layer table puts the host's time to issue a row, on a GPU: beside the device's time.
constexpr size_t kHostColumn = 4;

// The figures a table row of layers shows (with the host's time to issue it, on a GPU).
std::vector<std::string> LayerCells(const ProfileLayerRow& l, double step_s, bool host) {
  const double s = Num(l.seconds);
  std::vector<std::string> cells = {l.name,
                                    l.pass,
                                    l.op,
                                    Ms(s),
                                    Percent(s / step_s),
                                    Or(l.flops, "%.3f", 1e-9),
                                    Or(l.bytes, "%.1f", 1e-6),
                                    Or(Num(l.intensity), "%.1f"),
                                    std::isfinite(s) ? Or(l.flops_per_s, "%.1f", 1e-9) : "n/a",
                                    std::isfinite(s) ? Or(l.bytes_per_s, "%.1f", 1e-9) : "n/a",
                                    Percent(Num(l.roof_fraction)),
                                    l.bound.empty() ? "-" : l.bound};
  if (host) cells.insert(cells.begin() + kHostColumn, Ms(Num(l.host_seconds)));
  return cells;
}

Table RoofsTable(const ProfileRoofs& roofs) {
  Table t{.header = {"roof", "float32", "bfloat16"}};
  const ProfileDtypeRates &mm = roofs.matmul_flops_per_s, &conv = roofs.conv_flops_per_s;
  const int64_t n = roofs.matmul_n;
  t.rows.push_back({absl::StrCat("matrix multiply (", n, "x", n, "), GFLOP/s"),
                    Or(mm.float32, "%.1f", 1e-9), Or(Num(mm.bfloat16), "%.1f", 1e-9)});
  t.rows.push_back({"3x3 convolution (256 channels at 8x8, batch 32), GFLOP/s",
                    Or(conv.float32, "%.1f", 1e-9), Or(Num(conv.bfloat16), "%.1f", 1e-9)});
  t.rows.push_back(
      {"bandwidth (float32 triad), GB/s", Or(roofs.bytes_per_s, "%.1f", 1e-9), "(the same)"});
  return t;
}

Table StepTable(const std::vector<ProfileStepRow>& steps) {
  Table t{.header = {"strategy", "step", "instrumented", "rows cover (of instrumented)",
                     "GFLOP per step", "forward MFLOP per image", "GFLOP/s",
                     "of compute roof (MFU)", "memory-bound rows", "layers timed by"}};
  for (const ProfileStepRow& st : steps) {
    const double s = st.seconds;
    const std::string timeline = st.timeline.value_or("");
    t.rows.push_back({st.strategy,
                      absl::StrCat(FormatSeconds(s), " (", Or(st.seconds_min, "%.4f"), "-",
                                   Or(st.seconds_max, "%.4f"), ")"),
                      absl::StrCat(FormatSeconds(st.traced_seconds), " (",
                                   Or(Num(st.overhead), "%+.1f%%", 100), ")"),
                      absl::StrCat(Percent(Num(st.coverage)), " (",
                                   Percent(Num(st.coverage_of_instrumented)), ")"),
                      Or(st.flops, "%.1f", 1e-9), Or(st.forward_flops_per_image, "%.1f", 1e-6),
                      Or(st.flops_per_s, "%.1f", 1e-9), Percent(st.mfu),
                      Percent(Num(st.memory_bound_seconds) / s),
                      timeline.empty() ? "-" : timeline});
  }
  return t;
}

// The layers of `strategy`, which profile.cc stored ranked by time: the top rows, then the rest.
// On a GPU (rows with host_seconds), a column with the host's time to issue each row.
Table LayersTable(const std::vector<ProfileLayerRow>& layers, const std::string& strategy,
                  double step_s) {
  bool host = false;
  for (const ProfileLayerRow& l : layers) {
    host |= l.strategy == strategy && std::isfinite(Num(l.host_seconds));
  }
  Table t{.header = {"layer", "pass", "op", "time", "of step", "GFLOP", "MB", "FLOP/byte",
                     "GFLOP/s", "GB/s", "of roof", "bound"}};
  if (host) t.header.insert(t.header.begin() + kHostColumn, "host issue");
  size_t shown = 0, rest = 0;
  double rest_s = 0, rest_host_s = 0, rest_flops = 0, rest_bytes = 0;
  for (const ProfileLayerRow& l : layers) {
    if (l.strategy != strategy) continue;
    if (shown < kTopRows) {
      t.rows.push_back(LayerCells(l, step_s, host));
      ++shown;
      continue;
    }
    ++rest;
    if (std::isfinite(Num(l.seconds))) rest_s += *l.seconds;
    if (std::isfinite(Num(l.host_seconds))) rest_host_s += *l.host_seconds;
    rest_flops += l.flops;
    rest_bytes += l.bytes;
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

Plot RooflinePlot(const ProfileSummary& summary, const ProfileStepRow& step) {
  const std::string& strategy = step.strategy;
  // Without roofs (a summary never written so), no roof is drawn.
  const double bw = summary.roofs ? summary.roofs->bytes_per_s : kNaN;
  Plot p{
      .file = absl::StrCat("profile_", absl::StrReplaceAll(strategy, {{"+", "_"}}), ".svg"),
      .title = absl::StrCat("Roofline of one training step: ", strategy, " (", summary.device, ")"),
      .xlabel = "arithmetic intensity (FLOP/byte)",
      .ylabel = "achieved FLOP/s",
      .tics_at_points = false,
      .log_x = true,
      .log_y = true};
  for (const char* dtype : {"float32", "bfloat16"}) {
    const double c = !summary.roofs                    ? kNaN
                     : std::string(dtype) == "float32" ? summary.roofs->flops_per_s.float32
                                                       : Num(summary.roofs->flops_per_s.bfloat16);
    if (!std::isfinite(c)) continue;
    if (std::string(dtype) == "bfloat16" && step.dtype != "bfloat16") continue;
    p.series.push_back(RoofSeries(
        absl::StrFormat("roof, %s (%.0f GFLOP/s, %.1f GB/s)", dtype, c / 1e9, bw / 1e9), c, bw));
  }
  for (const char* pass : {"forward", "backward", "optimizer"}) {
    Series points{.title = pass, .style = Series::Style::kPoints};
    for (const ProfileLayerRow& l : summary.layers) {
      if (l.strategy != strategy || l.pass != pass) continue;
      const double i = Num(l.intensity), r = l.flops_per_s;
      if (std::isfinite(i) && i > 0 && std::isfinite(Num(l.seconds)) && r > 0) {
        points.points.emplace_back(i, r);
      }
    }
    if (!points.points.empty()) p.series.push_back(std::move(points));
  }
  return p;
}

Section ProfileSection(const ExperimentResult& result) {
  Section out;
  // A results file's summary has passed the same read (check_summary); so has the run's own.
  const absl::StatusOr<ProfileSummary> read =
      ProfileSummaryFromJson(JsonReader(result.summary, "summary"));
  if (!read.ok()) {
    out.AddText(absl::StrCat("The summary could not be read: ", read.status().message()));
    return out;
  }
  const ProfileSummary& s = *read;
  const std::vector<ProfileStepRow>& steps = s.steps;
  const std::vector<ProfileLayerRow>& layers = s.layers;
  if (s.roofs) {
    out.AddText(absl::StrCat("Measured on ", s.device, ": ", s.model, ", batch ", s.batch_size,
                             ", ", s.optimizer, "; ", s.warmup_steps,
                             " warm-up steps, then plain steps (nothing listening) and "
                             "instrumented ones, medians. The roofs, measured here:"));
    const ProfileRoofs& roofs = *s.roofs;
    out.AddTable(RoofsTable(roofs));
    const ProfilePeak& peak = roofs.theoretical_peak;
    if (std::isfinite(Num(peak.flops_per_s))) {
      out.AddText(absl::StrFormat("Theoretical float32 peak: %.0f GFLOP/s (%s).",
                                  *peak.flops_per_s / 1e9, peak.how));
    } else if (!peak.how.empty()) {
      out.AddText(absl::StrCat("Theoretical peak: ", peak.how, "."));
    }
    if (!roofs.bfloat16_problem.value_or("").empty()) {
      out.AddText(absl::StrCat("bfloat16 roofs not measured: ", *roofs.bfloat16_problem));
    }
  }
  if (!steps.empty()) out.AddTable(StepTable(steps));
  for (const ProfileStepRow& st : steps) {
    const double step_s = st.seconds;
    out.AddText(absl::StrCat(
        "`", st.strategy, "`: the rows by time (", st.layers,
        " layers, each forward and backward; the optimizer step; backward "
        "time no layer owns).",
        std::isfinite(Num(st.coverage))
            ? absl::StrFormat(" They sum to %.1f%% of the plain step "
                              "(%.1f%% of the instrumented one).",
                              100 * *st.coverage, 100 * Num(st.coverage_of_instrumented))
            : std::string(),
        std::isfinite(Num(st.host_rows_seconds))
            ? absl::StrFormat(
                  " Times are the device's (its events); the host took %.1f%% of the plain "
                  "step to issue the rows (\"host issue\"): near 100%%, the host's launches "
                  "pace the step; far below, the device's work does.",
                  100 * *st.host_rows_seconds / step_s)
            : std::string()));
    out.AddTable(LayersTable(layers, st.strategy, step_s));
  }
  if (!s.convolution_choices.empty()) {
    out.AddText(
        "Convolution algorithms chosen by timing (conv_autotune: each pass of each shape on the "
        "faster of the library's convolution and matrix multiplies, timed once in the warm-up "
        "steps, best of its runs):");
    Table t{.header = {"strategy", "shape", "pass", "library", "matmul", "chosen"}};
    auto ms = [](const std::optional<double>& v) {
      return v ? absl::StrFormat("%.2f ms", 1e3 * *v) : std::string("-");
    };
    for (const ProfileConvChoice& c : s.convolution_choices) {
      t.rows.push_back(
          {c.strategy, c.shape, c.pass, ms(c.library_seconds), ms(c.matmul_seconds),
           c.note.empty() ? c.algorithm : absl::StrCat(c.algorithm, " (", c.note, ")")});
    }
    out.AddTable(std::move(t));
  }
  std::vector<std::string> skipped;
  for (const ProfileSkipped& k : s.skipped) {
    skipped.push_back(absl::StrCat("`", k.strategy, "`: ", k.reason));
  }
  if (!skipped.empty()) out.AddText("Skipped here: " + absl::StrJoin(skipped, "; ") + ".");
  if (!steps.empty()) {
    const ProfileStepRow& first = steps.front();
    const std::string& strategy = first.strategy;
    std::string top;
    for (const ProfileLayerRow& l : layers) {  // ranked by time: the first of the strategy
      if (l.strategy == strategy && std::isfinite(Num(l.seconds))) {
        top = absl::StrCat("the costliest row is `", l.name, "` ", l.pass, " (",
                           Percent(*l.seconds / first.seconds), " of the step, ",
                           l.bound.empty() ? "no arithmetic" : l.bound, "-bound); ");
        break;
      }
    }
    std::string fastest = strategy;
    double best = first.seconds;
    for (const ProfileStepRow& st : steps) {
      if (st.seconds < best) {
        best = st.seconds;
        fastest = st.strategy;
      }
    }
    out.AddAnswer(absl::StrCat(
        "under `", strategy, "`, ", top, "memory-bound rows take ",
        Percent(Num(first.memory_bound_seconds) / first.seconds),
        " of the step, and the step runs at **", Percent(first.mfu),
        "** of the measured compute roof",
        steps.size() > 1 ? absl::StrCat("; the fastest step is `", fastest, "`") : "", "."));
    for (const ProfileStepRow& st : steps) out.AddPlot(RooflinePlot(s, st));
  }
  return out;
}

absl::Status ProfileCheckSummary(const JsonReader& s) { return ProfileSummaryFromJson(s).status(); }

const bool kRegistered = ReportRegistry::Global().Register(
    "profile", {.title = "Profile: where the step's time goes",
                .question = "Which layers take a training step's time, how far each is from "
                            "this machine's measured roofs, and what bounds it.",
                .section = ProfileSection,
                .check_summary = ProfileCheckSummary});

}  // namespace
}  // namespace trainlab::experiments
