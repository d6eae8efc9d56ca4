// Convolutions a compute strategy may run its own way.
//
// A model that calls `Conv2d(conv, x)` instead of `conv->forward(x)` lets a strategy
// (plugins/compile/conv_autotune.cc: each convolution on the faster of the library's algorithm
// and matrix multiplies) take its convolutions over while the step holds a
// `ScopedConvolutionOverride`; with none installed, `Conv2d` is `conv->forward(x)`, bit for bit.
// The step (core/step.h) installs the strategy's override around the forward pass and the
// trainer around evaluation.
//
// Example (a model's forward):
//   at::Tensor out = trainlab::Conv2d(*conv1_, x);
#ifndef TRAINLAB_CORE_CONVOLUTION_H_
#define TRAINLAB_CORE_CONVOLUTION_H_

#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace trainlab {

struct ConvolutionParams {
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;
};

// What a strategy chose for one convolution shape and pass, for the profile and the logs.
struct ConvolutionChoice {
  std::string shape;      // "128x64x32x32 k3 s1 p1 -> 64, float, channels_last"
  std::string pass;       // "forward", "input gradient", "weight gradient"
  std::string algorithm;  // the one kept
  std::vector<std::pair<std::string, double>> seconds;  // each candidate's time, best of its runs
  std::string note;  // why a candidate was not timed ("grouped convolution"), or empty
};

class ConvolutionOverride {
 public:
  virtual ~ConvolutionOverride() = default;
  // The convolution of x (N, Cin, H, W) by weight (Cout, Cin / groups, kh, kw), plus bias when
  // defined: what at::convolution returns, with its autograd graph.
  virtual at::Tensor Convolve(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                              const ConvolutionParams& params) = 0;
  // Every choice made so far.
  virtual std::vector<ConvolutionChoice> Choices() const = 0;
  // A name for the Settings block and the profile ("conv_autotune").
  virtual std::string name() const = 0;
};

// The override installed on this thread, or null.
inline ConvolutionOverride*& CurrentConvolutionOverride() {
  static thread_local ConvolutionOverride* current = nullptr;
  return current;
}

// Installs `o` (may be null: nothing changes) on this thread for the guard's lifetime.
class ScopedConvolutionOverride {
 public:
  explicit ScopedConvolutionOverride(ConvolutionOverride* o)
      : previous_(CurrentConvolutionOverride()) {
    if (o != nullptr) CurrentConvolutionOverride() = o;
  }
  ~ScopedConvolutionOverride() { CurrentConvolutionOverride() = previous_; }
  ScopedConvolutionOverride(const ScopedConvolutionOverride&) = delete;
  ScopedConvolutionOverride& operator=(const ScopedConvolutionOverride&) = delete;

 private:
  ConvolutionOverride* previous_;
};

// `conv->forward(x)`, or the installed override's convolution. A convolution with a padding
// mode other than zeros, or string padding ("same"), stays with its module.
inline at::Tensor Conv2d(torch::nn::Conv2dImpl& conv, const at::Tensor& x) {
  ConvolutionOverride* o = CurrentConvolutionOverride();
  const auto& opt = conv.options;  // torch::nn::detail::ConvNdOptions<2>
  // Unqualified: LibTorch 1.13's variants are c10::variant, 2.x's std::variant (found by ADL).
  const auto* padding = get_if<torch::ExpandingArray<2>>(&opt.padding());
  if (o == nullptr || padding == nullptr ||
      !holds_alternative<torch::enumtype::kZeros>(opt.padding_mode()) || opt.transposed()) {
    return conv.forward(x);
  }
  return o->Convolve(x, conv.weight, conv.bias,
                     {.stride = at::IntArrayRef(opt.stride()).vec(),
                      .padding = at::IntArrayRef(*padding).vec(),
                      .dilation = at::IntArrayRef(opt.dilation()).vec(),
                      .groups = opt.groups()});
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_CONVOLUTION_H_
