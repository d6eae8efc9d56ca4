// C5's section: mean epoch, training and data-loading time per device, and the CPU/GPU ratio.
#include "absl/strings/str_cat.h"
#include "core/host.h"
#include "core/status_macros.h"
#include "experiments/reporting/experiment_report.h"

namespace trainlab::experiments {
namespace {

Section C5Section(const ExperimentResult& result) {
  Section s;
  Table t{.header = {"device", "epoch time (mean)", "training (mean)", "data loading (mean)"}};
  for (const VariantResult& v : result.variants) {
    t.rows.push_back({v.label, FormatSeconds(v.MeanOf(&EpochStats::epoch_s)),
                      FormatSeconds(v.MeanOf(&EpochStats::train_s)),
                      FormatSeconds(v.MeanOf(&EpochStats::load_s))});
  }
  s.AddTable(std::move(t));
  s.AddText(absl::StrCat("Loader workers: ", SummaryInt(result.summary, "num_workers", -1), " (",
                         SummaryString(result.summary, "num_workers_source"), ")."));
  if (result.variants.size() > 1) {
    s.AddAnswer(absl::StrCat("an epoch on the CPU takes ",
                             FormatRatio(result.variants[0].MeanOf(&EpochStats::epoch_s),
                                         result.variants[1].MeanOf(&EpochStats::epoch_s)),
                             " the time of one on the GPU."));
  } else {
    s.AddAnswer(
        "no GPU here: only the CPU ran, so there is no GPU/CPU ratio in this report. Run the "
        "same command on a GPU machine and compare with `report --compare`.");
  }
  return s;
}

const bool kRegistered = ReportRegistry::Global().Register(
    "c5", {.title = "C5: GPU against CPU",
           .question = "How much faster is an epoch on the GPU?",
           .section = C5Section,
           .check_summary = [](const JsonReader& s) -> absl::Status {
             TRAINLAB_RETURN_IF_ERROR(s.Int("num_workers", 0, kMaxThreads).status());
             return s.String("num_workers_source").status();
           }});

}  // namespace
}  // namespace trainlab::experiments
