#include "plugins/distributed/data_parallel.h"

#include <c10/util/Exception.h>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>

#include <algorithm>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/torch_error.h"

namespace trainlab::distributed {

namespace {

// DDP's assignment: bucket indices and each bucket's size limit.
std::tuple<std::vector<std::vector<size_t>>, std::vector<size_t>> Assign(
    const std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  return c10d::compute_bucket_assignment_by_size(
      params,
      {static_cast<size_t>(DataParallel::kFirstBucketBytes), static_cast<size_t>(bucket_bytes)},
      std::vector<bool>(params.size(), false));
}

}  // namespace

DataParallel::~DataParallel() = default;

std::vector<std::vector<size_t>> DataParallel::Buckets(const std::vector<at::Tensor>& params,
                                                       int64_t bucket_bytes) {
  return std::get<0>(Assign(params, bucket_bytes));
}

absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::Attach(Communicator& comm,
                                                                   torch::nn::Module& model,
                                                                   int64_t bucket_bytes) {
  std::vector<at::Tensor> state;
  std::vector<at::Tensor> params;
  std::unordered_map<size_t, std::string> names;
  for (const auto& p : model.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    names[params.size()] = p.key();
    params.push_back(p.value());
  }
  for (const at::Tensor& p : model.parameters()) state.push_back(p);
  for (const at::Tensor& b : model.buffers()) state.push_back(b);
  if (absl::Status s = comm.Broadcast(state); !s.ok()) return s;

  std::unique_ptr<DataParallel> dp(new DataParallel);
  dp->group_ = comm.group();
  dp->rank_ = comm.rank();
  for (const at::Tensor& b : model.buffers()) dp->buffers_.push_back(b.detach());
  try {
    c10d::verify_params_across_processes(comm.group(), params, c10::nullopt);
    std::vector<std::vector<size_t>> buckets;
    std::vector<size_t> limits;
    std::tie(buckets, limits) = Assign(params, bucket_bytes);
    // As DDP does: buckets in reverse order of the parameters, so bucket 0 holds the last
    // layers, whose gradients are ready first (the Reducer all-reduces buckets in index order).
    std::reverse(buckets.begin(), buckets.end());
    std::reverse(limits.begin(), limits.end());
    dp->buckets_ = static_cast<int>(buckets.size());
#if TORCH_VERSION_MAJOR >= 2
    // LibTorch 2.x (checked against 2.11): no per-bucket limits; the last argument is the caps
    // for rebuilt buckets, which DDP leaves empty (the default caps apply).
    (void)limits;
    dp->reducer_ = std::make_shared<c10d::Reducer>(
        params, std::move(buckets), comm.group(), std::vector<bool>(params.size(), false),
        bucket_bytes, /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false,
        std::move(names), kFirstBucketBytes, /*skip_all_reduce_unused_params=*/false,
        /*use_python_reducer=*/false, /*bucket_bytes_cap_list=*/std::vector<int64_t>{});
#else
    dp->reducer_ = std::make_shared<c10d::Reducer>(
        params, std::move(buckets), std::move(limits), comm.group(),
        std::vector<bool>(params.size(), false), bucket_bytes,
        /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false, std::move(names),
        kFirstBucketBytes);
#endif
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("rank ", comm.rank(),
                     ": setting up gradient averaging failed (do all ranks train the "
                     "same model?): ",
                     TorchErrorLine(e)));
  }
  return dp;
}

namespace {
// DDP's buffer bucket (_sync_buffers: broadcast_coalesced with the bucket cap).
constexpr size_t kBufferBucketBytes = DataParallel::kBucketBytes;
}  // namespace

absl::Status DataParallel::SyncBuffers() {
  if (buffers_.empty()) return absl::OkStatus();
  try {
    c10d::broadcast_coalesced(group_, buffers_, kBufferBucketBytes, 0);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("rank ", rank_,
                     ": broadcasting rank 0's batch-norm statistics failed (a peer rank "
                     "died or hung): ",
                     TorchErrorLine(e)));
  }
  return absl::OkStatus();
}

GradientHooks DataParallel::hooks() {
  std::shared_ptr<c10d::Reducer> r = reducer_;
  // As DDP's forward: rank 0's buffers to every rank (broadcast_buffers=True); after the first
  // iteration the Reducer rebuilds its buckets once, in the order gradients became ready (rank
  // 0's order, broadcast), then prepares for the step. A failed collective throws, as the
  // Reducer's own do; the trainer's caller names it (experiments/run.cc).
  return {.before_forward =
              [r, group = group_, buffers = buffers_] {
                if (!buffers.empty()) {
                  c10d::broadcast_coalesced(group, buffers, kBufferBucketBytes, 0);
                }
                r->rebuild_buckets();
                r->prepare_for_forward();
              },
          .before_backward = [r](const at::Tensor& loss) { r->prepare_for_backward({loss}); }};
}

}  // namespace trainlab::distributed
