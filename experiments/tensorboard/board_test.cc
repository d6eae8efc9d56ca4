#include "experiments/tensorboard/board.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "plugins/tensorboard/event.pb.h"
#include "plugins/tensorboard/hparams.pb.h"
#include "plugins/tensorboard/record.h"
#include "tests/test_dir.h"

namespace trainlab::experiments {
namespace {

namespace fs = std::filesystem;
namespace pb = tensorboard::proto;

// Every event of every event file in `folder` (not its subfolders), in file-name order.
std::vector<pb::Event> EventsIn(const std::string& folder) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.is_regular_file() &&
        entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<pb::Event> events;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    absl::StatusOr<std::vector<std::string>> records = tensorboard::ReadRecords(bytes.str());
    EXPECT_TRUE(records.ok()) << records.status();
    if (!records.ok()) continue;
    for (const std::string& r : *records) {
      pb::Event e;
      EXPECT_TRUE(e.ParseFromString(r));
      events.push_back(e);
    }
  }
  return events;
}

// tag -> step -> value, over the scalar values of `events`.
std::map<std::string, std::map<int64_t, float>> Scalars(const std::vector<pb::Event>& events) {
  std::map<std::string, std::map<int64_t, float>> out;
  for (const pb::Event& e : events) {
    for (const auto& v : e.summary().value()) {
      if (v.value_case() == pb::Summary::Value::kSimpleValue) {
        out[v.tag()][e.step()] = v.simple_value();
      }
    }
  }
  return out;
}

TEST(RunFolderName, KeepsSafeCharactersAndReplacesTheRest) {
  EXPECT_EQ(RunFolderName("sgd with BN"), "sgd_with_BN");
  EXPECT_EQ(RunFolderName("channels_last+amp_bf16"), "channels_last+amp_bf16");
  EXPECT_EQ(RunFolderName("a/b"), "a_b");
  EXPECT_EQ(RunFolderName(".."), "_");
  EXPECT_EQ(RunFolderName(""), "run");
}

TEST(ExperimentBoard, RunFoldersFollowTheLabelAndTheRepeat) {
  const std::string dir = FreshTestDir("board_folders");
  auto one = ExperimentBoard::Open(dir, "c6", 1);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ((*one)->RunFolder("sgd nesterov", 1), dir + "/c6/sgd_nesterov");
  auto three = ExperimentBoard::Open(dir, "c8", 3);
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_EQ((*three)->RunFolder("eager", 2), dir + "/c8/eager/repeat-2");
}

TEST(ExperimentBoard, NotADirectoryIsOneErrorNamingTheFlag) {
  const std::string dir = FreshTestDir("board_not_dir");
  const std::string file = dir + "/plain";
  std::ofstream(file) << "x";
  auto board = ExperimentBoard::Open(file, "c2", 1);
  ASSERT_FALSE(board.ok());
  EXPECT_NE(std::string(board.status().message()).find("--tensorboard_dir"), std::string::npos)
      << board.status();
  EXPECT_EQ(std::string(board.status().message()).find('\n'), std::string::npos);
}

BatchRecord Batch(int64_t index, double loss) {
  return {.index = index,
          .size = 8,
          .wait_s = 0.5,
          .copy_s = 0.25,
          .train_s = 1.25,
          .loss = loss,
          .correct = 2,
          .lr = 0.01};
}

