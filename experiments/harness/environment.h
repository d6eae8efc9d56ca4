// What a results file records of the machine and the session: CPU, cores, threads, allocator,
// CPU kernels, LibTorch, CUDA and cuDNN, GPUs, the workspace's git commit, the date.
//
// Example (experiment_main.cc):
//   file.environment = EnvironmentJson(session);
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_ENVIRONMENT_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_ENVIRONMENT_H_

#include <nlohmann/json.hpp>

#include "experiments/harness/session.h"

namespace trainlab::experiments {

nlohmann::json EnvironmentJson(const Session& session);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_ENVIRONMENT_H_
