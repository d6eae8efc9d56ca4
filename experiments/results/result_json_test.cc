// The one codec: exact round trips, the per-batch records in or out, and reads that name the field
// that is wrong.
#include "experiments/results/result_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace trainlab::experiments {
namespace {

RunResult SomeRun() {
  RunResult r;
  r.repeat = 2;
  EpochStats e;
  e.epoch = 1;
  e.loss = 2.302585092994046;
  e.top1 = 12.5;
  e.load_s = 0.1 / 3;
  e.train_s = 1.0 / 7;
  e.epoch_s = 0.2;
  e.samples = 8;
  e.batches.push_back({0, 4, 0.01, 0.0, 0.07, 2.25, 1, std::nullopt});
  e.batches.push_back({1, 4, 0.02, 0.0, 0.08, std::nan(""), 0, std::nullopt});
  e.diverged = Divergence{1, 2, std::numeric_limits<double>::infinity()};
  r.epochs.push_back(e);
  r.diverged = e.diverged;
  r.loader_stages.push_back({0.1, 0.2, 0.3, 0.4, 0.5, 2, 8});
  r.test.push_back({1.25, 50.0, 16});
  r.total_s = 0.2;
  return r;
}

TEST(ResultJson, RunsRoundTripExactly) {
  const RunResult r = SomeRun();
  const nlohmann::json j = nlohmann::json::parse(ToJson(r, {.batch_records = true}).dump());
  absl::StatusOr<RunResult> back = ResultDecoder().Run(JsonReader(j));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->epochs.size(), 1u);
  EXPECT_EQ(back->repeat, 2);
  EXPECT_EQ(back->epochs[0].load_s, r.epochs[0].load_s);  // bit-exact doubles
  EXPECT_EQ(back->epochs[0].train_s, r.epochs[0].train_s);
  EXPECT_EQ(back->epochs[0].loss, r.epochs[0].loss);
  ASSERT_EQ(back->epochs[0].batches.size(), 2u);
  EXPECT_TRUE(std::isnan(back->epochs[0].batches[1].loss));
  ASSERT_TRUE(back->diverged.has_value());
  EXPECT_EQ(back->diverged->batch, 2);
  EXPECT_TRUE(std::isinf(back->diverged->loss));
  EXPECT_EQ(back->loader_stages[0].normalize_s, 0.4);
  ASSERT_EQ(back->test.size(), 1u);
  EXPECT_EQ(back->test[0].samples, 16);
  // The same document again: nothing lost, nothing added.
  EXPECT_EQ(ToJson(*back, {.batch_records = true}), j);
}

TEST(ResultJson, WithoutBatchRecordsTheCountAndTheMeanStay) {
  const RunResult r = SomeRun();
  const nlohmann::json j = ToJson(r, {.batch_records = false});
  EXPECT_FALSE(j["epochs"][0].contains("batch_records"));
  absl::StatusOr<RunResult> back = ResultDecoder().Run(JsonReader(j));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->epochs[0].batches.size(), 2u);
  EXPECT_EQ(back->epochs[0].avg_train_per_batch_s(), r.epochs[0].avg_train_per_batch_s());
}

TEST(ResultJson, AWrongFieldIsNamedByItsPath) {
  nlohmann::json doc =
      ToJson(ExperimentResult{.variants = {{.label = "sgd", .repeats = {SomeRun()}}}}, {});
  doc["variants"][0]["runs"][0]["epochs"][0]["loss"] = "low";
  absl::StatusOr<ExperimentResult> r = ResultDecoder().Experiment(JsonReader(doc));
  EXPECT_EQ(r.status().message(),
            "variants[0].runs[0].epochs[0].loss: expected a number, got the string \"low\"");
  doc["variants"][0]["runs"][0]["epochs"][0]["loss"] = 1.5;
  doc["variants"][0]["runs"][0]["repeat"] = -3;
  r = ResultDecoder().Experiment(JsonReader(doc));
  EXPECT_EQ(r.status().message(), "variants[0].runs[0].repeat: -3 is out of range (1 to 1048576)");
  doc["variants"][0]["runs"][0].erase("repeat");
  r = ResultDecoder().Experiment(JsonReader(doc));
  EXPECT_EQ(r.status().message(), "variants[0].runs[0].repeat: missing");
}

TEST(ResultJson, PlaceholdersAreBoundedInAll) {
  // A small document that claims a huge number of batches is refused before it allocates them.
  nlohmann::json run = ToJson(SomeRun(), {});
  run["epochs"][0]["batches"] = int64_t{1} << 24;
  nlohmann::json doc = {{"variants", {{{"label", "x"}, {"runs", {run}}}}}};
  absl::StatusOr<ExperimentResult> r = ResultDecoder().Experiment(JsonReader(doc));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("more batches in all than any results file holds"),
            std::string::npos)
      << r.status();
}

TEST(ResultJson, InvalidUtf8IsKeptEscaped) {
  const nlohmann::json j = ValidUtf8({{"data_dir", "/tmp/\xff"}, {"ok", "caf\xc3\xa9"}});
  EXPECT_EQ(j["data_dir"], "/tmp/\\xFF");
  EXPECT_EQ(j["ok"], "caf\xc3\xa9");
  EXPECT_NO_THROW((void)j.dump());
  EXPECT_EQ(EscapeInvalidUtf8("\xc0\xaf"), "\\xC0\\xAF");  // an overlong '/' is not UTF-8
}

}  // namespace
}  // namespace trainlab::experiments
