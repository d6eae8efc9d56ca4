#include "experiments/harness/error_boundary.h"

#include <cstdio>
#include <exception>

#include "absl/strings/str_cat.h"
#include "core/torch_error.h"

namespace trainlab::experiments {

absl::Status Guarded(const std::function<absl::Status()>& body) {
  try {
    return body();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("LibTorch: ", TorchErrorLine(e)));
  } catch (const std::exception& e) {
    return absl::InternalError(TorchErrorLine(e));
  } catch (...) {
    return absl::InternalError("unknown exception");
  }
}

int ReportError(const std::string& program, const absl::Status& status) {
  std::fflush(stdout);
  std::string message(status.message());
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "%s: error: %s\n", program.c_str(), message.c_str());
  return 1;
}

}  // namespace trainlab::experiments
