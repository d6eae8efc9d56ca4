// A table of an experiment's section: a header and rows of already formatted cells, rendered
// for the terminal (fixed-width columns) and for REPORT.md (Markdown) from the same cells, so the
// two can never show different figures.
//
// Example:
//   Table t{.header = {"workers", "total runtime"}};
//   t.rows.push_back({"4", FormatSeconds(total)});
//   std::fputs(RenderText(t).c_str(), stdout);   // workers  total runtime
//                                                //       4        12.3400s
#ifndef TRAINLAB_EXPERIMENTS_REPORTING_TABLE_H_
#define TRAINLAB_EXPERIMENTS_REPORTING_TABLE_H_

#include <string>
#include <vector>

namespace trainlab::experiments {

enum class Align { kLeft, kRight };

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  // Per column; columns past its end: the first left-aligned (names), the others right (figures).
  std::vector<Align> align;

  Align AlignOf(size_t column) const {
    if (column < align.size()) return align[column];
    return column == 0 ? Align::kLeft : Align::kRight;
  }
};

// "| a | b |", "| --- | --- |", then a line per row; '|' in a cell is escaped.
std::string RenderMarkdown(const Table& table);
// Columns as wide as their widest cell, two spaces apart, no trailing spaces.
std::string RenderText(const Table& table);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_REPORTING_TABLE_H_
