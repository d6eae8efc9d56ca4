// The profile summary's codec: exact round trips (optional keys absent, nullable ones null),
// errors that name the field by its path, and the results file in tests/testdata read back and
// written again unchanged.
#include "experiments/profiling/profile_summary.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace trainlab::experiments {
namespace {

ProfileSummary SomeSummary() {
  ProfileSummary s;
  s.model = "resnet18";
  s.optimizer = "sgd";
  s.device = "cuda:0";
  s.batch_size = 128;
  s.warmup_steps = 2;
  s.roofs = ProfileRoofs{.flops_per_s = {.float32 = 1.5e13, .bfloat16 = 2.0e14},
                         .matmul_flops_per_s = {.float32 = 1.25e13, .bfloat16 = 1.9e14},
                         .conv_flops_per_s = {.float32 = 1.5e13, .bfloat16 = 2.0e14},
                         .bytes_per_s = 2.0e12 / 3,
                         .matmul_n = 8192,
                         .triad_elements = int64_t{256} << 20,
                         .theoretical_peak = {.how = "unknown: not derived for a GPU here"},
                         .bfloat16_problem = std::nullopt};
  ProfileStepRow step{.strategy = "amp_bf16",
                      .dtype = "bfloat16",
                      .batch_size = 128,
                      .steps = 5,
                      .seconds = 0.1 / 3,
                      .seconds_min = 0.03,
                      .seconds_max = 0.04,
                      .traced_seconds = 0.05,
                      .flops = 2.0e11,
                      .forward_flops_per_image = 1.1e9,
                      .step_flops_per_image = 3.3e9,
                      .flops_per_s = 6.0e12,
                      .compute_roof_flops_per_s = 2.0e14,
                      .mfu = 0.03,
                      .layers = 68,
                      .parameters = 11173962,
                      .timeline = "cuda events",
                      .rows_seconds = 0.031,
                      .coverage = 0.93,
                      .coverage_of_instrumented = 0.62,
                      .overhead = 0.5,
                      .memory_bound_seconds = 0.011,
                      .unattributed_backward_seconds = 0.001,
                      .host_rows_seconds = 0.02};
  s.steps.push_back(step);
  step.strategy = "eager";  // its layers not timed: none of the timed-only figures
  step.dtype = "float32";
  step.timeline = "none";
  step.rows_seconds = step.coverage = step.coverage_of_instrumented = step.overhead =
      step.memory_bound_seconds = step.unattributed_backward_seconds = step.host_rows_seconds =
          std::nullopt;
  s.steps.push_back(step);
  s.layers.push_back({.strategy = "amp_bf16",
                      .name = "layer1.0.conv1",
                      .op = "conv",
                      .pass = "backward",
                      .dtype = "bfloat16",
                      .seconds = 0.002,
                      .flops = 1.2e9,
                      .bytes = 6.5e6,
                      .intensity = 1.2e9 / 6.5e6,
                      .flops_per_s = 6.0e11,
                      .bytes_per_s = 3.25e9,
                      .roof_fraction = 0.25,
                      .bound = "compute",
                      .host_seconds = 0.0005});
  s.layers.push_back({.strategy = "eager",
                      .name = "autograd (no layer)",
                      .op = "autograd",
                      .pass = "backward",
                      .dtype = "float32",
                      .seconds = std::nullopt,
                      .flops = 0,
                      .bytes = 0,
                      .intensity = std::nullopt,
                      .flops_per_s = 0,
                      .bytes_per_s = 0,
                      .roof_fraction = std::nullopt,
                      .bound = ""});
  s.skipped.push_back({.strategy = "cuda_graph", .reason = "it replays the whole step"});
  s.convolution_choices.push_back({.strategy = "conv_autotune",
                                   .shape = "128x512x4x4 k3 s1 p1 -> 512, Float, channels_last",
                                   .pass = "weight gradient",
                                   .algorithm = "matmul",
                                   .library_seconds = 0.125,
                                   .matmul_seconds = 0.0625});
  s.convolution_choices.push_back({.strategy = "conv_autotune",
                                   .shape = "2x4... groups 2, Float, contiguous",
                                   .pass = "forward",
                                   .algorithm = "library",
                                   .note = "grouped convolution"});
  return s;
}

absl::StatusOr<ProfileSummary> Read(const nlohmann::json& j) {
  return ProfileSummaryFromJson(JsonReader(j, "summary"));
}

TEST(ProfileSummary, RoundTripsExactly) {
  const ProfileSummary s = SomeSummary();
  const nlohmann::json j = nlohmann::json::parse(ToJson(s).dump());
  absl::StatusOr<ProfileSummary> back = Read(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, s);
  EXPECT_EQ(ToJson(*back), j);
}

TEST(ProfileSummary, OptionalKeysAreAbsentAndNullableOnesNull) {
  const nlohmann::json j = ToJson(SomeSummary());
  const nlohmann::json& untimed = j["step"][1];
  EXPECT_EQ(untimed["timeline"], "none");
  for (const char* key :
       {"rows_seconds", "coverage", "coverage_of_instrumented", "overhead", "memory_bound_seconds",
        "unattributed_backward_seconds", "host_rows_seconds"}) {
    EXPECT_FALSE(untimed.contains(key)) << key;
    EXPECT_TRUE(j["step"][0].contains(key)) << key;
  }
  const nlohmann::json& row = j["layers"][1];
  for (const char* key : {"seconds", "intensity", "roof_fraction"}) {
    ASSERT_TRUE(row.contains(key)) << key;
    EXPECT_TRUE(row[key].is_null()) << key;
  }
  EXPECT_FALSE(row.contains("host_seconds"));
  EXPECT_TRUE(j["roofs"]["theoretical_peak"]["flops_per_s"].is_null());
  EXPECT_TRUE(j["convolution_choices"][1]["library_seconds"].is_null());
  EXPECT_EQ(j["convolution_choices"][0]["matmul_seconds"], 0.0625);
  EXPECT_FALSE(j["roofs"].contains("bfloat16_problem"));
}

TEST(ProfileSummary, ADataParallelSummaryHoldsOnlyWhatItSkipped) {
  ProfileSummary s;
  s.skipped.push_back({.strategy = "eager", .reason = "a data-parallel run"});
  const nlohmann::json j = ToJson(s);
  EXPECT_EQ(j, nlohmann::json::parse(R"({"step": [], "layers": [],
      "skipped": [{"strategy": "eager", "reason": "a data-parallel run"}]})"));
  absl::StatusOr<ProfileSummary> back = Read(j);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, s);
}

