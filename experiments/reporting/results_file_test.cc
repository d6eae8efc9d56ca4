// Results files written and read back: the JSON and the CSV together give the result again;
// schema 1 files still read; what is read back is checked, field by field, with the file named.
#include "experiments/results/results_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/files.h"
#include "experiments/reporting/report.h"
#include "tests/test_dir.h"

namespace trainlab::experiments {
namespace {

ResultsFile SomeFile(const std::string& experiment) {
  RunResult r;
  EpochStats e;
  e.epoch = 1;
  e.loss = 2.5;
  e.top1 = 12.5;
  e.train_s = 0.75;
  e.epoch_s = 0.8;
  e.samples = 8;
  e.batches.push_back({0, 4, 0.01, 0.0, 0.25, 2.25, 1, std::nullopt, 0.05});
  e.batches.push_back({1, 4, 0.02, 0.0, 0.5, 2.75, 0, std::nullopt, 0.1});
  r.epochs.push_back(e);
  r.total_s = 0.8;
  ResultsFile f;
  f.experiment = experiment;
  f.command_line = {experiment, "--data_dir=/tmp/\xff"};
  f.settings = {{"epochs", 1}};
  f.result.variants.push_back({.label = "sgd, \"quoted\"",
                               .setup = {"sgd", "eager", "resnet18", "cpu", 2},
                               .repeats = {r}});
  f.result.summary = {{"best_workers_total", 2}, {"best_workers_loading", 2}};
  return f;
}

TEST(ResultsFile, JsonAndCsvGiveTheResultBack) {
  const std::string dir = FreshTestDir("results_roundtrip");
  ASSERT_TRUE(WriteResultsFiles(dir, SomeFile("c3")).ok());
  absl::StatusOr<std::optional<ResultsFile>> back = ReadResultsFile(dir, "c3");
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->has_value());
  const ResultsFile& f = **back;
  EXPECT_EQ(f.schema_version, kResultsSchemaVersion);
  EXPECT_EQ(f.command_line[1], "--data_dir=/tmp/\\xFF");  // kept, escaped, not a failed write
  ASSERT_EQ(f.result.variants.size(), 1u);
  EXPECT_EQ(f.result.variants[0].label, "sgd, \"quoted\"");  // through the CSV's quoting too
  const EpochStats& e = f.result.variants[0].repeats[0].epochs[0];
  ASSERT_EQ(e.batches.size(), 2u);
  EXPECT_EQ(e.batches[1].train_s, 0.5);  // from the CSV
  EXPECT_EQ(e.batches[1].loss, 2.75);
  EXPECT_EQ(e.batches[0].lr, 0.05);  // the rate column
  EXPECT_EQ(e.batches[1].lr, 0.1);
  EXPECT_EQ(f.result.variants[0].setup.num_workers, 2);
  // No temporary file left behind.
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().string().find(".tmp-"), std::string::npos) << entry.path();
  }
}

TEST(ResultsFile, SchemaOneStillReads) {
  const std::string dir = FreshTestDir("results_v1");
  for (const char* f : {"c2.json", "c2_batches.csv", "c3.json"}) {
    std::filesystem::copy_file(std::string("tests/testdata/results/") + f, dir + "/" + f);
  }
  absl::StatusOr<std::optional<ResultsFile>> c2 = ReadResultsFile(dir, "c2");
  ASSERT_TRUE(c2.ok()) << c2.status();
  EXPECT_EQ((*c2)->schema_version, 1);
  ASSERT_FALSE((*c2)->result.variants.empty());
  EXPECT_GT((*c2)->result.variants[0].repeats[0].epochs[0].batches[0].train_s, 0);
}

TEST(ResultsFile, WhatIsReadBackIsChecked) {
  const std::string dir = FreshTestDir("results_checked");
  ASSERT_TRUE(WriteResultsFiles(dir, SomeFile("c3")).ok());
  const std::string path = dir + "/c3.json";
  auto rewrite = [&](const std::function<void(nlohmann::json&)>& change) {
    std::ifstream in(path);
    nlohmann::json j = nlohmann::json::parse(in);
    change(j);
    std::ofstream(path, std::ios::trunc) << j.dump();
  };
  // A summary value of the wrong type, then out of range: the file and the field named.
  rewrite([](nlohmann::json& j) { j["summary"]["best_workers_total"] = "4"; });
  EXPECT_EQ(ReadResultSets(dir).status().message(),
            path + ": summary.best_workers_total: expected an integer, got the string \"4\"");
  rewrite([](nlohmann::json& j) { j["summary"]["best_workers_total"] = 100000; });
  EXPECT_EQ(ReadResultSets(dir).status().message(),
            path + ": summary.best_workers_total: 100000 is out of range (-1 to 1024)");
  rewrite([](nlohmann::json& j) {
    j["summary"]["best_workers_total"] = 2;
    j["schema_version"] = 7;
  });
  EXPECT_EQ(ReadResultSets(dir).status().message(),
            path + ": schema_version 7, this build reads 1 and 2");
  rewrite([](nlohmann::json& j) {
    j["schema_version"] = 2;
    j["variants"][0]["runs"][0]["epochs"][0]["train_s"] = nullptr;
  });
  EXPECT_EQ(ReadResultSets(dir).status().message(),
            path + ": variants[0].runs[0].epochs[0].train_s: expected a number, got null");
  // A CSV row that does not belong.
  ASSERT_TRUE(WriteResultsFiles(dir, SomeFile("c3")).ok());
  std::ofstream(dir + "/c3_batches.csv", std::ios::app) << "adam,1,1,0,4,0,0,0,1,0,0.1\n";
  EXPECT_EQ(ReadResultSets(dir).status().message(),
            dir +
                "/c3_batches.csv: line 4: variant 'adam', repeat 1, epoch 1 is not in the "
                "results file");
  // A row without the rate column, under the header that has it.
  ASSERT_TRUE(WriteResultsFiles(dir, SomeFile("c3")).ok());
  std::ofstream(dir + "/c3_batches.csv", std::ios::app) << "sgd,1,1,0,4,0,0,0,1,0\n";
  EXPECT_NE(ReadResultSets(dir).status().message().find(
                "c3_batches.csv: line 4: expected 11 comma-separated fields"),
            std::string::npos)
      << ReadResultSets(dir).status();
}

}  // namespace
}  // namespace trainlab::experiments
