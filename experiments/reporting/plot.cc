#include "experiments/reporting/plot.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "core/subprocess.h"

namespace trainlab::experiments {
namespace {

std::string Quote(const std::string& s) {  // a gnuplot string literal
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string GnuplotScript(const Plot& p, const std::string& path, bool png) {
  std::string script = absl::StrCat(
      png ? "set terminal pngcairo size 760,440 noenhanced font 'sans,10' background '#ffffff'\n"
          : "set terminal svg size 760,440 dynamic noenhanced font 'sans,11' background "
            "'#ffffff'\n",
      "set output ", Quote(path), "\n", "set title ", Quote(p.title), "\n", "set xlabel ",
      Quote(p.xlabel), "\n", "set ylabel ", Quote(p.ylabel), "\n",
      "set key outside right top\nset grid\n", p.from_zero ? "set yrange [0:*]\n" : "");
  if (!p.y2label.empty()) {
    absl::StrAppend(&script, "set y2label ", Quote(p.y2label), "\nset y2tics\nset ytics nomirror\n",
                    p.from_zero ? "set y2range [0:*]\n" : "");
  }
  if (p.log_x) absl::StrAppend(&script, "set logscale x\nset format x '%.0e'\n");
  if (p.log_y) absl::StrAppend(&script, "set logscale y\nset format y '%.0e'\n");
  if (p.tics_at_points && !p.log_x) {
    std::vector<double> xs;
    for (const Series& s : p.series) {
      for (const auto& pt : s.points) xs.push_back(pt.first);
    }
    std::sort(xs.begin(), xs.end());
    xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
    if (!xs.empty() && xs.size() <= 20) {
      std::vector<std::string> tics;
      for (double x : xs) tics.push_back(absl::StrFormat("%g", x));
      absl::StrAppend(&script, "set xtics (", absl::StrJoin(tics, ", "), ")\n");
    }
  }
  std::vector<std::string> plots;
  for (size_t i = 0; i < p.series.size(); ++i) {
    absl::StrAppend(&script, "$d", i, " << EOD\n");
    for (const auto& [x, y] : p.series[i].points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      if ((p.log_x && x <= 0) || (p.log_y && y <= 0)) continue;
      absl::StrAppendFormat(&script, "%.9g %.9g\n", x, y);
    }
    absl::StrAppend(&script, "EOD\n");
    const char* with = p.series[i].style == Series::Style::kPoints  ? "points pointsize 0.8"
                       : p.series[i].style == Series::Style::kLines ? "lines linewidth 2"
                                                                    : "linespoints";
    plots.push_back(absl::StrCat("$d", i, " using 1:2", p.series[i].right_axis ? " axes x1y2" : "",
                                 " with ", with, " title ", Quote(p.series[i].title)));
  }
  absl::StrAppend(&script, "plot ", absl::StrJoin(plots, ", "), "\n");
  return script;
}

bool GnuplotAvailable() { return OnPath("gnuplot"); }

namespace {

// Runs gnuplot on `script`, kept in `script_path` while it runs.
absl::Status RunGnuplot(const Plot& p, const std::string& script_path, const std::string& script) {
  TRAINLAB_RETURN_IF_ERROR(WriteFileAtomically(script_path, script));
  absl::StatusOr<ProcessResult> run = RunProcess({"gnuplot", script_path});
  std::error_code ec;
  std::filesystem::remove(script_path, ec);
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) {
    const std::string first = run->output.substr(0, run->output.find('\n'));
    return absl::InternalError(
        absl::StrCat("gnuplot failed on ", p.file, " (exit ", run->exit_code, "): ", first));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DrawSvg(const std::string& dir, const Plot& p) {
  return RunGnuplot(p, absl::StrCat(dir, "/.", p.file, ".gp"),
                    GnuplotScript(p, absl::StrCat(dir, "/", p.file)));
}

absl::Status DrawPng(const std::string& path, const Plot& p) {
  return RunGnuplot(p, absl::StrCat(path, ".gp"), GnuplotScript(p, path, /*png=*/true));
}

}  // namespace trainlab::experiments
