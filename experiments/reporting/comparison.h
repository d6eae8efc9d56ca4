// --compare: two result sets side by side, as Markdown: per experiment and variant, mean epoch,
// training and data-loading time, last loss and top-1, and the ratio other / this.
//
// Example:
//   absl::StatusOr<std::string> md = RenderComparison("/tmp/cpu", "/tmp/gpu");
#ifndef TRAINLAB_EXPERIMENTS_REPORTING_COMPARISON_H_
#define TRAINLAB_EXPERIMENTS_REPORTING_COMPARISON_H_

#include <string>

#include "absl/status/statusor.h"

namespace trainlab::experiments {

absl::StatusOr<std::string> RenderComparison(const std::string& dir, const std::string& other_dir);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_REPORTING_COMPARISON_H_
