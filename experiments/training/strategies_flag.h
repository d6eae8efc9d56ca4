// --strategies: the compile strategies (each a name or a+b) that c8 compares and the profile
// times. One flag with two users, so it is defined here, next to the code both share, and each
// names it in its FlagSpec (with its own default there).
//
// Example (c8.cc):
//   TRAINLAB_ASSIGN_OR_RETURN(flags.strategies, ReadStrategiesFlag(values));
#ifndef TRAINLAB_EXPERIMENTS_TRAINING_STRATEGIES_FLAG_H_
#define TRAINLAB_EXPERIMENTS_TRAINING_STRATEGIES_FLAG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/harness/options.h"

namespace trainlab::experiments {

// --strategies as a list, each part of each name a strategy this binary links (a typo is an
// error naming the known ones, before anything trains).
absl::StatusOr<std::vector<std::string>> ReadStrategiesFlag(const FlagValues& values);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_TRAINING_STRATEGIES_FLAG_H_
