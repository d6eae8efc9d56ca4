// Every experiment's section rendered both ways, for the terminal and for REPORT.md, from one
// result: the same tables with the same cells, and the same answer.
#include "experiments/reporting/section.h"

#include <gtest/gtest.h>

#include <regex>

#include "absl/strings/str_split.h"
#include "experiments/profiling/profile_summary.h"
#include "experiments/reporting/experiment_report.h"
#include "experiments/reporting/lab_order.h"
#include "experiments/reporting/markdown.h"

namespace trainlab::experiments {
namespace {

RunResult Run(int repeat, double scale) {
  RunResult r;
  r.repeat = repeat;
  for (int e = 1; e <= 2; ++e) {
    EpochStats s;
    s.epoch = e;
    s.loss = 2.0 / e * scale;
    s.top1 = 10.0 * e * scale;
    s.load_s = 0.01 * scale;
    s.train_s = 1.0 * scale + 0.1 * repeat;
    s.epoch_s = s.load_s + s.train_s;
    s.samples = 16;
    s.batches.push_back({0, 8, 0.005, 0, s.train_s / 2, s.loss, 1, std::nullopt});
    s.batches.push_back({1, 8, 0.005, 0, s.train_s / 2, s.loss, 2, std::nullopt});
    r.epochs.push_back(s);
    r.loader_stages.push_back({0.001, 0.002, 0.003, 0.004, 0.005, 2, 16});
    r.total_s += s.epoch_s;
  }
  return r;
}

VariantResult Variant(const std::string& label, int workers, double scale) {
  return {.label = label,
          .setup = {"sgd", "eager", "resnet18", "cpu", workers},
          .repeats = {Run(1, scale), Run(2, scale)}};
}

// time_to_accuracy: a run of epochs of `epoch_s` seconds, each evaluated in 1 s to `top1`,
// stopped at the first epoch that reaches `target` (as --target_accuracy stops it).
RunResult AccuracyRun(int repeat, double epoch_s, const std::vector<double>& top1, double target) {
  RunResult r;
  r.repeat = repeat;
  double train = 0, wall = 0;
  for (size_t i = 0; i < top1.size(); ++i) {
    EpochStats s;
    s.epoch = static_cast<int64_t>(i) + 1;
    s.train_s = epoch_s - 0.5;
    s.epoch_s = epoch_s;
    r.epochs.push_back(s);
    r.test.push_back({.loss = 1, .top1 = top1[i], .samples = 100, .seconds = 1});
    train += s.train_s;
    wall += epoch_s + 1;
    r.total_s += epoch_s;
    if (top1[i] >= target) {
      r.target = TargetReached{.target = target,
                               .epoch = s.epoch,
                               .batches = 10 * s.epoch,
                               .train_s = train,
                               .wall_s = wall};
      break;
    }
  }
  return r;
}

VariantResult AccuracyVariant(const std::string& recipe, double epoch_s,
                              const std::vector<double>& top1, double target) {
  return {.label = recipe,
          .params = {{"recipe", recipe},
                     {"settings",
                      {{"optimizer", "sgd"},
                       {"batch_size", 128},
                       {"lr", 0.1},
                       {"target_accuracy", target},
                       {"epochs", 3}}}},
          .setup = {"sgd", "eager", "resnet18", "cpu", 2},
          .repeats = {AccuracyRun(1, epoch_s, top1, target),
                      AccuracyRun(2, epoch_s + 1, top1, target)}};
}

ExperimentResult Result(const std::string& name) {
  ExperimentResult r{.experiment = name};
  if (name == "c2") r.variants = {Variant("sgd", 2, 1)};
  if (name == "c3") r.variants = {Variant("0 workers", 0, 1), Variant("4 workers", 4, 0.8)};
  if (name == "c4") {
    r.variants = {Variant("1 worker", 1, 1.2), Variant("4 workers", 4, 1)};
    r.summary = {{"best_workers", 4}, {"best_workers_source", "from --best_workers"}};
  }
  if (name == "c5") {
    r.variants = {Variant("cpu", 2, 1)};
    r.summary = {{"num_workers", 2}, {"num_workers_source", "from --num_workers"}};
  }
  if (name == "c6") r.variants = {Variant("sgd", 2, 1), Variant("adam", 2, 1.1)};
  if (name == "c7") r.variants = {Variant("sgd with BN", 2, 1), Variant("sgd without BN", 2, 0.9)};
  if (name == "c8") {
    r.variants = {Variant("eager", 2, 1), Variant("channels_last", 2, 0.9)};
    r.variants.push_back({.label = "cuda_graph", .skipped = "cuda_graph needs a CUDA device"});
  }
  if (name == "time_to_accuracy") {  // lab never reaches 85%; fast does at epoch 2
    r.variants = {AccuracyVariant("lab", 10, {50, 70, 80}, 85),
                  AccuracyVariant("fast", 12, {60, 85, 90}, 85)};
  }
  if (name == "q1_q4") {
    r.summary = {
        {"model", "resnet18"},
        {"conv_layers", 20},
        {"conv_layers_without_1x1", 17},
        {"last_linear_in_features", 512},
        {"sgd", {{"parameters", 11173962}, {"gradients", 11173962}, {"state", 11173962}}},
        {"adam", {{"parameters", 11173962}, {"gradients", 11173962}, {"state", 22347924}}}};
  }
  if (name == "profile") {  // one strategy, 17 rows: the top 15 and the other 2 summed
    ProfileSummary p{.model = "resnet18",
                     .optimizer = "sgd",
                     .device = "cpu",
                     .batch_size = 8,
                     .warmup_steps = 2};
    p.roofs = ProfileRoofs{.flops_per_s = {.float32 = 2e11},
                           .matmul_flops_per_s = {.float32 = 2e11},
                           .conv_flops_per_s = {.float32 = 1.5e11},
                           .bytes_per_s = 2e10,
                           .matmul_n = 512,
                           .triad_elements = 1 << 24,
                           .theoretical_peak = {.flops_per_s = std::nullopt, .how = "unknown"}};
    p.steps.push_back({.strategy = "eager",
                       .dtype = "float32",
                       .batch_size = 8,
                       .steps = 1,
                       .seconds = 1.5,
                       .seconds_min = 1.5,
                       .seconds_max = 1.5,
                       .traced_seconds = 1.6,
                       .flops = 1.7e10,
                       .flops_per_s = 1.7e10 / 1.5,
                       .compute_roof_flops_per_s = 2e11,
                       .mfu = 0.05,
                       .layers = 17,
                       .coverage = 0.9,
                       .coverage_of_instrumented = 0.85,
                       .memory_bound_seconds = 0.0});
    for (int i = 0; i < 17; ++i) {
      p.layers.push_back({.strategy = "eager",
                          .name = "conv" + std::to_string(i),
                          .op = "conv",
                          .pass = i % 2 ? "backward" : "forward",
                          .dtype = "float32",
                          .seconds = 0.1 - 0.005 * i,
                          .flops = 1e9,
                          .bytes = 1e7,
                          .intensity = 100.0,
                          .flops_per_s = 1e9 / (0.1 - 0.005 * i),
                          .bytes_per_s = 1e7 / (0.1 - 0.005 * i),
                          .roof_fraction = 0.5,
                          .bound = "compute"});
    }
    p.skipped.push_back({.strategy = "cuda_graph", .reason = "needs a CUDA device"});
    r.summary = ToJson(p);
  }
  // An experiment without a fixture above (one added since): two plain variants, enough for its
  // section to show a table whose cells both renderings must agree on.
  if (r.variants.empty() && r.summary.empty()) {
    r.variants = {Variant("a", 2, 1), Variant("b", 2, 0.9)};
  }
  const ExperimentReport& report = **ReportRegistry::Global().Find(name);
  if (report.summarize) {
    const nlohmann::json figures = report.summarize(r);
    for (auto it = figures.begin(); it != figures.end(); ++it) r.summary[it.key()] = *it;
  }
  return r;
}

std::vector<std::vector<std::string>> MarkdownCells(const std::string& md) {
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(md, '\n', absl::SkipEmpty())) {
    std::string l(line);
    EXPECT_TRUE(l.size() >= 4 && l.rfind("| ", 0) == 0 && l.substr(l.size() - 2) == " |") << l;
    std::vector<std::string> cells = absl::StrSplit(l.substr(2, l.size() - 4), " | ");
    if (cells.size() && cells[0] == "---") continue;  // the separator
    while (!cells.empty() && cells.back().empty()) cells.pop_back();
    rows.push_back(cells);
  }
  return rows;
}

std::vector<std::vector<std::string>> TextCells(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  const std::regex gap(" {2,}");
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::string l(line);
    std::vector<std::string> cells;
    for (std::sregex_token_iterator it(l.begin(), l.end(), gap, -1), end; it != end; ++it) {
      cells.push_back(*it);
    }
    if (!cells.empty() && cells.front().empty()) cells.erase(cells.begin());  // right-aligned
    rows.push_back(cells);
  }
  return rows;
}

