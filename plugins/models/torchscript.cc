#include "plugins/models/torchscript.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/jit/serialization/import.h>

#include <algorithm>
#include <filesystem>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/torch_error.h"

namespace trainlab::models {
namespace {

// torch::nn::Module names may not contain dots; scripted ones are dotted paths.
std::string ModuleKey(const std::string& dotted) {
  return absl::StrReplaceAll(dotted, {{".", ":"}});
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string Shape(const at::Tensor& t) {
  return absl::StrCat("(", absl::StrJoin(t.sizes(), ", "), ")");
}

}  // namespace

TorchScriptModelImpl::TorchScriptModelImpl(torch::jit::Module module, std::string path)
    : module_(std::move(module)), path_(std::move(path)) {
  for (const auto& p : module_.named_parameters(/*recurse=*/true)) {
    register_parameter(ModuleKey(p.name), p.value, p.value.requires_grad());
  }
  for (const auto& b : module_.named_buffers(/*recurse=*/true)) {
    register_buffer(ModuleKey(b.name), b.value);
  }
  train(true);
}

absl::StatusOr<std::shared_ptr<TorchScriptModelImpl>> TorchScriptModelImpl::Load(
    const std::string& path, int64_t num_classes) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such TorchScript file"));
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, c10::Device(c10::kCPU));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a TorchScript archive (write one with torch.jit.script(model).save(path)): ",
        TorchErrorLine(e)));
  }
  if (!module.find_method("forward")) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the scripted module has no forward() method"));
  }
  // One probe batch, in eval mode and without gradients so that nothing the model keeps
  // (BatchNorm statistics) changes.
  const at::Tensor probe = at::zeros({2, 3, 32, 32});
  try {
    torch::NoGradGuard no_grad;
    module.eval();
    const c10::IValue out = module.forward({probe});
    module.train();
    if (!out.isTensor()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": forward() returns ", out.tagKind(), ", not a tensor of logits"));
    }
    const at::Tensor logits = out.toTensor();
    if (logits.dim() != 2 || logits.size(0) != 2 || logits.size(1) != num_classes ||
        !logits.is_floating_point()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": forward() maps a (2, 3, 32, 32) batch to ", Shape(logits), " ",
                       std::string(c10::toString(logits.scalar_type())), "; trainlab needs (2, ",
                       num_classes, ") floating-point logits"));
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": forward() fails on a (2, 3, 32, 32) float batch: ", TorchErrorLine(e)));
  }
  return std::shared_ptr<TorchScriptModelImpl>(new TorchScriptModelImpl(std::move(module), path));
}

at::Tensor TorchScriptModelImpl::forward(const at::Tensor& x) {
  return module_.forward({x}).toTensor();
}

void TorchScriptModelImpl::train(bool on) {
  torch::nn::Module::train(on);
  module_.train(on);
}

LayerCounts TorchScriptModelImpl::CountLayers() const {
  // Scripted submodules keep their Python class: __torch__.torch.nn.modules.conv.Conv2d.
  LayerCounts c;
  for (const auto& m : module_.named_modules()) {
    const auto type = m.value.type()->name();
    if (!type) continue;
    const std::string name = type->qualifiedName();
    if (EndsWith(name, ".Conv2d") && m.value.hasattr("weight")) {
      const at::Tensor w = m.value.attr("weight").toTensor();  // (out, in, kh, kw)
      ++c.conv2d;
      if (w.dim() == 4 && std::min(w.size(2), w.size(3)) >= 3) ++c.conv2d_3x3_or_larger;
    } else if (EndsWith(name, ".Linear") && m.value.hasattr("weight")) {
      c.last_linear_in = m.value.attr("weight").toTensor().size(1);  // (out, in)
    }
  }
  return c;
}

std::vector<std::pair<std::string, at::Tensor>> TorchScriptModelImpl::StateDict() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : module_.named_parameters(/*recurse=*/true))
    out.emplace_back(p.name, p.value);
  for (const auto& b : module_.named_buffers(/*recurse=*/true)) out.emplace_back(b.name, b.value);
  return out;
}

namespace {

const bool kRegistered = ModelRegistry::Global().Register(
    "torchscript",
    {.description = "a TorchScript module scripted in Python (--model_path=FILE.pt)",
     .needs_path = true,
     .make = [](const ModelSpec& spec) -> absl::StatusOr<std::shared_ptr<ClassifierImpl>> {
       absl::StatusOr<std::shared_ptr<TorchScriptModelImpl>> m =
           TorchScriptModelImpl::Load(spec.path, spec.num_classes);
       if (!m.ok()) return m.status();
       return std::shared_ptr<ClassifierImpl>(*std::move(m));
     }});

}  // namespace
}  // namespace trainlab::models
