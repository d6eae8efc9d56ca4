// A model's weights in the file format Python's `torch.load` reads: a dict from PyTorch's
// parameter and buffer names to CPU tensors, pickled by LibTorch's `torch::jit::pickle_save`.
// Python loads it into the lab's model with
//   model.load_state_dict(torch.load("weights.pt"))
// (tools/lab/check_saved_model.py checks exactly that against trainlab's own test results).
//
// Example:
//   absl::StatusOr<std::string> bytes = StateDictBytes(*model);
//   absl::StatusOr<NamedTensors> back = ParseStateDict(*bytes, "weights.pt");
#ifndef TRAINLAB_PLUGINS_MODELS_STATE_DICT_H_
#define TRAINLAB_PLUGINS_MODELS_STATE_DICT_H_

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"

namespace trainlab::models {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The pickled dict of `model.StateDict()` (tensors detached, copied to the CPU).
absl::StatusOr<std::string> StateDictBytes(const ClassifierImpl& model);

// The name -> tensor pairs of such a file's bytes, in its order; `path` names it in errors.
absl::StatusOr<NamedTensors> ParseStateDict(const std::string& bytes, const std::string& path);

}  // namespace trainlab::models

#endif  // TRAINLAB_PLUGINS_MODELS_STATE_DICT_H_
