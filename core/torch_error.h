// LibTorch's exceptions, named where they become absl::Status values (the one error model below
// main()): the message of a c10::Error without its C++ stack, first line only.
//
// Example:
//   try { module = torch::jit::load(path); }
//   catch (const std::exception& e) {
//     return absl::InvalidArgumentError(absl::StrCat(path, ": ", TorchErrorLine(e)));
//   }
#ifndef TRAINLAB_CORE_TORCH_ERROR_H_
#define TRAINLAB_CORE_TORCH_ERROR_H_

#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace trainlab {

inline std::string TorchErrorLine(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  const std::string what = c10 != nullptr ? c10->what_without_backtrace() : e.what();
  return what.substr(0, what.find('\n'));
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_TORCH_ERROR_H_
