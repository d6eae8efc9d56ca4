// For tests: a fresh, empty folder under the test's temporary directory.
//
// Example:
//   const std::string dir = FreshTestDir("ckpt_roundtrip");  // $TEST_TMPDIR/ckpt_roundtrip
#ifndef TRAINLAB_TESTS_TEST_DIR_H_
#define TRAINLAB_TESTS_TEST_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <string>

namespace trainlab::experiments {

inline std::string FreshTestDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base ? base : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace trainlab::experiments

#endif  // TRAINLAB_TESTS_TEST_DIR_H_
