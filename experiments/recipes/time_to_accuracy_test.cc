// time_to_accuracy in a real Session on tiny learnable synthetic data (batch 8, 4 batches an
// epoch, one thread, no loader workers: deterministic): each recipe trains with what it sets
// and what the user gave, every epoch is evaluated on the --test_images asked for, a run stops at
// the first epoch that reaches the target, and the results render and pass their own check.
// No test asserts a time.
#include <gtest/gtest.h>

#include "core/status_macros.h"
#include "experiments/harness/experiment.h"
#include "experiments/reporting/experiment_report.h"

namespace trainlab::experiments {
namespace {

ExperimentOptions Tiny(double target) {
  ExperimentOptions o;
  o.experiment = "time_to_accuracy";
  o.command_line = {"time_to_accuracy"};
  o.dataset = "synthetic";
  o.synthetic_train = 64;
  o.synthetic_test = 16;
  o.threads = 1;
  o.progress = "off";
  o.run.batch_size = 8;
  o.run.num_workers = 0;
  o.run.epochs = 3;
  o.run.max_batches_per_epoch = 4;
  o.run.target_accuracy = target;
  o.run.evaluate = true;
  // As if typed: the recipes keep these.
  o.given_flags = {"batch_size", "num_workers", "epochs", "max_batches_per_epoch"};
  EXPECT_TRUE(SetOwnFlags(o, {{"test_images", "12"}}).ok());
  return o;
}

absl::StatusOr<ExperimentResult> RunTimeToAccuracy(Session& session) {
  TRAINLAB_ASSIGN_OR_RETURN(const Experiment* e,
                            ExperimentRegistry::Global().Find("time_to_accuracy"));
  return e->run(session);
}

TEST(TimeToAccuracy, NeedsATarget) {
  absl::StatusOr<Session> s = Session::Start(Tiny(0));
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<ExperimentResult> r = RunTimeToAccuracy(*s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "--target_accuracy: time_to_accuracy needs a target test top-1 % above 0");
}

TEST(TimeToAccuracy, AnUnknownRecipeStopsItBeforeAnyTraining) {
  ExperimentOptions o = Tiny(50);
  ASSERT_TRUE(SetOwnFlags(o, {{"test_images", "12"}, {"recipe", "lab,slow"}}).ok());
  absl::StatusOr<Session> s = Session::Start(o);
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<ExperimentResult> r = RunTimeToAccuracy(*s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "--recipe: unknown recipe 'slow' (known: lab, fast)");
}

TEST(TimeToAccuracy, EachRecipeTrainsWithItsSettingsToTheTarget) {
  absl::StatusOr<Session> s = Session::Start(Tiny(100));
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<ExperimentResult> result = RunTimeToAccuracy(*s);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->variants.size(), 2u);
  const VariantResult &lab = result->variants[0], &fast = result->variants[1];
  ASSERT_EQ(lab.label, "lab");
  ASSERT_EQ(fast.label, "fast");

  // What each trained with is in its params, as the results file keeps them.
  const nlohmann::json& ls = lab.params["settings"];
  EXPECT_EQ(ls["optimizer"], "sgd");
  EXPECT_EQ(ls["lr"], 0.1);
  EXPECT_EQ(ls["lr_schedule"], "constant");
  EXPECT_EQ(ls["tta"], "none");
  EXPECT_EQ(lab.params["recipe_set"], nlohmann::json::array());
  const nlohmann::json& fs = fast.params["settings"];
  EXPECT_EQ(fs["optimizer"], "sgd_nesterov");
  EXPECT_EQ(fs["batch_size"], 8);                     // given: kept
  EXPECT_DOUBLE_EQ(fs["lr"].get<double>(), 0.00625);  // 0.1 x 8 / 128
  EXPECT_EQ(fs["lr_schedule"], "onecycle");
  EXPECT_DOUBLE_EQ(fs["warmup_epochs"].get<double>(), 0.6);  // a fifth of 3 epochs
  EXPECT_EQ(fs["label_smoothing"], 0.2);
  EXPECT_EQ(fs["tta"], "flip");
  EXPECT_EQ(fs["target_accuracy"], 100.0);
  EXPECT_EQ(fast.params["recipe_set"],
            (nlohmann::json{"optimizer", "lr", "lr_schedule", "warmup_epochs", "label_smoothing",
                            "tta", "strategy"}));
  EXPECT_EQ(fast.setup.optimizer, "sgd_nesterov");
  EXPECT_EQ(fast.setup.strategy, fs["strategy"]);

  // Every epoch evaluated on the first 12 test images; a run ends at the target or after 3.
  for (const VariantResult* v : {&lab, &fast}) {
    ASSERT_EQ(v->repeats.size(), 1u) << v->label;
    const RunResult& r = v->repeats[0];
    ASSERT_EQ(r.test.size(), r.epochs.size()) << v->label;
    for (const EvalStats& t : r.test) EXPECT_EQ(t.samples, 12) << v->label;
    if (r.target) {
      EXPECT_EQ(r.target->epoch, static_cast<int64_t>(r.epochs.size())) << v->label;
      EXPECT_GE(r.test.back().top1, 100.0) << v->label;
    } else {
      EXPECT_EQ(r.epochs.size(), 3u) << v->label;
      for (const EvalStats& t : r.test) EXPECT_LT(t.top1, 100.0) << v->label;
    }
  }

  // A target fast reaches: the best it got. The same run again stops at the first epoch with it.
  double best = 0;
  size_t first = 0;
  const std::vector<EvalStats>& curve = fast.repeats[0].test;
  for (size_t i = 0; i < curve.size(); ++i) {
    if (curve[i].top1 > best) {
      best = curve[i].top1;
      first = i;
    }
  }
  ASSERT_GT(best, 0) << "fast learnt nothing in 12 steps of learnable data";
  s->options.run.target_accuracy = best;
  ASSERT_TRUE(SetOwnFlags(s->options, {{"test_images", "12"}, {"recipe", "fast"}}).ok());
  absl::StatusOr<ExperimentResult> again = RunTimeToAccuracy(*s);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->variants.size(), 1u);
  const RunResult& r = again->variants[0].repeats[0];
  ASSERT_TRUE(r.target.has_value());
  EXPECT_EQ(r.target->epoch, static_cast<int64_t>(first + 1));
  EXPECT_EQ(r.epochs.size(), first + 1);
  EXPECT_EQ(r.test.back().top1, best);

  // The section and the summary, from the results as they are.
  const ExperimentReport& report = **ReportRegistry::Global().Find("time_to_accuracy");
  const nlohmann::json summary = report.summarize(*again);
  EXPECT_TRUE(report.check_summary(JsonReader(summary, "summary")).ok());
  EXPECT_EQ(summary["fastest"], "fast");
  EXPECT_EQ(summary["recipes"][0]["reached"], 1);
  EXPECT_DOUBLE_EQ(summary["recipes"][0]["wall_s"].get<double>(), r.target->wall_s);
  const Section section = report.section(*again);
  ASSERT_EQ(section.Tables().size(), 2u);
  EXPECT_EQ(section.Tables()[0]->rows[0][1], "1 of 1");
}

}  // namespace
}  // namespace trainlab::experiments
