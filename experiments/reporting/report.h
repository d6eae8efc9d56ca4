// REPORT.md: the lab's write-up, rendered from the results files an experiment run left in a
// folder (DIR/c2.json ... DIR/q1_q4.json, with their per-batch CSVs), with SVG plots beside it.
//
// The report is a walk over the experiments in the lab's order: for each, its title, its
// question and its section (experiment_report.h), the same section the binary printed at the end
// of its run. Before them, the environment the results were measured in; after them, Q5's
// pointer. Plots are drawn by gnuplot (Debian's gnuplot-nox); without it the report keeps every
// table and says how to get the plots.
//
// Example:
//   absl::StatusOr<ReportFiles> r = RenderReport("/tmp/r");            // /tmp/r/REPORT.md, *.svg
#ifndef TRAINLAB_EXPERIMENTS_REPORTING_REPORT_H_
#define TRAINLAB_EXPERIMENTS_REPORTING_REPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/results/results_file.h"

namespace trainlab::experiments {

struct ReportFiles {
  std::string report;              // DIR/REPORT.md
  std::vector<std::string> plots;  // DIR/*.svg drawn
  std::string plot_problem;        // why plots are missing, when they are
};

// Every results file in `dir` of an experiment this binary knows, checked (the codec, then each
// experiment's check of its summary). Errors: `dir` is missing, holds none, or one is unusable.
absl::StatusOr<std::map<std::string, ResultsFile>> ReadResultSets(const std::string& dir);

// Reads every results file in `dir` and writes DIR/REPORT.md and the plots.
absl::StatusOr<ReportFiles> RenderReport(const std::string& dir);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_REPORTING_REPORT_H_