class EverySection : public ::testing::TestWithParam<std::string> {};

TEST_P(EverySection, TerminalAndReportShowTheSameCells) {
  const std::string name = GetParam();
  const ExperimentReport& report = **ReportRegistry::Global().Find(name);
  const Section section = report.section(Result(name));
  ASSERT_FALSE(section.Tables().empty()) << name << " has no table";
  const std::string terminal = RenderSectionText(report.title, section);
  MarkdownWriter md("/nonexistent", /*draw_plots=*/false);
  md.AddSection(section);
  for (const Table* t : section.Tables()) {
    const std::string as_text = RenderText(*t), as_md = RenderMarkdown(*t);
    EXPECT_EQ(TextCells(as_text), MarkdownCells(as_md)) << name << ":\n" << as_text << as_md;
    EXPECT_EQ(TextCells(as_text).size(), t->rows.size() + 1);
    // And each rendering of the section carries the table.
    EXPECT_NE(terminal.find(as_text), std::string::npos) << name;
    EXPECT_NE(md.text().find(as_md), std::string::npos) << name;
  }
  for (const Block& b : section.blocks) {
    if (b.kind != Block::Kind::kAnswer) continue;
    EXPECT_NE(terminal.find("Answer: " + PlainText(b.text)), std::string::npos) << name;
    EXPECT_NE(md.text().find("**Answer:** " + b.text), std::string::npos) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Lab, EverySection, ::testing::ValuesIn(LabOrder()),
                         [](const auto& info) { return info.param; });

TEST(Sections, TimeToAccuracyNamesTheFastestAndWhereTheOthersStood) {
  const ExperimentResult r = Result("time_to_accuracy");
  const ExperimentReport& report = **ReportRegistry::Global().Find("time_to_accuracy");
  const nlohmann::json summary = report.summarize(r);
  EXPECT_TRUE(report.check_summary(JsonReader(summary, "summary")).ok());
  EXPECT_EQ(summary["fastest"], "fast");
  EXPECT_EQ(summary["target_accuracy"], 85.0);
  ASSERT_EQ(summary["recipes"].size(), 2u);
  EXPECT_EQ(summary["recipes"][0]["reached"], 0);
  EXPECT_FALSE(summary["recipes"][0].contains("wall_s"));
  // fast's runs: (12 + 1) x 2 = 26 s and (13 + 1) x 2 = 28 s; median 27 s.
  EXPECT_DOUBLE_EQ(summary["recipes"][1]["wall_s"].get<double>(), 27.0);
  EXPECT_DOUBLE_EQ(summary["recipes"][1]["epochs"].get<double>(), 2.0);
  const Section s = report.section(r);
  const std::vector<const Table*> tables = s.Tables();
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0]->rows[0][1], "0 of 2");
  EXPECT_EQ(tables[0]->rows[0][2], "-");
  EXPECT_EQ(tables[0]->rows[1][1], "2 of 2");
  EXPECT_EQ(tables[0]->rows[1][2], "27.0000s (26.0000-28.0000)");
  EXPECT_EQ(tables[0]->rows[1][5], "85.00%");  // stopped at the target: its final evaluation
  // By 27 s lab's first run (11 s epochs) had evaluated twice: 70%.
  std::string answer;
  for (const Block& b : s.blocks) {
    if (b.kind == Block::Kind::kAnswer) answer = b.text;
  }
  EXPECT_NE(answer.find("`fast` reaches 85.00% test top-1 fastest, in 27.0000s"), std::string::npos)
      << answer;
  EXPECT_NE(answer.find("`lab` had 70.00%"), std::string::npos) << answer;
  // A plot line per run (two repeats each), test top-1 against cumulative wall time.
  for (const Block& b : s.blocks) {
    if (b.kind != Block::Kind::kPlot) continue;
    ASSERT_EQ(b.plot.series.size(), 4u);
    EXPECT_EQ(b.plot.series[2].title, "fast (run 1)");
    EXPECT_EQ(b.plot.series[2].points,
              (std::vector<std::pair<double, double>>{{13, 60}, {26, 85}}));
  }
}

