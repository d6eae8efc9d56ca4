// C7's section: with and without batch norm, the same recap as C6 (recap.h).
#include "experiments/reporting/experiment_report.h"
#include "experiments/reporting/recap.h"

namespace trainlab::experiments {
namespace {

const bool kRegistered = ReportRegistry::Global().Register(
    "c7", {.title = "C7: without batch norm",
           .question = "What does batch norm do to training time, loss and accuracy?",
           .section = [](const ExperimentResult& r) { return RecapSection(r, "c7", "run"); }});

}  // namespace
}  // namespace trainlab::experiments
