// The model registry: plugins under plugins/models/ register a classifier factory by name.
//
// A registered model is a `ClassifierImpl`: a torch::nn::Module with `forward(images) -> logits`
// (so it satisfies the Model concept) that can also describe its layers (what the lab's Q1 and
// Q2 count) and give its state under PyTorch's names (what `--save_model` writes, so that
// Python's `load_state_dict` takes it).
//
// Example:
//   absl::StatusOr<const ModelEntry*> e = ModelRegistry::Global().Find("resnet18_no_bn");
//   absl::StatusOr<std::shared_ptr<ClassifierImpl>> model = (*e)->make(ModelSpec{});
#ifndef TRAINLAB_CORE_MODEL_H_
#define TRAINLAB_CORE_MODEL_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/introspect.h"
#include "core/registry.h"

namespace trainlab {

// What the lab's Q1 and Q2 ask about a model, read from the model itself.
struct LayerCounts {
  int64_t conv2d = 0;                     // every 2-D convolution
  int64_t conv2d_3x3_or_larger = 0;       // the same without 1x1 convolutions
  std::optional<int64_t> last_linear_in;  // input width of the last linear layer
};

class ClassifierImpl : public torch::nn::Module {
 public:
  // x: (B, 3, 32, 32) float -> logits (B, num_classes)
  virtual at::Tensor forward(const at::Tensor& x) = 0;

  // By default counted over the torch::nn modules (introspect.h); a model made of other
  // modules (a TorchScript one) overrides it.
  virtual LayerCounts CountLayers() const {
    return {.conv2d = CountConv2d(*this),
            .conv2d_3x3_or_larger = CountConv2d(*this, /*min_kernel=*/3),
            .last_linear_in = LastLinearInFeatures(*this)};
  }

  // Parameters, then buffers, under the names Python's `state_dict()` uses for the same model.
  // By default LibTorch's dotted names, which are PyTorch's when the modules are registered
  // under the attribute names the Python model uses.
  virtual std::vector<std::pair<std::string, at::Tensor>> StateDict() const {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& p : named_parameters()) out.emplace_back(p.key(), p.value());
    for (const auto& b : named_buffers()) out.emplace_back(b.key(), b.value());
    return out;
  }
};

// What a factory may need besides its name.
struct ModelSpec {
  int64_t num_classes = 10;
  std::string path;  // a file the model is loaded from (--model_path), for those that need one
};

struct ModelEntry {
  static constexpr std::string_view kKind = "model";

  std::string description;
  bool needs_path = false;  // true when `make` reads ModelSpec::path
  std::function<absl::StatusOr<std::shared_ptr<ClassifierImpl>>(const ModelSpec& spec)> make;
};

using ModelRegistry = Registry<ModelEntry>;

// Finds `name` and makes it; the error names the model (and the file, for a loaded one).
inline absl::StatusOr<std::shared_ptr<ClassifierImpl>> MakeModel(std::string_view name,
                                                                 const ModelSpec& spec) {
  absl::StatusOr<const ModelEntry*> entry = ModelRegistry::Global().Find(name);
  if (!entry.ok()) return entry.status();
  if ((*entry)->needs_path && spec.path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model=", std::string(name), " needs --model_path=FILE"));
  }
  if (!(*entry)->needs_path && !spec.path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model_path is for a model loaded from a "
                     "file (--model=torchscript), not --model=",
                     std::string(name)));
  }
  return (*entry)->make(spec);
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_MODEL_H_
