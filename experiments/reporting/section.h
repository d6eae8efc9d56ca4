// An experiment's section of the write-up, as data: its tables, its sentences, the one-sentence
// answer to its question (computed from the data) and its plots, in order. The terminal shows a
// section as fixed-width text (RenderSectionText) at the end of a run, and REPORT.md shows the
// same blocks as Markdown (markdown.h): one set of figures, two renderings.
//
// Example (c3_report.cc):
//   Section s;
//   s.AddTable(WorkersTable(result));
//   s.AddAnswer(absl::StrCat("the best worker count for total runtime is **", best, "**."));
//   s.AddPlot({.file = "c3.svg", ...});
#ifndef TRAINLAB_EXPERIMENTS_REPORTING_SECTION_H_
#define TRAINLAB_EXPERIMENTS_REPORTING_SECTION_H_

#include <string>
#include <utility>
#include <vector>

#include "experiments/reporting/plot.h"
#include "experiments/reporting/table.h"

namespace trainlab::experiments {

struct Block {
  enum class Kind { kTable, kText, kAnswer, kPlot };
  Kind kind = Kind::kText;
  Table table;       // kTable
  std::string text;  // kText, kAnswer: Markdown inline markup allowed (**bold**, `code`)
  Plot plot;         // kPlot
};

struct Section {
  std::vector<Block> blocks;

  void AddTable(Table t) { blocks.push_back({.kind = Block::Kind::kTable, .table = std::move(t)}); }
  void AddText(std::string t) {
    blocks.push_back({.kind = Block::Kind::kText, .text = std::move(t)});
  }
  void AddAnswer(std::string t) {
    blocks.push_back({.kind = Block::Kind::kAnswer, .text = std::move(t)});
  }
  void AddPlot(Plot p) { blocks.push_back({.kind = Block::Kind::kPlot, .plot = std::move(p)}); }
  // The section's tables, in order.
  std::vector<const Table*> Tables() const;
};

// "===== TITLE =====", then each table in fixed-width columns and each sentence without its
// Markdown markup ("Answer: ..."); plots are left to REPORT.md.
std::string RenderSectionText(const std::string& title, const Section& section);

// `text` without Markdown's emphasis and code marks (** and `).
std::string PlainText(const std::string& text);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_REPORTING_SECTION_H_