TEST(RunBoard, WritesBatchAndEpochScalarsOnOneStepAxis) {
  const std::string dir = FreshTestDir("board_run");
  auto board = ExperimentBoard::Open(dir, "c2", 1);
  ASSERT_TRUE(board.ok()) << board.status();
  (*board)->Text(board_tags::kSettings, "Settings:\n- Device: cpu");
  std::unique_ptr<RunBoard> run =
      (*board)->OpenRun("sgd", 1, {{"optimizer", std::string("sgd")}, {"lr", 0.01}}, 1);
  ASSERT_NE(run, nullptr);
  run->Batch(Batch(0, 2.5), 1);
  run->Batch(Batch(1, 2.0), 2);
  EpochStats e{.epoch = 1, .loss = 2.25, .top1 = 25, .load_s = 1, .train_s = 2.5, .epoch_s = 4};
  e.batches = {Batch(0, 2.5), Batch(1, 2.0)};
  EvalStats test{.loss = 2.1, .top1 = 30, .samples = 16};
  LoaderStageTimes stages{
      .read_s = 0.1, .crop_s = 0.2, .flip_s = 0.05, .normalize_s = 0.3, .assemble_s = 0.4};
  run->Epoch(e, &test, stages, 2);
  run->End(/*diverged=*/false);
  run.reset();

  const auto scalars = Scalars(EventsIn(dir + "/c2/sgd"));
  EXPECT_EQ(scalars.at("batch/loss"), (std::map<int64_t, float>{{1, 2.5f}, {2, 2.0f}}));
  EXPECT_FLOAT_EQ(scalars.at("batch/top1").at(1), 25.0f);  // 2 of 8
  EXPECT_FLOAT_EQ(scalars.at("batch/learning_rate").at(2), 0.01f);
  EXPECT_FLOAT_EQ(scalars.at("batch/images_per_s").at(1), 4.0f);  // 8 images in 2 s
  EXPECT_FLOAT_EQ(scalars.at("epoch/loss").at(2), 2.25f);
  EXPECT_FLOAT_EQ(scalars.at("epoch/avg_train_per_batch_s").at(2), 1.25f);
  EXPECT_FLOAT_EQ(scalars.at("epoch/epoch").at(2), 1.0f);
  EXPECT_FLOAT_EQ(scalars.at("test/top1").at(2), 30.0f);
  EXPECT_FLOAT_EQ(scalars.at("loader/normalize_s").at(2), 0.3f);
  EXPECT_EQ(scalars.at("epoch/loss").size(), 1u);

  // The HParams start (settings, group) and end (success) are in the run's file.
  bool started = false, ended = false;
  for (const pb::Event& ev : EventsIn(dir + "/c2/sgd")) {
    for (const auto& v : ev.summary().value()) {
      if (v.metadata().plugin_data().plugin_name() != "hparams") continue;
      pb::HParamsPluginData data;
      ASSERT_TRUE(data.ParseFromString(v.metadata().plugin_data().content()));
      if (v.tag() == "_hparams_/session_start_info") {
        started = true;
        EXPECT_EQ(data.session_start_info().group_name(), "c2/sgd");
        EXPECT_EQ(data.session_start_info().hparams().at("optimizer").string_value(), "sgd");
        EXPECT_DOUBLE_EQ(data.session_start_info().hparams().at("lr").number_value(), 0.01);
      }
      if (v.tag() == "_hparams_/session_end_info") {
        ended = true;
        EXPECT_EQ(data.session_end_info().status(), pb::STATUS_SUCCESS);
      }
    }
  }
  EXPECT_TRUE(started);
  EXPECT_TRUE(ended);

  // The experiment's own run holds the settings text.
  bool settings = false;
  for (const pb::Event& ev : EventsIn(dir + "/c2")) {
    for (const auto& v : ev.summary().value()) {
      if (v.tag() == "settings") {
        settings = true;
        EXPECT_EQ(v.tensor().string_val(0), "Settings:\n- Device: cpu");
      }
    }
  }
  EXPECT_TRUE(settings);
}

