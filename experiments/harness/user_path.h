// A path from the user's command line. `bazel run` starts a binary in its runfiles tree, not where
// the user typed the command, and says where that was in BUILD_WORKING_DIRECTORY: a relative
// `--results_dir=out` means the user's out/, not the runfiles'.
//
// Example:
//   std::string dir = UserPath(options.results_dir);  // "/home/me/out" for "out" under bazel run
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_USER_PATH_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_USER_PATH_H_

#include <cstdlib>
#include <filesystem>
#include <string>

namespace trainlab::experiments {

inline std::string UserPath(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr && *wd != '\0') {
    return (std::filesystem::path(wd) / path).string();
  }
  return path;
}

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_USER_PATH_H_
