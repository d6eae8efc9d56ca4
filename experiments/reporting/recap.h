// The recap of C6 and C7: per variant the mean training time per epoch, mean loss and mean top-1
// over the epochs (medians over repeats), a ranking by each, and loss and top-1 per epoch as
// plots.
//
// Example (c6_report.cc):
//   Section C6Section(const ExperimentResult& r) { return RecapSection(r, "c6", "optimizer"); }
#ifndef TRAINLAB_EXPERIMENTS_REPORTING_RECAP_H_
#define TRAINLAB_EXPERIMENTS_REPORTING_RECAP_H_

#include <string>

#include "experiments/reporting/section.h"
#include "experiments/results/result.h"

namespace trainlab::experiments {

// `name`: the experiment ("c6"), for the plots' files and titles; `what`: the first column's
// heading ("optimizer").
Section RecapSection(const ExperimentResult& result, const std::string& name,
                     const std::string& what);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_REPORTING_RECAP_H_