TEST(RunBoard, AResumedRunPurgesFromItsFirstStepAgain) {
  const std::string dir = FreshTestDir("board_resume");
  auto board = ExperimentBoard::Open(dir, "c2", 1);
  ASSERT_TRUE(board.ok()) << board.status();
  {
    std::unique_ptr<RunBoard> killed = (*board)->OpenRun("sgd", 1, {}, 1);
    ASSERT_NE(killed, nullptr);
    for (int64_t s = 1; s <= 5; ++s) killed->Batch(Batch(s - 1, 3.0), s);
  }
  std::unique_ptr<RunBoard> resumed = (*board)->OpenRun("sgd", 1, {}, 4);
  ASSERT_NE(resumed, nullptr);
  resumed.reset();
  bool purge_version = false, purge_start = false;
  for (const pb::Event& ev : EventsIn(dir + "/c2/sgd")) {
    if (ev.step() == 4 && ev.file_version() == "brain.Event:2") purge_version = true;
    if (ev.step() == 4 && ev.has_session_log() &&
        ev.session_log().status() == pb::SessionLog::START)
      purge_start = true;
  }
  EXPECT_TRUE(purge_version);
  EXPECT_TRUE(purge_start);
}

// The purge events (step, file_version / session_log START) among `events`: the steps.
std::vector<int64_t> PurgeSteps(const std::vector<pb::Event>& events) {
  std::vector<int64_t> out;
  for (const pb::Event& ev : events) {
    if (ev.has_session_log() && ev.session_log().status() == pb::SessionLog::START) {
      out.push_back(ev.step());
    }
  }
  return out;
}

TEST(RunBoard, EveryFileOpensWithARestartMarkAtItsFirstStep) {
  const std::string dir = FreshTestDir("board_again");
  for (int session = 0; session < 2; ++session) {
    auto board = ExperimentBoard::Open(dir, "c2", 1);
    ASSERT_TRUE(board.ok()) << board.status();
    std::unique_ptr<RunBoard> run = (*board)->OpenRun("sgd", 1, {}, 1);
    ASSERT_NE(run, nullptr);
    run->Batch(Batch(0, 2.0), 1);
  }
  // Each session's run file opens with a restart mark at step 1 (TensorBoard's server takes the
  // first for the session's start, the second for a restart, and drops the first session's
  // steps); the experiment's own folder (texts at step 0) at step 0.
  EXPECT_EQ(PurgeSteps(EventsIn(dir + "/c2/sgd")), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(PurgeSteps(EventsIn(dir + "/c2")), (std::vector<int64_t>{0, 0}));
}

TEST(ReadPngShape, ReadsTheHeaderAndRefusesWhatIsNotAPng) {
  // Signature, IHDR length 13, "IHDR", width 760, height 440, depth 8, colour type 6 (RGBA).
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x02\xf8\0\0\x01\xb8\x08\x06\0\0\0", 29);
  png += std::string(8, '\0');  // the chunk's CRC and more
  const std::optional<PngShape> shape = ReadPngShape(png);
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(shape->width, 760);
  EXPECT_EQ(shape->height, 440);
  EXPECT_EQ(shape->channels, 4);
  std::string rgb = png;
  rgb[25] = 2;
  EXPECT_EQ(ReadPngShape(rgb)->channels, 3);
  std::string bad = png;
  bad[1] = 'Q';
  EXPECT_FALSE(ReadPngShape(bad).has_value());
  EXPECT_FALSE(ReadPngShape(png.substr(0, 20)).has_value());
  std::string odd = png;
  odd[25] = 5;  // no such colour type
  EXPECT_FALSE(ReadPngShape(odd).has_value());
  auto board = ExperimentBoard::Open(FreshTestDir("board_png"), "c2", 1);
  ASSERT_TRUE(board.ok()) << board.status();
  EXPECT_TRUE((*board)->Image("plot/x", png).ok());
  EXPECT_FALSE((*board)->Image("plot/y", "GIF89a").ok());
}

TEST(ExperimentBoard, ARunFolderThatCannotBeMadeIsAWarningNotAnError) {
  const std::string dir = FreshTestDir("board_blocked");
  auto board = ExperimentBoard::Open(dir, "c2", 1);
  ASSERT_TRUE(board.ok()) << board.status();
  std::ofstream(dir + "/c2/sgd") << "a file where the run folder would go";
  EXPECT_EQ((*board)->OpenRun("sgd", 1, {}, 1), nullptr);
}

}  // namespace
}  // namespace trainlab::experiments
