// A 2-D convolution as matrix multiplies, on channels-last (NHWC) tensors: the algorithm
// conv_autotune (conv_autotune.h) sets against the library's convolution, shape by shape.
//
//   forward:          cols = im2col(x)                (N*Ho*Wo, kh*kw*Cin)
//                     y    = cols x W^T               (N*Ho*Wo, Cout) = NHWC output
//   input gradient:   dcols = dy x W                  (N*Ho*Wo, kh*kw*Cin), then col2im -> dx
//   weight gradient:  dW    = dy^T x cols             (Cout, kh*kw*Cin)
//
// where W is the weight viewed as (Cout, kh*kw*Cin) in (kh, kw, Cin) order: a free view of a
// channels-last weight. A 1x1 convolution of stride 1 without padding needs no im2col at all
// (its input is already the (N*H*W, Cin) matrix). The matrix multiplies run on oneDNN's matmul
// primitive for float32 and bfloat16 (the same oneDNN 2.6.3 that Debian's LibTorch links:
// LibTorch 1.13 sends a float32 at::mm to the system BLAS, the netlib reference one on a fresh
// machine) and on at::mm for other dtypes (double: tests).
//
// Example:
//   ConvGeometry g = ConvGeometry::Of(x, w, {1, 1}, {1, 1}, {1, 1});
//   at::Tensor y = MatMulConvolution(x, w, bias, g);   // == at::convolution(...)
#ifndef TRAINLAB_PLUGINS_COMPILE_CONV_MATMUL_H_
#define TRAINLAB_PLUGINS_COMPILE_CONV_MATMUL_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>

namespace trainlab::compile {

// The sizes of one convolution (groups 1, two spatial dimensions).
struct ConvGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;  // input (N, Cin, H, W)
  int64_t co = 0, kh = 0, kw = 0;      // weight (Cout, Cin, kh, kw)
  int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  int64_t oh = 0, ow = 0;  // output (N, Cout, oh, ow)

  static ConvGeometry Of(const at::Tensor& x, const at::Tensor& weight, at::IntArrayRef stride,
                         at::IntArrayRef padding, at::IntArrayRef dilation);
  int64_t rows() const { return n * oh * ow; }   // M of the matrix multiplies
  int64_t depth() const { return kh * kw * c; }  // K: one row of im2col
  // A 1x1 convolution of stride 1 without padding: its input is its im2col matrix.
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
  // "128x512x4x4 k3 s1 p1 -> 512": what the profile and the logs print.
  std::string ToString() const;
};

// Why the matrix-multiply algorithm cannot run this convolution here (groups, a transposed
// convolution, a non-2-D one, a dtype oneDNN has only a reference kernel for), or nullopt.
std::optional<std::string> MatMulUnsupported(const at::Tensor& x, const at::Tensor& weight,
                                             int64_t groups);

// x (N, Cin, H, W) -> (N*oh*ow, kh*kw*Cin), zeros where a tap falls in the padding. Any memory
// format in; the copy reads channels-last.
at::Tensor Im2Col(const at::Tensor& x, const ConvGeometry& g);

// The adjoint of Im2Col: (N*oh*ow, kh*kw*Cin) -> dx (N, Cin, H, W) channels-last, each input
// element the sum of every tap that read it (float accumulation for bfloat16).
at::Tensor Col2Im(const at::Tensor& cols, const ConvGeometry& g);

// Whether MatMul runs `dtype` on a real oneDNN kernel here (float32 always; bfloat16 only with
// AVX512-BF16 or AMX: oneDNN 2.6 has none before, and MatMul then multiplies in float32).
bool FastMatMul(c10::ScalarType dtype);

// a (M, K) x b (K, N) -> (M, N) contiguous. Either operand may be a transposed view.
at::Tensor MatMul(const at::Tensor& a, const at::Tensor& b);

// The three passes of the convolution as matrix multiplies. Results are channels-last.
at::Tensor MatMulConvolution(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                             const ConvGeometry& g);
at::Tensor MatMulInputGrad(const at::Tensor& grad_out, const at::Tensor& weight,
                           const ConvGeometry& g);
at::Tensor MatMulWeightGrad(const at::Tensor& grad_out, const at::Tensor& x, const ConvGeometry& g);

}  // namespace trainlab::compile

#endif  // TRAINLAB_PLUGINS_COMPILE_CONV_MATMUL_H_
