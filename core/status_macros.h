// Early-return helpers for absl::Status / absl::StatusOr, as in Abseil's internal status_macros.
//
// Example:
//   absl::StatusOr<Dataset> Load(const std::string& dir) {
//     TRAINLAB_RETURN_IF_ERROR(CheckDir(dir));
//     TRAINLAB_ASSIGN_OR_RETURN(std::string bytes, ReadFile(dir + "/data.bin"));
//     return Parse(bytes);
//   }
#ifndef TRAINLAB_CORE_STATUS_MACROS_H_
#define TRAINLAB_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns the Status of `expr` from the enclosing function when it is not OK.
#define TRAINLAB_RETURN_IF_ERROR(expr)        \
  do {                                        \
    if (absl::Status _s = (expr); !_s.ok()) { \
      return _s;                              \
    }                                         \
  } while (0)

#define TRAINLAB_CONCAT_INNER(a, b) a##b
#define TRAINLAB_CONCAT(a, b) TRAINLAB_CONCAT_INNER(a, b)

// Evaluates the StatusOr `expr`; returns its Status when not OK, else moves its value into `lhs`
// (a declaration or an assignable expression).
#define TRAINLAB_ASSIGN_OR_RETURN(lhs, expr)               \
  auto TRAINLAB_CONCAT(_statusor_, __LINE__) = (expr);     \
  if (!TRAINLAB_CONCAT(_statusor_, __LINE__).ok())         \
    return TRAINLAB_CONCAT(_statusor_, __LINE__).status(); \
  lhs = std::move(*TRAINLAB_CONCAT(_statusor_, __LINE__))

#endif  // TRAINLAB_CORE_STATUS_MACROS_H_
