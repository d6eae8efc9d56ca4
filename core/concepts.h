// The three things a Trainer composes, stated as C++20 concepts, plus the Batch they pass.
//
// The core knows no particular model, optimizer or dataset: anything that satisfies these
// concepts trains. Run-time choice (an optimizer picked by name from a flag) goes through the
// registries in registry.h, whose handles satisfy the same concepts.
#ifndef TRAINLAB_CORE_CONCEPTS_H_
#define TRAINLAB_CORE_CONCEPTS_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <concepts>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"

namespace trainlab {

// One mini-batch on the host.
//   images: (B, 3, H, W) float32, normalised; pinned when the loader was asked for it.
//   labels: (B) int64 class indices.
struct Batch {
  at::Tensor images;
  at::Tensor labels;
  int64_t index = 0;  // position of the batch within its epoch
};

// A classifier: a torch::nn::Module with `forward(images) -> logits`.
//   Example: trainlab::models::ResNet18Impl (plugins/models/resnet18.h).
template <class M>
concept Model = std::derived_from<M, torch::nn::Module> && requires(M& m, const at::Tensor& x) {
  { m.forward(x) } -> std::convertible_to<at::Tensor>;
};

// Anything with LibTorch's optimizer surface: clear the gradients, apply one update.
//   Example: torch::optim::SGD, or any optimizer made by the OptimizerRegistry.
template <class O>
concept Optimizer = requires(O& o) {
  o.zero_grad();
  o.step();
};

// A source of batches, epoch by epoch. `start_epoch(e, first)` reshuffles for epoch e and
// starts at batch `first` (0 for a whole epoch; a resumed run skips what it trained); `next()`
// gives the epoch's batches in order and then std::nullopt; after a nullopt, `status()` says
// whether the epoch ended or failed (errors are values: a loader never throws into the trainer).
//   Example: trainlab::data::BatchLoader (plugins/data/loader.h).
template <class L>
concept Loader = requires(L& l, const L& cl, int64_t epoch) {
  l.start_epoch(epoch, epoch);
  { l.next() } -> std::same_as<std::optional<Batch>>;
  { cl.status() } -> std::convertible_to<absl::Status>;
  { l.batches_per_epoch() } -> std::convertible_to<int64_t>;
};

}  // namespace trainlab

#endif  // TRAINLAB_CORE_CONCEPTS_H_
