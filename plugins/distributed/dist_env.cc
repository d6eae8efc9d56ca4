#include "plugins/distributed/dist_env.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace trainlab::distributed {
namespace {

absl::StatusOr<int> IntVar(const GetEnv& getenv, const char* name, int lo, int hi,
                           const std::string& want) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') {
    return absl::InvalidArgumentError(absl::StrCat(name, " is not set; ", want));
  }
  int n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < lo || n > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "=", v, ": not an integer in [", lo, ", ", hi, "]"));
  }
  return n;
}

}  // namespace

std::string DistEnv::store_prefix() const {
  return agent_store ? absl::StrCat("/worker/attempt_", restart_count) : "";
}

std::string DistEnv::str() const {
  return absl::StrCat(
      "rank ", rank, " of ", world_size, " (local rank ", local_rank, "), store ", master_addr, ":",
      master_port,
      agent_store ? " (torchrun's agent hosts it)" : (rank == 0 ? " (hosted here)" : ""));
}

absl::StatusOr<std::optional<DistEnv>> ReadDistEnv(const GetEnv& getenv, bool group_of_one) {
  const char* ws = getenv("WORLD_SIZE");
  if (ws == nullptr || *ws == '\0') return std::nullopt;
  DistEnv e;
  absl::StatusOr<int> world = IntVar(getenv, "WORLD_SIZE", 1, 1 << 20, "");
  if (!world.ok()) return world.status();
  e.world_size = *world;
  if (e.world_size == 1 && !group_of_one) return std::nullopt;

  const char* rank = getenv("RANK");
  if (rank == nullptr || *rank == '\0') {
    return absl::InvalidArgumentError(absl::StrCat("WORLD_SIZE=", e.world_size,
                                                   " but RANK is not set (each process needs its "
                                                   "rank, 0 to ",
                                                   e.world_size - 1, ")"));
  }
  if (!absl::SimpleAtoi(rank, &e.rank) || e.rank < 0 || e.rank >= e.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("RANK=", rank,
                                                   " is out of range for WORLD_SIZE=", e.world_size,
                                                   " (0 to ", e.world_size - 1, ")"));
  }
  e.local_rank = e.rank;  // one machine by hand; torchrun and schedulers set LOCAL_RANK
  if (const char* lr = getenv("LOCAL_RANK"); lr != nullptr && *lr != '\0') {
    if (!absl::SimpleAtoi(lr, &e.local_rank) || e.local_rank < 0) {
      return absl::InvalidArgumentError(absl::StrCat("LOCAL_RANK=", lr, ": not an integer >= 0"));
    }
  }
  const char* addr = getenv("MASTER_ADDR");
  if (addr == nullptr || *addr == '\0') {
    return absl::InvalidArgumentError(
        absl::StrCat("WORLD_SIZE=", e.world_size,
                     " needs MASTER_ADDR (the host of the store: rank 0's, or "
                     "torchrun's agent's)"));
  }
  e.master_addr = addr;
  absl::StatusOr<int> port =
      IntVar(getenv, "MASTER_PORT", 1, 65535,
             absl::StrCat("WORLD_SIZE=", e.world_size, " needs the store's port"));
  if (!port.ok()) return port.status();
  e.master_port = *port;
  if (const char* agent = getenv("TORCHELASTIC_USE_AGENT_STORE"); agent != nullptr) {
    e.agent_store =
        std::string(agent) == "True" || std::string(agent) == "true" || std::string(agent) == "1";
  }
  if (e.agent_store) {
    if (const char* rc = getenv("TORCHELASTIC_RESTART_COUNT"); rc != nullptr && *rc != '\0') {
      if (!absl::SimpleAtoi(rc, &e.restart_count) || e.restart_count < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("TORCHELASTIC_RESTART_COUNT=", rc, ": not an integer >= 0"));
      }
    }
  }
  return e;
}

}  // namespace trainlab::distributed
