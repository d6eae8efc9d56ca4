#include "experiments/reporting/section.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace trainlab::experiments {

std::vector<const Table*> Section::Tables() const {
  std::vector<const Table*> out;
  for (const Block& b : blocks) {
    if (b.kind == Block::Kind::kTable) out.push_back(&b.table);
  }
  return out;
}

std::string PlainText(const std::string& text) {
  return absl::StrReplaceAll(text, {{"**", ""}, {"`", ""}});
}

std::string RenderSectionText(const std::string& title, const Section& section) {
  std::string out = absl::StrCat("\n===== ", title, " =====\n");
  bool first = true;
  for (const Block& b : section.blocks) {
    if (b.kind == Block::Kind::kPlot) continue;
    if (!first) out += "\n";
    first = false;
    switch (b.kind) {
      case Block::Kind::kTable:
        out += RenderText(b.table);
        break;
      case Block::Kind::kText:
        absl::StrAppend(&out, PlainText(b.text), "\n");
        break;
      case Block::Kind::kAnswer:
        absl::StrAppend(&out, "Answer: ", PlainText(b.text), "\n");
        break;
      case Block::Kind::kPlot:
        break;
    }
  }
  return out;
}

}  // namespace trainlab::experiments
