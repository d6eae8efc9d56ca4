// time_to_accuracy's section: per recipe, whether its runs reached the target test top-1, the
// wall time to it (epochs and evaluations: what a user waits) and the training time alone, the
// epochs it took, the final and best test top-1; what each recipe trained with; the answer (the
// fastest recipe, and where the others stood at its time); and test top-1 against wall time.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "experiments/reporting/experiment_report.h"

namespace trainlab::experiments {
namespace {

// A recipe's run setting, from its params (time_to_accuracy.cc: "settings"), or null.
nlohmann::json Setting(const VariantResult& v, const char* key) {
  if (!v.params.contains("settings") || !v.params["settings"].is_object()) return nullptr;
  const nlohmann::json& s = v.params["settings"];
  return s.contains(key) ? s[key] : nlohmann::json();
}

std::string SettingText(const VariantResult& v, const char* key) {
  const nlohmann::json value = Setting(v, key);
  if (value.is_null()) return "?";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) return value.empty() ? "-" : value.dump();
  if (value.is_number_float()) return absl::StrCat(value.get<double>());  // 0.4, not 0.40000...
  return value.dump();
}

// The target the runs trained to: the first run's record, or its settings.
double Target(const ExperimentResult& result) {
  for (const VariantResult& v : result.variants) {
    for (const RunResult& r : v.repeats) {
      if (r.target) return r.target->target;
    }
    if (const nlohmann::json t = Setting(v, "target_accuracy"); t.is_number()) {
      return t.get<double>();
    }
  }
  return 0;
}

// Test top-1 after each evaluated epoch against the wall time until then (epochs and the
// evaluations so far), as TargetReached::wall_s counts it.
std::vector<std::pair<double, double>> Curve(const RunResult& r) {
  std::vector<std::pair<double, double>> points;
  double wall = 0;
  for (size_t i = 0; i < r.epochs.size(); ++i) {
    wall += r.epochs[i].epoch_s;
    if (i >= r.test.size()) continue;
    wall += r.test[i].seconds;
    points.emplace_back(wall, r.test[i].top1);
  }
  return points;
}

double FinalTop1(const RunResult& r) { return r.test.empty() ? 0 : r.test.back().top1; }
double BestTop1(const RunResult& r) {
  double best = 0;
  for (const EvalStats& e : r.test) best = std::max(best, e.top1);
  return best;
}

// What a recipe's runs show: the reached ones' times, and all runs' accuracies.
struct RecipeFigures {
  int reached = 0, runs = 0;
  Spread wall_s, train_s, epochs;  // over the runs that reached the target
  Spread final_top1, best_top1;    // over every run
};

RecipeFigures Figures(const VariantResult& v) {
  RecipeFigures f;
  std::vector<double> wall, train, epochs;
  for (const RunResult& r : v.repeats) {
    ++f.runs;
    if (!r.target) continue;
    ++f.reached;
    wall.push_back(r.target->wall_s);
    train.push_back(r.target->train_s);
    epochs.push_back(static_cast<double>(r.target->epoch));
  }
  f.wall_s = Spread::Of(wall);
  f.train_s = Spread::Of(train);
  f.epochs = Spread::Of(epochs);
  f.final_top1 = v.Of(FinalTop1);
  f.best_top1 = v.Of(BestTop1);
  return f;
}

bool Ran(const VariantResult& v) { return v.skipped.empty() && !v.repeats.empty(); }

// The recipe with the lowest median wall time to the target among those whose every run reached
// it; nullptr when none did.
const VariantResult* Fastest(const ExperimentResult& result) {
  const VariantResult* best = nullptr;
  double best_s = std::numeric_limits<double>::infinity();
  for (const VariantResult& v : result.variants) {
    if (!Ran(v)) continue;
    const RecipeFigures f = Figures(v);
    if (f.reached == f.runs && f.wall_s.median < best_s) {
      best_s = f.wall_s.median;
      best = &v;
    }
  }
  return best;
}

// The test top-1 of `r`'s last evaluation finished by `wall_s`, if one was.
std::optional<double> Top1By(const RunResult& r, double wall_s) {
  std::optional<double> top1;
  for (const auto& [t, acc] : Curve(r)) {
    if (t <= wall_s) top1 = acc;
  }
  return top1;
}

std::string Percent(const Spread& s) { return FormatValue(s, 2, "%"); }

Section TimeToAccuracySection(const ExperimentResult& result) {
  Section s;
  const double target = Target(result);
  Table t{.header = {"recipe", "reached", "wall time to target", "training time to target",
                     "epochs to target", "final test top-1", "best test top-1"}};
  Table how{.header = {"recipe", "optimizer", "batch", "lr", "schedule", "warm-up epochs",
                       "label smoothing", "tta", "strategy", "epochs at most"}};
  std::vector<Series> series;
  std::vector<std::string> skipped;
  for (const VariantResult& v : result.variants) {
    if (!Ran(v)) {
      skipped.push_back(absl::StrCat("`", v.label, "`: ", v.skipped));
      continue;
    }
    const RecipeFigures f = Figures(v);
    const bool any = f.reached > 0;
    t.rows.push_back({v.label, absl::StrCat(f.reached, " of ", f.runs),
                      any ? FormatSeconds(f.wall_s) : "-", any ? FormatSeconds(f.train_s) : "-",
                      any ? FormatValue(f.epochs, 0) : "-", Percent(f.final_top1),
                      Percent(f.best_top1)});
    how.rows.push_back({v.label, SettingText(v, "optimizer"), SettingText(v, "batch_size"),
                        SettingText(v, "lr"), SettingText(v, "lr_schedule"),
                        SettingText(v, "warmup_epochs"), SettingText(v, "label_smoothing"),
                        SettingText(v, "tta"), SettingText(v, "strategy"),
                        SettingText(v, "epochs")});
    for (const RunResult& r : v.repeats) {
      Series line{v.repeats.size() > 1 ? absl::StrCat(v.label, " (run ", r.repeat, ")") : v.label,
                  Curve(r)};
      series.push_back(std::move(line));
    }
  }
  s.AddTable(std::move(t));
  s.AddTable(std::move(how));
  s.AddText(
      "Wall time counts each epoch (data loading included) and each evaluation after it; "
      "training time counts the forward, loss, backward and optimizer steps alone. Times are "
      "medians (and ranges) over the runs that reached the target.");
  if (!skipped.empty()) s.AddText("Skipped here: " + absl::StrJoin(skipped, "; ") + ".");
  if (const VariantResult* fastest = Fastest(result); fastest != nullptr) {
    const double at = Figures(*fastest).wall_s.median;
    std::vector<std::string> others;
    for (const VariantResult& v : result.variants) {
      if (!Ran(v) || &v == fastest) continue;
      const std::optional<double> top1 = Top1By(v.repeats.front(), at);
      others.push_back(top1 ? absl::StrFormat("`%s` had %.2f%%", v.label, *top1)
                            : absl::StrFormat("`%s` had not finished an epoch", v.label));
    }
    s.AddAnswer(absl::StrFormat(
        "`%s` reaches %.2f%% test top-1 fastest, in %s of wall time%s", fastest->label, target,
        FormatSeconds(at),
        others.empty() ? "."
                       : absl::StrCat("; by then ", absl::StrJoin(others, ", "),
                                      " (its first run's last evaluation by that time).")));
  } else {
    std::string best_label;
    double best = -1;
    for (const VariantResult& v : result.variants) {
      if (Ran(v) && Figures(v).best_top1.max > best) {
        best = Figures(v).best_top1.max;
        best_label = v.label;
      }
    }
    if (best >= 0) {
      s.AddAnswer(absl::StrFormat(
          "no recipe reached %.2f%% test top-1 in every run within its epochs; the best test "
          "top-1 was %.2f%% (`%s`).",
          target, best, best_label));
    }
  }
  if (series.empty()) return s;  // every recipe skipped: nothing to draw
  s.AddPlot({.file = "time_to_accuracy.svg",
             .title = absl::StrFormat("Test top-1 against wall time, to %.2f%%", target),
             .xlabel = "wall seconds (epochs and evaluations)",
             .ylabel = "test top-1 %",
             .series = std::move(series),
             .tics_at_points = false});
  return s;
}

nlohmann::json TimeToAccuracySummary(const ExperimentResult& result) {
  nlohmann::json recipes = nlohmann::json::array();
  for (const VariantResult& v : result.variants) {
    if (!Ran(v)) continue;
    const RecipeFigures f = Figures(v);
    nlohmann::json r = {{"recipe", v.label},
                        {"reached", f.reached},
                        {"runs", f.runs},
                        {"final_top1", f.final_top1.median}};
    if (f.reached > 0) {
      r["wall_s"] = f.wall_s.median;
      r["train_s"] = f.train_s.median;
      r["epochs"] = f.epochs.median;
    }
    recipes.push_back(std::move(r));
  }
  const VariantResult* fastest = Fastest(result);
  return {{"target_accuracy", Target(result)},
          {"fastest", fastest != nullptr ? fastest->label : ""},
          {"recipes", std::move(recipes)}};
}

absl::Status TimeToAccuracyCheckSummary(const JsonReader& s) {
  TRAINLAB_ASSIGN_OR_RETURN(const double target, s.Number("target_accuracy"));
  if (!(target >= 0 && target <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat(s.path(), ".target_accuracy: ", target, " is not a top-1 % in [0, 100]"));
  }
  TRAINLAB_RETURN_IF_ERROR(s.String("fastest").status());
  TRAINLAB_ASSIGN_OR_RETURN(std::vector<JsonReader> recipes, s.Array("recipes"));
  for (const JsonReader& r : recipes) {
    TRAINLAB_RETURN_IF_ERROR(r.String("recipe").status());
    TRAINLAB_ASSIGN_OR_RETURN(const int64_t runs, r.Int("runs", 0, 1 << 20));
    TRAINLAB_RETURN_IF_ERROR(r.Int("reached", 0, runs).status());
    TRAINLAB_RETURN_IF_ERROR(r.Number("final_top1").status());
    for (const char* key : {"wall_s", "train_s", "epochs"}) {
      if (r.Has(key)) TRAINLAB_RETURN_IF_ERROR(r.Number(key).status());
    }
  }
  return absl::OkStatus();
}

const bool kRegistered = ReportRegistry::Global().Register(
    "time_to_accuracy",
    {.title = "Time to accuracy",
     .question = "How fast does each training recipe reach the target test top-1?",
     .section = TimeToAccuracySection,
     .summarize = TimeToAccuracySummary,
     .check_summary = TimeToAccuracyCheckSummary});

}  // namespace
}  // namespace trainlab::experiments
