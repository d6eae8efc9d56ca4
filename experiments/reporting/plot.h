// A plot of an experiment's section, as data (series of points), and its SVG drawn by gnuplot
// (Debian's gnuplot-nox), run from an argument vector with its script in a file: no shell.
//
// Example:
//   Plot p{.file = "c3.svg", .title = "C3: time against loader workers", .xlabel = "workers",
//          .ylabel = "seconds", .series = {{"total runtime", {{0, 12.1}, {4, 9.8}}}}};
//   TRAINLAB_RETURN_IF_ERROR(DrawSvg("/tmp/r", p));   // /tmp/r/c3.svg
#ifndef TRAINLAB_EXPERIMENTS_REPORTING_PLOT_H_
#define TRAINLAB_EXPERIMENTS_REPORTING_PLOT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace trainlab::experiments {

struct Series {
  enum class Style { kLinesPoints, kPoints, kLines };
  std::string title;
  std::vector<std::pair<double, double>> points;
  bool right_axis = false;  // against a second y axis (a figure much smaller than the others)
  Style style = Style::kLinesPoints;
};

struct Plot {
  std::string file;  // "c3.svg", in the report's folder
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  std::string y2label;                // for series on the right axis
  bool from_zero = false;             // y axis starts at 0 (times: proportions stay honest)
  bool tics_at_points = true;         // x tics at the data's x values (epochs, worker counts)
  bool log_x = false, log_y = false;  // logarithmic axes (a roofline); points <= 0 are left out
};

// The gnuplot script that draws `plot` into `path`: an SVG, or with `png` a 760x440 PNG (cairo).
std::string GnuplotScript(const Plot& plot, const std::string& path, bool png = false);
// Whether gnuplot is on $PATH.
bool GnuplotAvailable();
// Draws DIR/<plot.file>. Errors: the script cannot be written, gnuplot is missing or fails (its
// first output line is in the message).
absl::Status DrawSvg(const std::string& dir, const Plot& plot);
// Draws `plot` as a PNG file at `path` (for TensorBoard, whose images are PNG). Errors as
// DrawSvg's.
absl::Status DrawPng(const std::string& path, const Plot& plot);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_REPORTING_PLOT_H_
