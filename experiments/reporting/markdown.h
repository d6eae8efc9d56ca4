// Markdown for REPORT.md and COMPARISON.md: lines, tables, and an experiment's section with its
// plots drawn beside the file (plot.h). Without gnuplot the tables stay and one sentence says how
// to get the plots.
//
// Example:
//   MarkdownWriter w("/tmp/r", /*draw_plots=*/GnuplotAvailable());
//   w.Line("## C3: loader workers");
//   w.AddSection(section);
//   TRAINLAB_RETURN_IF_ERROR(WriteFileAtomically("/tmp/r/REPORT.md", w.text()));
#ifndef TRAINLAB_EXPERIMENTS_REPORTING_MARKDOWN_H_
#define TRAINLAB_EXPERIMENTS_REPORTING_MARKDOWN_H_

#include <string>
#include <vector>

#include "experiments/reporting/section.h"

namespace trainlab::experiments {

class MarkdownWriter {
 public:
  MarkdownWriter(std::string dir, bool draw_plots) : dir_(std::move(dir)), draw_(draw_plots) {}

  void Line(const std::string& s = "");
  // The table, then a blank line.
  void AddTable(const Table& t);
  // Each block of `section`: tables, sentences ("**Answer:** ..." for the answer), plots drawn
  // into the folder and linked.
  void AddSection(const Section& section);

  const std::string& text() const { return md_; }
  const std::vector<std::string>& plots() const { return plots_; }   // paths of the SVGs drawn
  const std::string& plot_problem() const { return plot_problem_; }  // why plots are missing

 private:
  void AddPlot(const Plot& p);

  std::string dir_;
  bool draw_;
  std::string md_;
  std::vector<std::string> plots_;
  std::string plot_problem_;
};

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_REPORTING_MARKDOWN_H_
