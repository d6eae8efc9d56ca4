#include "experiments/training/strategies_flag.h"

#include <gflags/gflags.h>

#include "core/status_macros.h"
#include "core/strategy.h"

DEFINE_string(strategies,
              "eager,channels_last,amp_bf16,cudnn_autotune,channels_last+conv_autotune,"
              "channels_last+amp_bf16+conv_autotune+fused_bn_relu,cuda_graph,"
              "cuda_graph+channels_last+amp_bf16",
              "Strategies (or a+b) to compare with eager, in order.");

namespace trainlab::experiments {

absl::StatusOr<std::vector<std::string>> ReadStrategiesFlag(const FlagValues& values) {
  TRAINLAB_ASSIGN_OR_RETURN(std::vector<std::string> names, values.List("strategies"));
  TRAINLAB_RETURN_IF_ERROR(CheckStrategyNames(names));
  return names;
}

}  // namespace trainlab::experiments
