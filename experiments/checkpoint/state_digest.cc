#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <algorithm>
#include <sstream>

#include "core/hash.h"
#include "experiments/checkpoint/checkpointer.h"
#include "plugins/optimizers/state_key.h"

namespace trainlab::experiments {

using torch::serialize::InputArchive;
using torch::serialize::OutputArchive;

std::string StateDigest(const torch::nn::Module& model, const torch::optim::Optimizer& optimizer) {
  Fnv1a h;
  auto add_tensor = [&h](const at::Tensor& t) {
    const at::Tensor c = t.detach().to(at::kCPU).contiguous();
    h.AddString(std::string(c.dtype().name()));
    for (int64_t d : c.sizes()) h.Add(&d, sizeof d);
    h.Add(c.data_ptr(), c.numel() * c.element_size());
  };
  for (const auto& p : model.named_parameters(/*recurse=*/true)) {
    h.AddString(p.key());
    add_tensor(p.value());
  }
  for (const auto& b : model.named_buffers(/*recurse=*/true)) {
    h.AddString(b.key());
    add_tensor(b.value());
  }
  // Per parameter, in order: its optimizer state, read back by key name (the archive's own
  // bytes are not comparable across processes: LibTorch 1.x keys them by tensor address).
  for (const auto& group : optimizer.param_groups()) {
    for (const at::Tensor& p : group.params()) {
      auto it = optimizer.state().find(trainlab::optim::StateKey(p));
      if (it == optimizer.state().end()) {
        h.AddString("no state");
        continue;
      }
      OutputArchive out;
      it->second->serialize(out);
      std::ostringstream bytes;
      out.save_to(bytes);
      std::istringstream in_bytes(bytes.str());
      InputArchive in;
      in.load_from(in_bytes);
      std::vector<std::string> keys = in.keys();
      std::sort(keys.begin(), keys.end());
      for (const std::string& k : keys) {
        h.AddString(k);
        at::Tensor t;
        c10::IValue v;
        if (in.try_read(k, t)) {
          add_tensor(t);
        } else if (in.try_read(k, v)) {
          std::ostringstream s;
          s << v;
          h.AddString(s.str());
        }
      }
    }
  }
  return h.Hex();
}

}  // namespace trainlab::experiments
