// C6's section: the optimizers' recap (recap.h).
#include "experiments/reporting/experiment_report.h"
#include "experiments/reporting/recap.h"

namespace trainlab::experiments {
namespace {

const bool kRegistered = ReportRegistry::Global().Register(
    "c6",
    {.title = "C6: optimizers",
     .question = "SGD, SGD with Nesterov, Adagrad, Adadelta and Adam: time, loss and accuracy.",
     .section = [](const ExperimentResult& r) { return RecapSection(r, "c6", "optimizer"); }});

}  // namespace
}  // namespace trainlab::experiments
