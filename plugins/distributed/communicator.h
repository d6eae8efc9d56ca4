// The data-parallel side of training, behind one small interface: a process group of every rank
// (PyTorch's own c10d), with what the trainer needs from it: average these gradients, sum these
// numbers, start every rank from rank 0's weights. The trainer never sees a backend.
//
// Backends, as Python's init_process_group("cpu:gloo,cuda:nccl") sets them up:
//   gloo  Gloo for every tensor (CPU ones, and CUDA ones through host copies). Every build.
//   nccl  NCCL for CUDA tensors (gradients, parameters, batch-norm buffers: on the rank's GPU,
//         cuda:LOCAL_RANK), Gloo for the CPU ones (the per-batch agreement, the settings
//         comparison, rank 0's decisions). Only the --config=cuda build (LibTorch 2.x with
//         c10d's ProcessGroupNCCL); NcclBuilt() says whether this binary has it.
//
// Failures are values: a rank that cannot reach the store, or a peer that died or hung, makes
// the call return an error within `timeout` (not Gloo's default 30 minutes), naming what failed.
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm,
//                             Communicator::Connect(*env, std::chrono::seconds(120)));
//   TRAINLAB_RETURN_IF_ERROR(comm->Broadcast(params));      // rank 0's values everywhere
//   TRAINLAB_RETURN_IF_ERROR(comm->AverageInPlace(grads));  // mean over ranks
#ifndef TRAINLAB_PLUGINS_DISTRIBUTED_COMMUNICATOR_H_
#define TRAINLAB_PLUGINS_DISTRIBUTED_COMMUNICATOR_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/util/intrusive_ptr.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "plugins/distributed/dist_env.h"

namespace c10d {
class ProcessGroup;
class Store;
}  // namespace c10d

namespace trainlab::distributed {

enum class Backend { kGloo, kNccl };
const char* BackendName(Backend b);  // "gloo", "nccl"

// Whether this binary was built with c10d's NCCL process group (the --config=cuda build).
bool NcclBuilt();

// The backend `--dist_backend=<flag>` asks for on `device`: "gloo"; "nccl" (an error where the
// build has no NCCL or the device is not CUDA, naming the fix); "auto": NCCL on a CUDA device of
// a build that has it, else Gloo.
absl::StatusOr<Backend> ChooseBackend(const std::string& flag, const c10::Device& device);

class Communicator {
 public:
  // Connects to the store (hosting it on rank 0 unless torchrun's agent does) and builds the
  // process group. Every rank must call it; it returns when all have joined, or an error after
  // `timeout`. With Backend::kNccl, `device` is this rank's CUDA device (cuda:LOCAL_RANK).
  static absl::StatusOr<std::unique_ptr<Communicator>> Connect(
      const DistEnv& env, std::chrono::milliseconds timeout, Backend backend = Backend::kGloo,
      c10::Device device = c10::Device(c10::kCPU));
  ~Communicator();

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const DistEnv& env() const { return env_; }
  Backend backend() const { return backend_; }

  // Sums each tensor over the ranks and divides by the world size, in place. The tensors are
  // flattened into one buffer per call (one all-reduce, not one per tensor).
  absl::Status AverageInPlace(const std::vector<at::Tensor>& tensors);
  // Element-wise sum over the ranks (loss sums, correct counts, sample counts).
  absl::StatusOr<std::vector<double>> SumOverRanks(const std::vector<double>& values);
  // Element-wise maximum over the ranks (flags: "some rank diverged", "some rank was signalled").
  absl::StatusOr<std::vector<double>> MaxOverRanks(const std::vector<double>& values);
  // Rank `root`'s bytes on every rank (the others pass anything; their `bytes` are ignored): a
  // decision taken once on rank 0, or the newest checkpoint copy from the node that holds it.
  absl::StatusOr<std::string> BroadcastBytes(const std::string& bytes, int root = 0);
  // Every rank's bytes, in rank order, on every rank (the settings agreement, what each node's
  // checkpoint folder holds). `what` names the exchange in errors.
  absl::StatusOr<std::vector<std::string>> AllGatherBytes(
      const std::string& bytes, const std::string& what = "comparing the ranks' settings");
  // Rank 0's values into every rank's tensors, in place.
  absl::Status Broadcast(const std::vector<at::Tensor>& tensors);
  // Waits for every rank.
  absl::Status Barrier();

  // The c10d process group, for c10d's own machinery (the Reducer).
  const c10::intrusive_ptr<c10d::ProcessGroup>& group() const { return group_; }

 private:
  Communicator(DistEnv env, std::chrono::milliseconds timeout, Backend backend);
  absl::Status Failed(const std::string& what, const std::exception& e) const;
  // Backend::kNccl: NCCL for the group's CUDA tensors, on `device`.
  absl::Status AddNccl(c10::Device device);
  // An all-reduce of `values` (as doubles): their sum or their maximum; `what` names it in the
  // error.
  enum class Reduce { kSum, kMax };
  absl::StatusOr<std::vector<double>> ReduceOverRanks(const std::vector<double>& values, Reduce op,
                                                      const char* what);

  DistEnv env_;
  std::chrono::milliseconds timeout_;
  Backend backend_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

}  // namespace trainlab::distributed

#endif  // TRAINLAB_PLUGINS_DISTRIBUTED_COMMUNICATOR_H_
