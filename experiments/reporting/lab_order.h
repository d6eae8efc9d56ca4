// The lab's order of experiments: what `all` runs, REPORT.md lists and --compare walks. It is
// experiments/experiments.bzl's list (the one list of experiments), compiled in by the BUILD file.
//
// Example:
//   for (const std::string& name : LabOrder()) ...  // "c2", "c3", ..., "q1_q4"
#ifndef TRAINLAB_EXPERIMENTS_REPORTING_LAB_ORDER_H_
#define TRAINLAB_EXPERIMENTS_REPORTING_LAB_ORDER_H_

#include <string>
#include <vector>

namespace trainlab::experiments {

const std::vector<std::string>& LabOrder();

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_REPORTING_LAB_ORDER_H_
