// Where this process stands in a data-parallel job, read from the environment torchrun (or a
// scheduler, or a person) sets: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, and under
// torchrun's agent TORCHELASTIC_USE_AGENT_STORE / TORCHELASTIC_RESTART_COUNT.
//
// One rule for the store (what Python's env:// rendezvous does): under torchrun's agent
// (TORCHELASTIC_USE_AGENT_STORE=True) the agent already hosts the TCPStore on MASTER_PORT, so every
// rank, 0 included, is a client and prefixes its keys with "/worker/attempt_<restart count>";
// otherwise rank 0 hosts the store.
//
// Example:
//   absl::StatusOr<std::optional<DistEnv>> env = ReadDistEnv();
//   if (!env.ok()) return env.status();          // "RANK=5 is out of range for WORLD_SIZE=2"
//   if (!env->has_value()) { /* one process */ }
#ifndef TRAINLAB_PLUGINS_DISTRIBUTED_DIST_ENV_H_
#define TRAINLAB_PLUGINS_DISTRIBUTED_DIST_ENV_H_

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace trainlab::distributed {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // picks the GPU on a multi-GPU machine
  std::string master_addr;
  int master_port = 0;
  bool agent_store = false;  // torchrun's agent hosts the store: every rank is a client
  int restart_count = 0;     // torchrun's attempt number (key prefix under the agent store)

  bool hosts_store() const { return !agent_store && rank == 0; }
  // The key prefix Python uses under the agent store, else empty.
  std::string store_prefix() const;
  std::string str() const;  // "rank 1 of 2 (local rank 1), store 127.0.0.1:29500 (agent's)"
};

using GetEnv = std::function<const char*(const char*)>;

// nullopt when WORLD_SIZE is unset, or 1 (one process, nothing to connect) unless
// `group_of_one`: then WORLD_SIZE=1 is a process group of one rank, read and checked like any
// other (a one-GPU machine checks the NCCL plumbing that way: tools/dist_check). Otherwise every
// variable checked, each problem one error naming the variable and its value.
absl::StatusOr<std::optional<DistEnv>> ReadDistEnv(const GetEnv& getenv = std::getenv,
                                                   bool group_of_one = false);

}  // namespace trainlab::distributed

#endif  // TRAINLAB_PLUGINS_DISTRIBUTED_DIST_ENV_H_
