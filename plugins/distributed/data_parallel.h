// Gradients averaged across ranks in buckets while the backward pass is still running, as
// PyTorch's DistributedDataParallel does, by DDP's own engine: c10d's Reducer. Attaching
// broadcasts rank 0's parameters and buffers to every rank (so all start identical), checks that
// every rank has the same parameter shapes, and assigns buckets (1 MiB first, then 25 MiB, DDP's
// defaults). The trainer sees only GradientHooks (core/step.h).
//
// Batch norm as DDP does by default (broadcast_buffers=True, no SyncBatchNorm): each rank
// normalises with its own batch's mean and variance, and before every forward rank 0's buffers
// (running mean and variance, batch counters) are broadcast to every rank, as DDP's forward does;
// so the running statistics evaluated, saved and checkpointed are rank 0's, on every rank
// (SyncBuffers before an evaluation does the same).
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<DataParallel> dp, DataParallel::Attach(*comm,
//   *model)); trainer_options.gradients = dp->hooks();
#ifndef TRAINLAB_PLUGINS_DISTRIBUTED_DATA_PARALLEL_H_
#define TRAINLAB_PLUGINS_DISTRIBUTED_DATA_PARALLEL_H_

#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/step.h"
#include "plugins/distributed/communicator.h"

namespace c10d {
class Reducer;
}  // namespace c10d

namespace trainlab::distributed {

class DataParallel {
 public:
  static constexpr int64_t kFirstBucketBytes = 1 << 20;  // DDP's defaults
  static constexpr int64_t kBucketBytes = 25 << 20;

  // `model` must outlive the result; every rank calls this with the same architecture.
  static absl::StatusOr<std::unique_ptr<DataParallel>> Attach(Communicator& comm,
                                                              torch::nn::Module& model,
                                                              int64_t bucket_bytes = kBucketBytes);
  ~DataParallel();

  // DDP's bucket assignment of `params` (indices into it): kFirstBucketBytes first, then
  // `bucket_bytes` each; what Attach gives the Reducer, and what benchmarks time.
  static std::vector<std::vector<size_t>> Buckets(const std::vector<at::Tensor>& params,
                                                  int64_t bucket_bytes = kBucketBytes);

  GradientHooks hooks();
  int buckets() const { return buckets_; }
  // Rank 0's buffers into every rank's (what each forward starts with); call before evaluating.
  absl::Status SyncBuffers();

 private:
  DataParallel() = default;
  std::shared_ptr<c10d::Reducer> reducer_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  std::vector<at::Tensor> buffers_;
  int rank_ = 0;
  int buckets_ = 0;
};

}  // namespace trainlab::distributed

#endif  // TRAINLAB_PLUGINS_DISTRIBUTED_DATA_PARALLEL_H_
