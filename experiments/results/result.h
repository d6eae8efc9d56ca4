// The result model: what an experiment measured, as data. Every output renders from it and
// computes nothing of its own: the lab's per-epoch blocks, the terminal tables, the results
// files (result_json.h), REPORT.md and its plots (report.h), and the comparison of two sets.
//
//   ExperimentResult   one experiment ("c6"): its variants, and the answers drawn from them
//     VariantResult    one configuration of it ("adam"), run --repeats times, or skipped
//       RunResult      one training run: its epochs (with per-batch records), loader stages,
//                      test results and divergence
//
// Example:
//   const VariantResult& adam = result.variants[1];
//   Spread train = adam.MeanOf(&EpochStats::train_s);  // median and range over the repeats
#ifndef TRAINLAB_EXPERIMENTS_RESULTS_RESULT_H_
#define TRAINLAB_EXPERIMENTS_RESULTS_RESULT_H_

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/stats.h"
#include "experiments/results/spread.h"

namespace trainlab::experiments {

// One training run, as measured.
struct RunResult {
  int repeat = 1;  // 1-based
  std::vector<EpochStats> epochs;
  std::vector<LoaderStageTimes> loader_stages;  // per epoch
  std::vector<EvalStats> test;                  // per epoch, when evaluated
  std::optional<Divergence> diverged;
  std::optional<TargetReached> target;  // --target_accuracy reached (the run stopped there)
  double total_s = 0;                   // sum of epoch times

  double mean(double EpochStats::*field) const;   // over the epochs
  double total(double EpochStats::*field) const;  // over the epochs
  LoaderStageTimes total_stages() const;          // over the epochs
};

// What a variant trained with, as the results record it.
struct VariantSetup {
  std::string optimizer, strategy, model, device;
  int num_workers = 0;
};

// One configuration of an experiment ("4 workers", "adam", "channels_last"): its runs (one per
// repeat), or why it could not run here.
struct VariantResult {
  std::string label;
  nlohmann::json params = nlohmann::json::object();  // what distinguishes it: {"num_workers": 4}
  VariantSetup setup;
  std::vector<RunResult> repeats;
  std::string skipped;  // non-empty: why it did not run (a strategy that cannot run here)

  // `metric` of each repeat, as median and range.
  Spread Of(const std::function<double(const RunResult&)>& metric) const;
  Spread MeanOf(double EpochStats::*field) const;   // per repeat: mean over its epochs
  Spread TotalOf(double EpochStats::*field) const;  // per repeat: sum over its epochs
  Spread LastOf(double EpochStats::*field) const;   // per repeat: its last epoch
  Spread TotalTime() const;                         // per repeat: RunResult::total_s
  bool diverged() const;
  const std::optional<Divergence>& first_divergence() const;  // of the first repeat that diverged
};

// What an experiment produced: its variants' runs and the answers drawn from them once, when it
// ran (`summary`: e.g. C3's {"best_workers_total": 4}, which C4-C8 read back).
struct ExperimentResult {
  std::string experiment;  // "c3"
  std::vector<VariantResult> variants;
  nlohmann::json summary = nlohmann::json::object();
  std::vector<std::string> notes;  // sentences kept in the results file ("No GPU here: ...")

  // The variant labelled `label` that ran (not skipped), or nullptr.
  const VariantResult* Find(const std::string& label) const;
};

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_RESULTS_RESULT_H_