TEST(Sections, TimeToAccuracySaysWhenNoRecipeReachedIt) {
  ExperimentResult r{.experiment = "time_to_accuracy"};
  r.variants = {AccuracyVariant("lab", 10, {50, 70}, 95),
                AccuracyVariant("fast", 12, {60, 91}, 95)};
  const ExperimentReport& report = **ReportRegistry::Global().Find("time_to_accuracy");
  EXPECT_EQ(report.summarize(r)["fastest"], "");
  std::string answer;
  for (const Block& b : report.section(r).blocks) {
    if (b.kind == Block::Kind::kAnswer) answer = b.text;
  }
  EXPECT_EQ(answer,
            "no recipe reached 95.00% test top-1 in every run within its epochs; the best test "
            "top-1 was 91.00% (`fast`).");
}

TEST(Sections, TimeToAccuracySummaryIsChecked) {
  const ExperimentReport& report = **ReportRegistry::Global().Find("time_to_accuracy");
  nlohmann::json summary = report.summarize(Result("time_to_accuracy"));
  summary["target_accuracy"] = 140;
  EXPECT_FALSE(report.check_summary(JsonReader(summary, "summary")).ok());
  summary["target_accuracy"] = 85;
  summary["recipes"][1]["reached"] = 3;  // of 2 runs
  const absl::Status st = report.check_summary(JsonReader(summary, "summary"));
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("summary.recipes[1].reached"), std::string::npos) << st.message();
}

