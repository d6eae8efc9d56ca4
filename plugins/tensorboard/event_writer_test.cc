#include "plugins/tensorboard/event_writer.h"

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "plugins/tensorboard/event.pb.h"
#include "plugins/tensorboard/hparams.pb.h"
#include "plugins/tensorboard/record.h"
#include "tests/test_dir.h"

namespace trainlab::tensorboard {
namespace {

using ::trainlab::experiments::FreshTestDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Every event of the file at `path`, parsed by protobuf's own parser.
std::vector<proto::Event> ReadEvents(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> records = ReadRecords(ReadFile(path));
  EXPECT_TRUE(records.ok()) << records.status();
  std::vector<proto::Event> events;
  if (!records.ok()) return events;
  for (const std::string& record : *records) {
    proto::Event event;
    EXPECT_TRUE(event.ParseFromString(record))
        << "an unparsable event of " << record.size() << " bytes";
    events.push_back(event);
  }
  return events;
}

std::unique_ptr<EventWriter> OpenOrDie(const std::string& dir, EventWriterOptions options = {}) {
  absl::StatusOr<std::unique_ptr<EventWriter>> writer = EventWriter::Open(dir, options);
  EXPECT_TRUE(writer.ok()) << writer.status();
  return writer.ok() ? std::move(*writer) : nullptr;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST(EventWriterTest, WritesWhatTensorBoardReads) {
  const std::string dir = FreshTestDir("tensorboard_every_kind");
  const double before = Now();
  std::unique_ptr<EventWriter> writer = OpenOrDie(dir);
  ASSERT_NE(writer, nullptr);
  writer->Scalar("loss/train", 0.25, 3, 1700000000.5);
  writer->Scalar("lr", 0.1, 4);
  writer->Scalars({{"a", 1.0}, {"b", -2.5}, {"c", 1e6}}, 5);
  writer->Text("notes", "hi **x**", 6);
  writer->HParamsStart({{"lr", 0.1}, {"optimizer", "sgd"}, {"amp", true}, {"batch", 128.0}},
                       "group", 1700000001.0);
  writer->Purge(7);
  const std::string png("\x89PNG\r\n\x1a\nfake", 12);
  writer->Image("sample", png, 32, 16, 3, 8);
  writer->HParamsEnd(proto::STATUS_SUCCESS, 1700000002.0);
  ASSERT_TRUE(writer->Flush().ok()) << writer->status();
  const double after = Now();

  const std::vector<proto::Event> events = ReadEvents(writer->path());
  ASSERT_EQ(events.size(), 10u);

  // The file's first event.
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_EQ(events[0].step(), 0);
  EXPECT_GE(events[0].wall_time(), before - 1);
  EXPECT_LE(events[0].wall_time(), after + 1);

  // Scalars: one Value each, simple_value a float, wall time given or now.
  ASSERT_TRUE(events[1].has_summary());
  ASSERT_EQ(events[1].summary().value_size(), 1);
  EXPECT_EQ(events[1].summary().value(0).tag(), "loss/train");
  EXPECT_EQ(events[1].summary().value(0).simple_value(), 0.25f);
  EXPECT_EQ(events[1].step(), 3);
  EXPECT_EQ(events[1].wall_time(), 1700000000.5);
  EXPECT_EQ(events[2].summary().value(0).tag(), "lr");
  EXPECT_EQ(events[2].summary().value(0).simple_value(), 0.1f);
  EXPECT_EQ(events[2].step(), 4);
  EXPECT_GE(events[2].wall_time(), before - 1);
  EXPECT_LE(events[2].wall_time(), after + 1);

  // Scalars(): three values in one event.
  ASSERT_EQ(events[3].summary().value_size(), 3);
  EXPECT_EQ(events[3].step(), 5);
  EXPECT_EQ(events[3].summary().value(0).tag(), "a");
  EXPECT_EQ(events[3].summary().value(1).tag(), "b");
  EXPECT_EQ(events[3].summary().value(1).simple_value(), -2.5f);
  EXPECT_EQ(events[3].summary().value(2).simple_value(), 1e6f);

  // Text: what tensorboard.plugins.text.summary_v2.text_pb("notes", "hi **x**") writes.
  const proto::Summary::Value& text = events[4].summary().value(0);
  EXPECT_EQ(events[4].step(), 6);
  EXPECT_EQ(text.tag(), "notes");
  EXPECT_EQ(text.metadata().plugin_data().plugin_name(), "text");
  EXPECT_EQ(text.metadata().plugin_data().content(), "");
  ASSERT_TRUE(text.has_tensor());
  EXPECT_EQ(text.tensor().dtype(), proto::DT_STRING);
  EXPECT_EQ(text.tensor().tensor_shape().dim_size(), 0);
  ASSERT_EQ(text.tensor().string_val_size(), 1);
  EXPECT_EQ(text.tensor().string_val(0), "hi **x**");
  // The bytes TensorBoard's make_tensor_proto("hi **x**", dtype=DT_STRING) serializes to.
  EXPECT_EQ(text.tensor().SerializeAsString(), std::string("\x08\x07\x12\x00"
                                                           "B\x08hi **x**",
                                                           14));

  // hparams session start, at step 0.
  EXPECT_EQ(events[5].step(), 0);
  const proto::Summary::Value& start = events[5].summary().value(0);
  EXPECT_EQ(start.tag(), "_hparams_/session_start_info");
  EXPECT_EQ(start.metadata().plugin_data().plugin_name(), "hparams");
  // metadata.NULL_TENSOR: make_tensor_proto([], dtype=DT_FLOAT, shape=(0,)).
  EXPECT_EQ(start.tensor().SerializeAsString(), std::string("\x08\x01\x12\x02\x12\x00", 6));
  proto::HParamsPluginData start_data;
  ASSERT_TRUE(start_data.ParseFromString(start.metadata().plugin_data().content()));
  EXPECT_EQ(start_data.version(), 0);
  ASSERT_TRUE(start_data.has_session_start_info());
  const proto::SessionStartInfo& info = start_data.session_start_info();
  EXPECT_EQ(info.group_name(), "group");
  EXPECT_EQ(info.start_time_secs(), 1700000001.0);
  ASSERT_EQ(info.hparams_size(), 4);
  EXPECT_EQ(info.hparams().at("lr").number_value(), 0.1);
  EXPECT_EQ(info.hparams().at("batch").number_value(), 128.0);
  ASSERT_TRUE(info.hparams().at("optimizer").has_string_value());  // a string, not a bool
  EXPECT_EQ(info.hparams().at("optimizer").string_value(), "sgd");
  ASSERT_TRUE(info.hparams().at("amp").has_bool_value());
  EXPECT_TRUE(info.hparams().at("amp").bool_value());

  // Purge: file_version then session_log START, both at the purge step.
  EXPECT_EQ(events[6].step(), 7);
  EXPECT_EQ(events[6].file_version(), "brain.Event:2");
  EXPECT_EQ(events[7].step(), 7);
  ASSERT_TRUE(events[7].has_session_log());
  EXPECT_EQ(events[7].session_log().status(), proto::SessionLog::START);

  // Image.
  const proto::Summary::Value& image = events[8].summary().value(0);
  EXPECT_EQ(events[8].step(), 8);
  EXPECT_EQ(image.tag(), "sample");
  ASSERT_TRUE(image.has_image());
  EXPECT_EQ(image.image().height(), 32);
  EXPECT_EQ(image.image().width(), 16);
  EXPECT_EQ(image.image().colorspace(), 3);
  EXPECT_EQ(image.image().encoded_image_string(), png);

  // hparams session end.
  EXPECT_EQ(events[9].step(), 0);
  const proto::Summary::Value& end = events[9].summary().value(0);
  EXPECT_EQ(end.tag(), "_hparams_/session_end_info");
  EXPECT_EQ(end.metadata().plugin_data().plugin_name(), "hparams");
  proto::HParamsPluginData end_data;
  ASSERT_TRUE(end_data.ParseFromString(end.metadata().plugin_data().content()));
  ASSERT_TRUE(end_data.has_session_end_info());
  EXPECT_EQ(end_data.session_end_info().status(), proto::STATUS_SUCCESS);
  EXPECT_EQ(end_data.session_end_info().end_time_secs(), 1700000002.0);
}

TEST(EventWriterTest, NamesFilesLikeTensorFlowAndNeverShares) {
  const std::string dir = FreshTestDir("tensorboard_names") + "/new/nested";
  std::unique_ptr<EventWriter> first = OpenOrDie(dir);
  std::unique_ptr<EventWriter> second = OpenOrDie(dir);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_NE(first->path(), second->path());
  const std::regex pattern(R"(events\.out\.tfevents\.\d+\..+\.\d+\.\d+)");
  for (const EventWriter* writer : {first.get(), second.get()}) {
    EXPECT_EQ(std::filesystem::path(writer->path()).parent_path(), dir);
    const std::string name = std::filesystem::path(writer->path()).filename();
    EXPECT_TRUE(std::regex_match(name, pattern)) << name;
    EXPECT_NE(name.find("." + std::to_string(getpid()) + "."), std::string::npos) << name;
  }
  first->Scalar("x", 1, 1);
  second->Scalar("x", 2, 1);
  ASSERT_TRUE(first->Flush().ok());
  ASSERT_TRUE(second->Flush().ok());
  const std::vector<proto::Event> events = ReadEvents(second->path());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_EQ(events[1].summary().value(0).simple_value(), 2.0f);
}

TEST(EventWriterTest, BackgroundThreadWritesWithoutFlush) {
  const std::string dir = FreshTestDir("tensorboard_background");
  std::unique_ptr<EventWriter> writer = OpenOrDie(dir, {.flush_every_s = 0.05});
  ASSERT_NE(writer, nullptr);
  writer->Scalar("loss", 1.5, 1);
  size_t count = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    count = ReadEvents(writer->path()).size();
    if (count == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(count, 2u) << "the scalar never reached the file without Flush()";
}

TEST(EventWriterTest, BuffersUntilFlushOrDestruction) {
  const std::string dir = FreshTestDir("tensorboard_destructor");
  std::unique_ptr<EventWriter> writer = OpenOrDie(dir, {.flush_every_s = 3600});
  ASSERT_NE(writer, nullptr);
  const std::string path = writer->path();
  writer->Scalar("loss", 1.5, 1);
  EXPECT_EQ(ReadEvents(path).size(), 1u);  // the first event alone: nothing written on the call
  writer.reset();
  const std::vector<proto::Event> events = ReadEvents(path);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].summary().value(0).tag(), "loss");
}

TEST(EventWriterTest, ManyThreadsLoseNothing) {
  const std::string dir = FreshTestDir("tensorboard_threads");
  std::unique_ptr<EventWriter> writer = OpenOrDie(dir, {.flush_every_s = 0.001});
  ASSERT_NE(writer, nullptr);
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        writer->Scalar("thread" + std::to_string(t), i, i);
        if (i % 100 == 0) (void)writer->Flush();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(writer->Flush().ok());
  const std::vector<proto::Event> events = ReadEvents(writer->path());
  ASSERT_EQ(events.size(), 1u + kThreads * kEach);
  std::vector<int> next(kThreads, 0);  // each thread's events arrive in its order
  for (size_t i = 1; i < events.size(); ++i) {
    const int t = events[i].summary().value(0).tag().back() - '0';
    EXPECT_EQ(events[i].step(), next[t]++);
  }
}

TEST(EventWriterTest, OpenRefusesAFileAndAPathBelowAFile) {
  const std::string dir = FreshTestDir("tensorboard_not_a_dir");
  const std::string file = dir + "/plain_file";
  std::ofstream(file) << "not a folder";

  absl::StatusOr<std::unique_ptr<EventWriter>> writer = EventWriter::Open(file);
  ASSERT_FALSE(writer.ok());
  EXPECT_NE(writer.status().message().find(file), absl::string_view::npos) << writer.status();
  EXPECT_NE(writer.status().message().find("not a directory"), absl::string_view::npos)
      << writer.status();

  // Unwritable: below a regular file (a read-only folder stops no one running as root).
  const std::string below = file + "/runs";
  writer = EventWriter::Open(below);
  ASSERT_FALSE(writer.ok());
  EXPECT_NE(writer.status().message().find(below), absl::string_view::npos) << writer.status();
  EXPECT_NE(writer.status().message().find("Not a directory"), absl::string_view::npos)
      << writer.status();
}

TEST(EventWriterTest, OpenRefusesAReadOnlyFolder) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes into read-only folders";
  const std::string dir = FreshTestDir("tensorboard_read_only");
  std::filesystem::permissions(
      dir, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
  absl::StatusOr<std::unique_ptr<EventWriter>> writer = EventWriter::Open(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(writer.status().message().find(dir + "/events.out.tfevents."), absl::string_view::npos)
      << writer.status();
  EXPECT_NE(writer.status().message().find("Permission denied"), absl::string_view::npos)
      << writer.status();
}

TEST(EventWriterTest, OpenRefusesABadFlushPeriod) {
  const std::string dir = FreshTestDir("tensorboard_bad_period");
  EXPECT_EQ(EventWriter::Open("").status().code(), absl::StatusCode::kInvalidArgument);
  for (const double period : {0.0, -1.0, 1e300}) {
    absl::StatusOr<std::unique_ptr<EventWriter>> writer =
        EventWriter::Open(dir, {.flush_every_s = period});
    EXPECT_EQ(writer.status().code(), absl::StatusCode::kInvalidArgument) << period;
  }
}

// In a child process, with files limited to 4 KiB: the writer reports the error, warns once and
// keeps accepting calls. Exits 0 when all held, else a code naming the check that failed.
void FillTheDisk(const std::string& dir) {
  // Capture our own stderr to count the warnings, then replay it for the death test's regex.
  const std::string captured = dir + "/stderr.txt";
  std::fflush(stderr);
  const int saved_stderr = dup(2);
  if (std::freopen(captured.c_str(), "w", stderr) == nullptr) _exit(2);

  signal(SIGXFSZ, SIG_IGN);  // EFBIG from write(2) instead of a signal
  const rlimit limit = {4096, 4096};
  if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(3);

  int code = 0;
  {
    absl::StatusOr<std::unique_ptr<EventWriter>> writer = EventWriter::Open(dir);
    if (!writer.ok()) _exit(4);
    for (int step = 0; step < 1000; ++step) (*writer)->Scalar("loss/train", 1.0 / (step + 1), step);
    const absl::Status failed = (*writer)->Flush();
    if (failed.ok()) code = 5;
    if (failed.code() != absl::StatusCode::kResourceExhausted) code = 6;
    if (failed.message().find((*writer)->path()) == absl::string_view::npos) code = 7;
    // Every later call is accepted and dropped; the first error stays.
    for (int step = 0; step < 1000; ++step) (*writer)->Scalar("loss/train", 1.0, step);
    (*writer)->Text("notes", "more", 1);
    (*writer)->Purge(5);
    (*writer)->HParamsEnd(proto::STATUS_FAILURE, 1.0);
    if ((*writer)->Flush() != failed) code = 8;
    if ((*writer)->status() != failed) code = 9;
  }  // the destructor writes nothing more either

  std::fflush(stderr);
  dup2(saved_stderr, 2);
  const std::string warnings = ReadFile(captured);
  std::fprintf(stderr, "%s", warnings.c_str());
  size_t count = 0;
  for (size_t at = warnings.find("the charts stop here"); at != std::string::npos;
       at = warnings.find("the charts stop here", at + 1)) {
    ++count;
  }
  if (count != 1) code = 10;
  std::fflush(stderr);
  _exit(code);
}

TEST(EventWriterDeathTest, FullDiskWarnsOnceAndTrainingGoesOn) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the writer's thread runs in the child
  const std::string dir = FreshTestDir("tensorboard_disk_full");
  EXPECT_EXIT(FillTheDisk(dir), ::testing::ExitedWithCode(0),
              "^tensorboard: [^ ]+/events\\.out\\.tfevents\\.[^ ]+: File too large: "
              "the charts stop here; training goes on\n$");
}

}  // namespace
}  // namespace trainlab::tensorboard
