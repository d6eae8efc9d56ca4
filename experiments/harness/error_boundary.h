// The one error boundary of every binary here: a library returns absl::Status; an exception from
// LibTorch (or anything else) is caught where the binary calls in and becomes one; main() prints
// one line and exits non-zero.
//
// Example:
//   const absl::Status st = Guarded([&] { return RenderReport(dir).status(); });
//   return st.ok() ? 0 : ReportError("report", st);   // "report: error: DIR: no such directory"
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_ERROR_BOUNDARY_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_ERROR_BOUNDARY_H_

#include <functional>
#include <string>

#include "absl/status/status.h"

namespace trainlab::experiments {

// Runs `body`, turning an exception into an absl::Status (LibTorch's without its C++ stack).
absl::Status Guarded(const std::function<absl::Status()>& body);

// Prints "<program>: error: <message>" (one line: newlines become spaces) to stderr; returns 1.
int ReportError(const std::string& program, const absl::Status& status);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_ERROR_BOUNDARY_H_
