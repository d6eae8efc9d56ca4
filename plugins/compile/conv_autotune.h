// conv_autotune: each convolution of the model, and each of its three passes (forward, input
// gradient, weight gradient) separately, on the faster of two algorithms, chosen by timing them
// the first time a shape is met — the CPU's counterpart of cuDNN's benchmark mode:
//   - "library": LibTorch's own convolution (oneDNN's on a CPU: at::convolution and
//     at::convolution_backward);
//   - "matmul": the convolution as matrix multiplies (conv_matmul.h: im2col + oneDNN's matmul,
//     col2im for the input gradient; a 1x1 convolution of stride 1 is a plain matrix multiply).
// Each candidate runs once to warm up, then both kRuns times, interleaved; the fastest of its
// runs is a candidate's time, and the faster candidate is kept for every later call with the same
// key: the pass, the geometry, the dtype, both tensors' memory formats and the thread count. A
// candidate that cannot run a shape (a grouped convolution, a dtype with only oneDNN's reference
// matmul on this CPU: bfloat16 without AVX512-BF16 or AMX) is left out with its reason, and the
// library runs.
//
// The convolution is one autograd node (`trainlab::TunedConvolutionBackward`) with its own
// backward; under autocast it casts its inputs as aten::conv2d does (to the autocast dtype,
// through autocast's weight cache). It is recorded for profilers as `trainlab::convolution`
// with aten::convolution's arguments, so the layer profile counts it as a convolution.
//
// Example:
//   auto tuner = std::make_shared<ConvAutotuner>();
//   trainlab::ScopedConvolutionOverride use(tuner.get());
//   at::Tensor y = trainlab::Conv2d(*conv, x);   // timed the first time, then the winner
#ifndef TRAINLAB_PLUGINS_COMPILE_CONV_AUTOTUNE_H_
#define TRAINLAB_PLUGINS_COMPILE_CONV_AUTOTUNE_H_

#include <ATen/ATen.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/convolution.h"
#include "plugins/compile/conv_matmul.h"

namespace trainlab::compile {

// Owned by a std::shared_ptr (its autograd nodes keep it alive through shared_from_this()).
class ConvAutotuner final : public ConvolutionOverride,
                            public std::enable_shared_from_this<ConvAutotuner> {
 public:
  enum class Pass { kForward = 0, kInputGrad = 1, kWeightGrad = 2 };
  enum class Algorithm { kLibrary = 0, kMatMul = 1 };
  static constexpr int kRuns = 3;  // timed runs per candidate, interleaved, after a warm-up run

  // `force`: always this algorithm where it can run, no timing (tests, benchmarks).
  explicit ConvAutotuner(std::optional<Algorithm> force = std::nullopt) : force_(force) {}

  at::Tensor Convolve(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                      const ConvolutionParams& params) override;
  std::vector<ConvolutionChoice> Choices() const override;
  std::string name() const override { return "conv_autotune"; }

  // One pass with the algorithm chosen for its key (timing the candidates on the first call).
  // Forward: `a` is the input, `b` the weight, `bias` may be undefined. Input gradient: `a` is
  // the output's gradient, `b` the weight, `x` the input. Weight gradient: `a` the output's
  // gradient, `x` the input, `b` the weight. Used by the autograd node; no graph is built.
  at::Tensor RunPass(Pass pass, const at::Tensor& grad_or_x, const at::Tensor& x,
                     const at::Tensor& weight, const at::Tensor& bias,
                     const ConvolutionParams& params);

  static const char* PassName(Pass p);
  static const char* AlgorithmName(Algorithm a);

 private:
  struct Choice {
    Algorithm algorithm = Algorithm::kLibrary;
    std::string shape;
    std::array<double, 2> seconds = {-1, -1};  // per Algorithm; -1: not timed
    std::string note;
  };
  using Key = std::vector<int64_t>;

  std::optional<Algorithm> force_;
  mutable std::mutex mu_;
  std::map<Key, Choice> choices_;
};

}  // namespace trainlab::compile

#endif  // TRAINLAB_PLUGINS_COMPILE_CONV_AUTOTUNE_H_
