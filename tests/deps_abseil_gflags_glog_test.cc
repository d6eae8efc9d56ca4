// Abseil, gflags and glog are linked and usable.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "gtest/gtest.h"

DEFINE_int32(deps_test_workers, 2, "A flag this test parses from a made-up argv.");

namespace {

absl::StatusOr<int> ParsePositive(int v) {
  if (v <= 0) return absl::InvalidArgumentError(absl::StrCat("not positive: ", v));
  return v;
}

TEST(Abseil, StatusOrCarriesAValueOrAnError) {
  ASSERT_TRUE(ParsePositive(3).ok());
  EXPECT_EQ(*ParsePositive(3), 3);
  absl::StatusOr<int> bad = ParsePositive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "not positive: -1");
}

TEST(Gflags, ParsesAFlagFromArgv) {
  std::vector<std::string> args = {"prog", "--deps_test_workers=7", "rest"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  char** p = argv.data();
  gflags::ParseCommandLineFlags(&argc, &p, /*remove_flags=*/true);
  EXPECT_EQ(FLAGS_deps_test_workers, 7);
  EXPECT_EQ(argc, 2);  // "prog" and "rest" remain
}

TEST(Glog, WritesALineToTheSinkItWasGiven) {
  struct Capture : google::LogSink {
    std::string last;
    void send(google::LogSeverity, const char*, const char*, int, const struct ::tm*,
              const char* message, size_t len) override {
      last.assign(message, len);
    }
  } sink;
  google::AddLogSink(&sink);
  LOG(INFO) << "hello from glog " << 42;
  google::RemoveLogSink(&sink);
  EXPECT_EQ(sink.last, "hello from glog 42");
}

}  // namespace
