#include "experiments/reporting/lab_order.h"

#include "absl/strings/str_split.h"

#ifndef TRAINLAB_LAB_ORDER
#error \
    "built by experiments/reporting/BUILD.bazel, which defines TRAINLAB_LAB_ORDER from experiments.bzl"
#endif

namespace trainlab::experiments {

const std::vector<std::string>& LabOrder() {
  static const auto* order = new std::vector<std::string>(absl::StrSplit(TRAINLAB_LAB_ORDER, ','));
  return *order;
}

}  // namespace trainlab::experiments
