// Stand-in for the one header of PyTorch's distributed autograd that c10d's reducer.hpp includes
// and Debian's libtorch-dev leaves out. reducer.hpp needs only these two names: the GradCallback
// type (checked by a static_assert against its own) and ContextPtr (a shared_ptr held in a member,
// whose layout does not depend on the pointee). trainlab never uses distributed autograd (RPC).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};

using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
