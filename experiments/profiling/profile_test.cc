// The profile experiment in a real Session on tiny synthetic data (batch 8, one step each way):
// every layer of the model appears with both passes, the optimizer has its row, every strategy
// asked for is profiled or skipped with a reason, the figures add up, the summary passes its own
// check and renders, and the Chrome trace carries the layer names. No test asserts a time.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

#include "core/introspect.h"
#include "core/model.h"
#include "core/status_macros.h"
#include "experiments/harness/experiment.h"
#include "experiments/reporting/experiment_report.h"
#include "plugins/compile/fused_bn_relu.h"
#include "tests/test_dir.h"

namespace trainlab::experiments {
namespace {

ExperimentOptions Tiny() {
  ExperimentOptions o;
  o.experiment = "profile";
  o.command_line = {"profile"};
  o.dataset = "synthetic";
  o.synthetic_train = 32;
  o.synthetic_test = 16;
  o.threads = 1;
  o.progress = "off";
  o.run.batch_size = 8;
  o.run.num_workers = 0;
  EXPECT_TRUE(SetOwnFlags(o, {{"profile_steps", "1"}}).ok());
  return o;
}

absl::StatusOr<ExperimentResult> RunProfile(Session& session) {
  TRAINLAB_ASSIGN_OR_RETURN(const Experiment* e, ExperimentRegistry::Global().Find("profile"));
  return e->run(session);
}

// The rows of `strategy` in `pass`, by name.
std::multiset<std::string> Names(const nlohmann::json& layers, const std::string& strategy,
                                 const std::string& pass) {
  std::multiset<std::string> names;
  for (const nlohmann::json& l : layers) {
    if (l["strategy"] == strategy && l["pass"] == pass && l["op"] != "cast") {
      names.insert(l["name"].get<std::string>());
    }
  }
  return names;
}

void ExpectTheSummaryChecksAndRenders(const ExperimentResult& result) {
  absl::StatusOr<const ExperimentReport*> report = ReportRegistry::Global().Find("profile");
  ASSERT_TRUE(report.ok()) << report.status();
  const JsonReader reader(result.summary, "summary");
  EXPECT_TRUE((*report)->check_summary(reader).ok()) << (*report)->check_summary(reader);
  const Section section = (*report)->section(result);
  int plots = 0;
  for (const Block& b : section.blocks) {
    if (b.kind != Block::Kind::kPlot) continue;
    ++plots;
    EXPECT_TRUE(b.plot.log_x && b.plot.log_y) << b.plot.file;
    EXPECT_NE(GnuplotScript(b.plot, "/tmp/x.svg").find("set logscale x"), std::string::npos);
  }
  EXPECT_EQ(plots, static_cast<int>(result.summary["step"].size()));
  size_t choices = 0;
  for (const Table* t : section.Tables()) {
    if (t->header.size() > 1 && t->header[1] == "shape") {  // conv_autotune's choices: every one
      choices += t->rows.size();
      continue;
    }
    EXPECT_LE(t->rows.size(), 16u) << "a layer table shows the top 15 and the rest summed";
  }
  const size_t want = result.summary.contains("convolution_choices")
                          ? result.summary["convolution_choices"].size()
                          : 0;
  EXPECT_EQ(choices, want);
}

TEST(Profile, EveryLayerOfResNet18ForEveryStrategyThatRunsHere) {
  const std::string dir = FreshTestDir("profile_resnet");
  ExperimentOptions o = Tiny();
  const std::vector<std::string> strategies = {
      "eager",          "channels_last", "amp_bf16",
      "cudnn_autotune", "cuda_graph",    "channels_last+conv_autotune+fused_bn_relu"};
  ASSERT_TRUE(
      SetOwnFlags(o, {{"profile_steps", "1"}, {"strategies", absl::StrJoin(strategies, ",")}})
          .ok());
  o.trace = dir + "/trace.json";
  absl::StatusOr<Session> s = Session::Start(o);
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<ExperimentResult> result = RunProfile(*s);
  ASSERT_TRUE(result.ok()) << result.status();
  const nlohmann::json& summary = result->summary;

  // Every strategy asked for: profiled, or skipped with its reason; eager and channels_last run
  // on every CPU, cuda_graph on none.
  std::set<std::string> profiled, skipped;
  for (const nlohmann::json& st : summary["step"]) profiled.insert(st["strategy"]);
  for (const nlohmann::json& k : summary["skipped"]) {
    skipped.insert(k["strategy"].get<std::string>());
    EXPECT_FALSE(k["reason"].get<std::string>().empty()) << k;
  }
  for (const std::string& name : strategies) {
    EXPECT_EQ(profiled.count(name) + skipped.count(name), 1u) << name;
  }
  EXPECT_TRUE(profiled.count("eager") && profiled.count("channels_last"));
  EXPECT_TRUE(profiled.count("channels_last+conv_autotune+fused_bn_relu"));
  EXPECT_TRUE(skipped.count("cuda_graph"));
  // conv_autotune's choices: ResNet-18's 11 convolution shapes, 3 passes each, less the first
  // layer's input gradient; each with the algorithm kept (its convolutions, counted below like
  // every strategy's, are trainlab::convolution ops).
  ASSERT_TRUE(summary.contains("convolution_choices"));
  EXPECT_EQ(summary["convolution_choices"].size(), 11u * 3 - 1);
  for (const nlohmann::json& c : summary["convolution_choices"]) {
    EXPECT_EQ(c["strategy"], "channels_last+conv_autotune+fused_bn_relu");
    EXPECT_TRUE(c["algorithm"] == "library" || c["algorithm"] == "matmul") << c;
  }

  // The model's own modules: every one that holds parameters is a row in both passes.
  absl::StatusOr<std::shared_ptr<ClassifierImpl>> model = MakeModel("resnet18", {});
  ASSERT_TRUE(model.ok());
  std::set<std::string> modules;
  for (const auto& item : (*model)->named_modules("", /*include_self=*/false)) {
    if (!item.value()->parameters(/*recurse=*/false).empty()) modules.insert(item.key());
  }
  ASSERT_EQ(modules.size(), 20u + 20u + 1u);  // convolutions, batch norms, the linear layer
  const int64_t parameters = CountTrainableParameters(**model);
  const nlohmann::json& layers = summary["layers"];
  for (const nlohmann::json& st : summary["step"]) {
    const std::string strategy = st["strategy"];
    const std::multiset<std::string> forward = Names(layers, strategy, "forward"),
                                     backward = Names(layers, strategy, "backward");
    for (const std::string& m : modules) {
      EXPECT_EQ(forward.count(m), 1u) << strategy << ": " << m;
      EXPECT_EQ(backward.count(m), 1u) << strategy << ": " << m;
    }
    EXPECT_EQ(forward.count("loss") + forward.count("cross_entropy"), 1u) << strategy;
    // The parameter-free layers: 17 ReLUs (9 of them inside their batch norm's row under
    // fused_bn_relu), 8 residual adds and the pool, each in its block.
    int relu = 0, fused_relu = 0, add = 0, pool = 0, optimizer = 0;
    double flops = 0, previous = 1e300;
    for (const nlohmann::json& l : layers) {
      if (l["strategy"] != strategy) continue;
      flops += l["flops"].get<double>();
      const double seconds = l["seconds"].get<double>();
      EXPECT_GE(seconds, 0) << l;
      EXPECT_LE(seconds, previous) << "rows are ranked by time";
      previous = seconds;
      if (l["pass"] != "forward") {
        if (l["pass"] == "optimizer") {
          ++optimizer;
          // SGD with momentum and weight decay: 6 FLOPs per parameter (core/op_costs.h).
          EXPECT_EQ(l["flops"].get<double>(), 6.0 * static_cast<double>(parameters));
          EXPECT_EQ(l["name"], "sgd");
        }
        continue;
      }
      relu += l["op"] == "relu";
      fused_relu += l["op"] == "batch_norm_relu";
      add += l["op"] == "add";
      pool += l["op"] == "pool";
    }
    // (A LibTorch 2.x build has no oneDNN of its own: fused_bn_relu leaves them to the module.)
    const bool fused =
        absl::StrContains(strategy, "fused_bn_relu") && compile::FusedBatchNormRelu::Built();
    EXPECT_EQ(fused_relu, fused ? 9 : 0) << strategy;
    EXPECT_EQ(relu + fused_relu, 17) << strategy;
    EXPECT_EQ(add, 8) << strategy;
    EXPECT_EQ(pool, 1) << strategy;
    EXPECT_EQ(optimizer, 1) << strategy;
    EXPECT_EQ(st["parameters"].get<int64_t>(), parameters);
    EXPECT_DOUBLE_EQ(st["flops"].get<double>(), flops) << "the step is the sum of its rows";
    EXPECT_DOUBLE_EQ(st["step_flops_per_image"].get<double>(), flops / 8);
    // The convolutions and the linear layer alone: 555,422,720 multiply-adds per image.
    EXPECT_GE(st["forward_flops_per_image"].get<double>(), 2.0 * 555'422'720);
    EXPECT_GT(st["coverage"].get<double>(), 0) << st;
    EXPECT_EQ(st["timeline"], "host clock") << "a CPU model's layers are timed on the host";
    EXPECT_GT(st["seconds"].get<double>(), 0);
    EXPECT_GT(st["mfu"].get<double>(), 0);
  }
  EXPECT_GT(summary["roofs"]["flops_per_s"]["float32"].get<double>(), 0);
  EXPECT_GT(summary["roofs"]["bytes_per_s"].get<double>(), 0);
  ExpectTheSummaryChecksAndRenders(*result);

  // The Chrome trace of the last instrumented step names the layers.
  ASSERT_NE(s->trace, nullptr);
  bool conv = false, optimizer_span = false;
  for (const auto& e : s->trace->events()) {
    conv |= e.name == "layer1.0.conv1 forward" && e.category == "profile eager";
    optimizer_span |= e.name == "optimizer step optimizer" && e.category == "profile eager";
  }
  EXPECT_TRUE(conv);
  EXPECT_TRUE(optimizer_span);
}

// The eager profile of the tiny TorchScript model in tests/testdata.
absl::StatusOr<ExperimentResult> ProfileTinyTorchScript() {
  ExperimentOptions o = Tiny();
  TRAINLAB_RETURN_IF_ERROR(SetOwnFlags(o, {{"profile_steps", "1"}, {"strategies", "eager"}}));
  o.run.model = "torchscript";
  o.run.model_path = "tests/testdata/models/tiny_cnn.pt";
  TRAINLAB_ASSIGN_OR_RETURN(Session s, Session::Start(o));
  return RunProfile(s);
}

TEST(Profile, ATorchScriptModelIsProfiledLayerByLayer) {
  absl::StatusOr<ExperimentResult> result = ProfileTinyTorchScript();
  ASSERT_TRUE(result.ok()) << result.status();
  const nlohmann::json& summary = result->summary;
  ASSERT_EQ(summary["step"].size(), 1u);
  int convs = 0, linear = 0;
  for (const nlohmann::json& l : summary["layers"]) {
    if (l["pass"] != "forward") continue;
    convs += l["op"] == "conv";
    linear += l["op"] == "linear";
  }
  EXPECT_GE(convs, 1);
  EXPECT_GE(linear, 1);
  EXPECT_GT(summary["step"][0]["flops"].get<double>(), 0);
  ExpectTheSummaryChecksAndRenders(*result);
}

// A GPU's summary (rows timed by the device's events, with the host's time to issue each):
// the layer tables gain a "host issue" column, every row as wide as its header, and the text
// says what share of the step the host took to issue the rows. (The GPU itself runs the
// profile in tools/gpu_check.sh; here the CPU summary is given host times by hand.)
TEST(Profile, AGpuSummaryShowsTheHostsTimeToIssueEachRow) {
  absl::StatusOr<ExperimentResult> result = ProfileTinyTorchScript();
  ASSERT_TRUE(result.ok()) << result.status();
  double host = 0;
  for (nlohmann::json& l : result->summary["layers"]) {
    l["host_seconds"] = 0.25 * l["seconds"].get<double>();
    host += l["host_seconds"].get<double>();
  }
  nlohmann::json& step = result->summary["step"][0];
  step["host_rows_seconds"] = host;
  step["timeline"] = "cuda events";
  ExpectTheSummaryChecksAndRenders(*result);
  absl::StatusOr<const ExperimentReport*> report = ReportRegistry::Global().Find("profile");
  ASSERT_TRUE(report.ok());
  const Section section = (*report)->section(*result);
  int with_host = 0;
  for (const Table* t : section.Tables()) {
    const auto column = std::find(t->header.begin(), t->header.end(), "host issue");
    if (column == t->header.end()) continue;
    ++with_host;
    EXPECT_EQ(column - t->header.begin(), 4) << "beside the device's time";
    for (const auto& row : t->rows) EXPECT_EQ(row.size(), t->header.size());
  }
  EXPECT_EQ(with_host, 1) << "the one strategy's layer table";
  const std::string text = RenderSectionText("profile", section);
  EXPECT_NE(text.find(absl::StrFormat("the host took %.1f%% of the plain step to issue the rows",
                                      100 * host / step["seconds"].get<double>())),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("cuda events"), std::string::npos) << "the step table says what timed";
}

}  // namespace
}  // namespace trainlab::experiments