TEST(Sections, ProfileShowsTheTopRowsAndSumsTheRest) {
  const ExperimentResult r = Result("profile");
  const ExperimentReport& report = **ReportRegistry::Global().Find("profile");
  EXPECT_TRUE(report.check_summary(JsonReader(r.summary, "summary")).ok());
  const Section s = report.section(r);
  const std::vector<const Table*> tables = s.Tables();
  ASSERT_EQ(tables.size(), 3u);  // roofs, steps, the layers of eager
  const Table& layers = *tables[2];
  ASSERT_EQ(layers.rows.size(), 16u);
  EXPECT_EQ(layers.rows[0][0], "conv0");
  EXPECT_EQ(layers.rows[0][3], "100.00 ms");
  EXPECT_EQ(layers.rows[0][4], "6.7%");  // 0.1 s of a 1.5 s step
  // conv15 and conv16: 0.025 + 0.020 s, 2 GFLOP.
  EXPECT_EQ(layers.rows[15][0], "the other 2 rows");
  EXPECT_EQ(layers.rows[15][3], "45.00 ms");
  EXPECT_EQ(layers.rows[15][5], "2.000");
  // A pass the file does not know is named by the check.
  nlohmann::json bad = r.summary;
  bad["layers"][3]["pass"] = "sideways";
  const absl::Status st = report.check_summary(JsonReader(bad, "summary"));
  EXPECT_NE(st.message().find("summary.layers[3].pass: 'sideways'"), std::string::npos) << st;
}

TEST(Sections, C3AnswersWithTheSummaryItKeeps) {
  const ExperimentResult r = Result("c3");
  // 4 workers were faster in this result: the summary and the answer say the same.
  EXPECT_EQ(r.summary["best_workers_total"], 4);
  const Section s = (**ReportRegistry::Global().Find("c3")).section(r);
  bool found = false;
  for (const Block& b : s.blocks) {
    if (b.kind == Block::Kind::kAnswer) {
      EXPECT_EQ(b.text,
                "the best worker count for total runtime is **4**, for data loading **4**.");
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(Sections, C8ListsSkippedStrategiesWithTheirReason) {
  const Section s = (**ReportRegistry::Global().Find("c8")).section(Result("c8"));
  const std::string text = RenderSectionText("C8", s);
  EXPECT_NE(text.find("Skipped here: cuda_graph: cuda_graph needs a CUDA device."),
            std::string::npos)
      << text;
  EXPECT_EQ(s.Tables()[0]->rows.size(), 2u);  // eager, channels_last
}

TEST(Tables, TextColumnsAlignAndMarkdownEscapesPipes) {
  Table t{.header = {"name", "seconds"}, .rows = {{"a|b", "1.5s"}, {"long name", "12.25s"}}};
  EXPECT_EQ(RenderText(t), "name       seconds\na|b           1.5s\nlong name   12.25s\n");
  EXPECT_EQ(RenderMarkdown(t),
            "| name | seconds |\n| --- | --- |\n| a\\|b | 1.5s |\n| long name | 12.25s |\n");
}

}  // namespace
}  // namespace trainlab::experiments
