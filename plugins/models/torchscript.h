// A model scripted in Python (`torch.jit.script(model).save("model.pt")`), trained by trainlab's
// trainer, optimizers and strategies: the lab's extra credit, loading a TorchScript model in C++.
//
// The module's parameters and buffers are registered, as the same tensors, on a
// torch::nn::Module, so optimizers, `to(device)`, checkpoints and digests see them; `train()` /
// `eval()` switch the scripted module too; the loss stays trainlab's. Loading checks, each with one
// error naming the file: it exists, it is a TorchScript archive, it has `forward`, and `forward`
// maps a (2, 3, 32, 32) float batch to (2, num_classes) logits.
//
// Registered as model "torchscript" (needs --model_path).
//
// Example:
//   absl::StatusOr<std::shared_ptr<TorchScriptModelImpl>> m =
//       TorchScriptModelImpl::Load("resnet18_scripted.pt", /*num_classes=*/10);
#ifndef TRAINLAB_PLUGINS_MODELS_TORCHSCRIPT_H_
#define TRAINLAB_PLUGINS_MODELS_TORCHSCRIPT_H_

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model.h"

namespace trainlab::models {

class TorchScriptModelImpl : public ClassifierImpl {
 public:
  static absl::StatusOr<std::shared_ptr<TorchScriptModelImpl>> Load(const std::string& path,
                                                                    int64_t num_classes);

  at::Tensor forward(const at::Tensor& x) override;
  void train(bool on = true) override;
  LayerCounts CountLayers() const override;
  // The scripted module's own (Python) names.
  std::vector<std::pair<std::string, at::Tensor>> StateDict() const override;

  const std::string& path() const { return path_; }

 private:
  TorchScriptModelImpl(torch::jit::Module module, std::string path);

  torch::jit::Module module_;
  std::string path_;
};

}  // namespace trainlab::models

#endif  // TRAINLAB_PLUGINS_MODELS_TORCHSCRIPT_H_
