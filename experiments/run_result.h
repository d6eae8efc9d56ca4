// What one training run measured: its epochs, loader stage times, test results and divergence.
// (Its own header: checkpoints store it and runs produce it.)
#ifndef TRAINLAB_EXPERIMENTS_RUN_RESULT_H_
#define TRAINLAB_EXPERIMENTS_RUN_RESULT_H_

#include <optional>
#include <vector>

#include "core/stats.h"
#include "plugins/data/loader.h"

namespace trainlab::experiments {

// One training run: its epochs, as measured.
struct RunResult {
  int repeat = 1;  // 1-based
  std::vector<EpochStats> epochs;
  std::vector<data::LoaderStageTimes> loader_stages;  // per epoch
  std::vector<EvalStats> test;                        // per epoch, when evaluated
  std::optional<Divergence> diverged;
  double total_s = 0;  // sum of epoch times

  double mean(double EpochStats::*field) const;
  double total(double EpochStats::*field) const;
};

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_RUN_RESULT_H_
