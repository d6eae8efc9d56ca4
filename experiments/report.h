// REPORT.md: the lab's write-up, rendered from the results files an experiment run left in a
// folder (DIR/c2.json ... DIR/q1_q4.json, DIR/c2_batches.csv), with SVG plots beside it.
//
// Sections follow the write-up: environment, then C2 ... C8, Q1-Q4 and Q5, each with the lab's
// table(s) and one sentence, computed from the data, that answers its question. Medians and
// ranges wherever a configuration ran more than once (--repeats); ratios with the digits the
// ranges allow. Plots are drawn by gnuplot (Debian's gnuplot-nox); without it the report keeps
// every table and says how to get the plots.
//
// Example:
//   absl::StatusOr<ReportFiles> r = RenderReport("/tmp/r");            // /tmp/r/REPORT.md, *.svg
//   absl::StatusOr<std::string> md = RenderComparison("/tmp/cpu", "/tmp/gpu");
#ifndef TRAINLAB_EXPERIMENTS_REPORT_H_
#define TRAINLAB_EXPERIMENTS_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace trainlab::experiments {

struct ReportFiles {
  std::string report;              // DIR/REPORT.md
  std::vector<std::string> plots;  // DIR/*.svg drawn
  std::string plot_problem;        // why plots are missing, when they are
};

// Reads every results file in `dir` and writes DIR/REPORT.md and the plots. An error when `dir`
// holds no results file, or one that cannot be read.
absl::StatusOr<ReportFiles> RenderReport(const std::string& dir);

// Markdown putting two result sets side by side: per experiment and configuration, mean epoch,
// training and data-loading time, last loss and top-1, and the ratio other / this.
absl::StatusOr<std::string> RenderComparison(const std::string& dir, const std::string& other_dir);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_REPORT_H_
