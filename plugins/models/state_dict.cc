#include "plugins/models/state_dict.h"

#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>
#include <c10/util/Exception.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include "absl/strings/str_cat.h"
#include "core/torch_error.h"

namespace trainlab::models {

absl::StatusOr<std::string> StateDictBytes(const ClassifierImpl& model) {
  try {
    c10::Dict<std::string, at::Tensor> dict;
    for (const auto& [name, tensor] : model.StateDict()) {
      dict.insert(name, tensor.detach().to(c10::kCPU).contiguous());
    }
    const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(dict));
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("pickling the model's state_dict failed: ", TorchErrorLine(e)));
  }
}

absl::StatusOr<NamedTensors> ParseStateDict(const std::string& bytes, const std::string& path) {
  c10::IValue v;
  try {
    v = torch::jit::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a pickled state_dict: ", TorchErrorLine(e)));
  }
  if (!v.isGenericDict()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds ", v.tagKind(), ", not a dict"));
  }
  NamedTensors out;
  for (const auto& item : v.toGenericDict()) {
    if (!item.key().isString() || !item.value().isTensor()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a name -> tensor dict (",
                                                     item.key().tagKind(), " -> ",
                                                     item.value().tagKind(), ")"));
    }
    out.emplace_back(item.key().toStringRef(), item.value().toTensor());
  }
  return out;
}

}  // namespace trainlab::models
