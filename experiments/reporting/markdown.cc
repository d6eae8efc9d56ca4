#include "experiments/reporting/markdown.h"

#include "absl/strings/str_cat.h"

namespace trainlab::experiments {

void MarkdownWriter::Line(const std::string& s) { absl::StrAppend(&md_, s, "\n"); }

void MarkdownWriter::AddTable(const Table& t) {
  md_ += RenderMarkdown(t);
  Line();
}

void MarkdownWriter::AddSection(const Section& section) {
  for (const Block& b : section.blocks) {
    switch (b.kind) {
      case Block::Kind::kTable:
        AddTable(b.table);
        break;
      case Block::Kind::kText:
        Line(b.text);
        Line();
        break;
      case Block::Kind::kAnswer:
        Line(absl::StrCat("**Answer:** ", b.text));
        Line();
        break;
      case Block::Kind::kPlot:
        AddPlot(b.plot);
        break;
    }
  }
}

void MarkdownWriter::AddPlot(const Plot& p) {
  if (!draw_) {
    if (plot_problem_.empty()) {
      plot_problem_ =
          "gnuplot is not installed: install Debian's gnuplot-nox (./bazelw does) and re-render "
          "with `bazel run //experiments:report -- DIR`";
    }
    return;
  }
  if (absl::Status st = DrawSvg(dir_, p); !st.ok()) {
    if (plot_problem_.empty()) plot_problem_ = std::string(st.message());
    return;
  }
  plots_.push_back(absl::StrCat(dir_, "/", p.file));
  Line(absl::StrCat("![", p.title, "](", p.file, ")"));
  Line();
}

}  // namespace trainlab::experiments
