// The key of a parameter's entry in torch::optim::Optimizer::state(): LibTorch 1.x keys by the
// TensorImpl address printed as a string, 2.x by the address itself.
#ifndef TRAINLAB_PLUGINS_OPTIMIZERS_STATE_KEY_H_
#define TRAINLAB_PLUGINS_OPTIMIZERS_STATE_KEY_H_

#include <ATen/core/Tensor.h>
#include <torch/version.h>

#if TORCH_VERSION_MAJOR < 2
#include <c10/util/string_utils.h>
#endif

namespace trainlab::optim {

inline auto StateKey(const at::Tensor& p) {
#if TORCH_VERSION_MAJOR < 2
  return c10::guts::to_string(p.unsafeGetTensorImpl());
#else
  return p.unsafeGetTensorImpl();
#endif
}

}  // namespace trainlab::optim

#endif  // TRAINLAB_PLUGINS_OPTIMIZERS_STATE_KEY_H_
