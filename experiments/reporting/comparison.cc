// RenderComparison (comparison.h): two result sets side by side.
#include "experiments/reporting/comparison.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experiments/reporting/experiment_report.h"
#include "experiments/reporting/lab_order.h"
#include "experiments/reporting/markdown.h"
#include "experiments/reporting/report.h"

namespace trainlab::experiments {
namespace {

std::string Where(const std::map<std::string, ResultsFile>& sets) {
  const nlohmann::json& env = sets.begin()->second.environment;
  auto get = [&env](const char* key) {
    return env.contains(key) && env[key].is_string() ? env[key].get<std::string>() : "?";
  };
  return absl::StrCat(get("cpu_model"), ", device ", get("device"), ", ", get("date"));
}

}  // namespace

absl::StatusOr<std::string> RenderComparison(const std::string& dir, const std::string& other_dir) {
  TRAINLAB_ASSIGN_OR_RETURN(auto a, ReadResultSets(dir));
  TRAINLAB_ASSIGN_OR_RETURN(auto b, ReadResultSets(other_dir));
  MarkdownWriter w(dir, /*draw_plots=*/false);
  w.Line("# trainlab: two result sets side by side");
  w.Line();
  w.Line(absl::StrCat("- **this**: `", dir, "` (", Where(a), ")"));
  w.Line(absl::StrCat("- **other**: `", other_dir, "` (", Where(b), ")"));
  w.Line();
  w.Line(
      "Ratios are other / this: below 1 means the other set was faster (for times) or lower (for "
      "loss).");
  w.Line();
  for (const std::string& name : LabOrder()) {
    if (!a.count(name) || !b.count(name) || name == "q1_q4") continue;
    w.Line(absl::StrCat("## ", name));
    w.Line();
    Table t{.header = {"configuration", "figure", "this", "other", "other / this"}};
    for (const VariantResult& va : a[name].result.variants) {
      const VariantResult* vb = b[name].result.Find(va.label);
      if (vb == nullptr || va.repeats.empty()) continue;
      struct Figure {
        const char* what;
        Spread x, y;
        bool seconds;
      };
      const Figure figures[] = {
          {"epoch time (mean)", va.MeanOf(&EpochStats::epoch_s), vb->MeanOf(&EpochStats::epoch_s),
           true},
          {"training time (mean)", va.MeanOf(&EpochStats::train_s),
           vb->MeanOf(&EpochStats::train_s), true},
          {"data loading (mean)", va.MeanOf(&EpochStats::load_s), vb->MeanOf(&EpochStats::load_s),
           true},
          {"last epoch loss", va.LastOf(&EpochStats::loss), vb->LastOf(&EpochStats::loss), false},
          {"last epoch top-1 %", va.LastOf(&EpochStats::top1), vb->LastOf(&EpochStats::top1),
           false},
      };
      for (const Figure& f : figures) {
        t.rows.push_back({va.label, f.what, f.seconds ? FormatSeconds(f.x) : FormatValue(f.x, 4),
                          f.seconds ? FormatSeconds(f.y) : FormatValue(f.y, 4),
                          FormatRatio(f.y, f.x)});
      }
    }
    w.AddTable(t);
  }
  return w.text();
}

}  // namespace trainlab::experiments