TEST(ProfileSummary, AMissingFieldIsNamedByItsPath) {
  nlohmann::json j = ToJson(SomeSummary());
  j["step"][1].erase("seconds");
  absl::StatusOr<ProfileSummary> back = Read(j);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().message(), "summary.step[1].seconds: missing");

  j = ToJson(SomeSummary());
  j["roofs"]["theoretical_peak"].erase("how");
  EXPECT_EQ(Read(j).status().message(), "summary.roofs.theoretical_peak.how: missing");

  j = ToJson(SomeSummary());
  j["layers"][1].erase("seconds");  // null when untimed, but always there
  EXPECT_EQ(Read(j).status().message(), "summary.layers[1].seconds: missing");

  j = ToJson(SomeSummary());
  j.erase("device");  // written with the roofs
  EXPECT_EQ(Read(j).status().message(), "summary.device: missing");
}

TEST(ProfileSummary, AWronglyTypedFieldIsNamedByItsPath) {
  nlohmann::json j = ToJson(SomeSummary());
  j["layers"][0]["flops"] = "many";
  absl::StatusOr<ProfileSummary> back = Read(j);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().message(),
            "summary.layers[0].flops: expected a number, got the string \"many\"");

  j = ToJson(SomeSummary());
  j["roofs"]["matmul_n"] = 8192.5;
  EXPECT_EQ(Read(j).status().message(),
            "summary.roofs.matmul_n: expected an integer, got the number 8192.5");

  j = ToJson(SomeSummary());
  j["step"][0]["timeline"] = nullptr;
  EXPECT_EQ(Read(j).status().message(), "summary.step[0].timeline: expected a string, got null");

  j = ToJson(SomeSummary());
  j["layers"][1]["pass"] = "sideways";
  EXPECT_EQ(Read(j).status().message(),
            "summary.layers[1].pass: 'sideways' is not forward, backward or optimizer");

  EXPECT_EQ(Read(nlohmann::json::array()).status().message(),
            "summary: expected an object, got an array");
}

// The profile's results file in tests/testdata (an older run: no "timeline" and no
// "coverage_of_instrumented" in its steps) reads, and writes back to the same JSON.
TEST(ProfileSummary, TheTestdataResultsFileReadsAndWritesBackUnchanged) {
  std::ifstream in("tests/testdata/results/profile.json");
  ASSERT_TRUE(in) << "tests/testdata/results/profile.json";
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json doc = nlohmann::json::parse(text.str());
  ASSERT_TRUE(doc.contains("summary"));
  const nlohmann::json& summary = doc["summary"];
  absl::StatusOr<ProfileSummary> s = Read(summary);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->roofs.has_value());
  EXPECT_EQ(s->steps.size(), 2u);
  EXPECT_FALSE(s->layers.empty());
  EXPECT_EQ(s->skipped.size(), 1u);
  const nlohmann::json again = ToJson(*s);
  EXPECT_EQ(again, summary);
  EXPECT_EQ(again.dump(2), summary.dump(2));
}

}  // namespace
}  // namespace trainlab::experiments
