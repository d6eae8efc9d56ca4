// The arithmetic of a layer, from its shapes: the floating-point operations it performs and the
// bytes it must at least move, forward and backward. The basis of the per-layer profile
// (achieved FLOP/s and bytes/s, arithmetic intensity, the roof that bounds a layer).
//
// Conventions (the ones fvcore and torch.utils.flop_counter use for the big ops):
//   - a multiply-add is 2 FLOPs;
//   - a convolution's forward is 2 x N x Cout x Hout x Wout x (Cin / groups) x kh x kw (+ one add
//     per output element for a bias); its backward is the input-gradient convolution (the same
//     count; skipped when the input needs no gradient, as autograd skips it for the images) plus
//     the weight-gradient convolution (the same count again) plus the bias gradient (one add per
//     output element);
//   - a linear layer likewise with N x in x out;
//   - element-wise layers count their arithmetic per element (below, with each function);
//   - bytes: every tensor an op must read or write once, at its element size (inputs, outputs,
//     weights, and the gradients in backward); what caches keep, or what an implementation
//     re-reads, is not counted: this is the least traffic, so bytes/s from it is a lower bound.
//
// Example:
//   OpCost f = ConvForward({.input = {128, 64, 32, 32}, .weight = {64, 64, 3, 3},
//                           .output = {128, 64, 32, 32}}, /*element_size=*/4);
//   f.flops;  // 2 * 128 * 64 * 32 * 32 * 64 * 9
#ifndef TRAINLAB_CORE_OP_COSTS_H_
#define TRAINLAB_CORE_OP_COSTS_H_

#include <cstdint>
#include <functional>
#include <numeric>
#include <optional>
#include <string_view>
#include <vector>

namespace trainlab {

struct OpCost {
  double flops = 0;  // floating-point operations
  double bytes = 0;  // the least bytes read and written
  OpCost& operator+=(const OpCost& o) {
    flops += o.flops;
    bytes += o.bytes;
    return *this;
  }
  // FLOPs per byte; 0 for an op that moves nothing.
  double intensity() const { return bytes > 0 ? flops / bytes : 0; }
};

inline double Elements(const std::vector<int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), 1.0, std::multiplies<double>());
}

// A convolution (any spatial rank): input (N, Cin, ...), weight (Cout, Cin / groups, k...),
// output (N, Cout, ...).
struct ConvShape {
  std::vector<int64_t> input, weight, output;
  bool bias = false;
};

// Multiply-adds of one convolution pass: every output element takes Cin / groups x k... of them.
inline double ConvMacs(const ConvShape& s) {
  return Elements(s.output) * Elements(s.weight) / static_cast<double>(s.weight.at(0));
}

inline OpCost ConvForward(const ConvShape& s, int64_t element_size) {
  const double out = Elements(s.output);
  return {.flops = 2 * ConvMacs(s) + (s.bias ? out : 0),
          .bytes = (Elements(s.input) + Elements(s.weight) + out +
                    (s.bias ? static_cast<double>(s.weight.at(0)) : 0)) *
                   static_cast<double>(element_size)};
}

// Reads the output's gradient, the input and the weight; writes the weight's gradient and, when
// `input_grad`, the input's.
inline OpCost ConvBackward(const ConvShape& s, int64_t element_size, bool input_grad) {
  const double out = Elements(s.output), in = Elements(s.input), w = Elements(s.weight);
  const double bias = s.bias ? static_cast<double>(s.weight.at(0)) : 0;
  return {.flops = (input_grad ? 2 : 0) * ConvMacs(s) + 2 * ConvMacs(s) + (s.bias ? out : 0),
          .bytes = (out + in + w + (input_grad ? in : 0) + w + bias) *
                   static_cast<double>(element_size)};
}

// y = x W^T (+ b): x (rows, in), W (out, in).
struct LinearShape {
  int64_t rows = 0, in = 0, out = 0;
  bool bias = false;
};

inline OpCost LinearForward(const LinearShape& s, int64_t element_size) {
  const double r = s.rows, i = s.in, o = s.out;
  return {.flops = 2 * r * i * o + (s.bias ? r * o : 0),
          .bytes = (r * i + i * o + r * o + (s.bias ? o : 0)) * static_cast<double>(element_size)};
}

inline OpCost LinearBackward(const LinearShape& s, int64_t element_size, bool input_grad) {
  const double r = s.rows, i = s.in, o = s.out;
  return {.flops = (input_grad ? 2 : 0) * r * i * o + 2 * r * i * o + (s.bias ? r * o : 0),
          .bytes = (r * o + r * i + i * o + (input_grad ? r * i : 0) + i * o + (s.bias ? o : 0)) *
                   static_cast<double>(element_size)};
}

// The element-wise layers, per element of their (input) tensor of `n` elements:
// Batch norm in training: 7 FLOPs forward (mean: 1 add; variance: subtract, square, add;
// normalize, scale, shift: 3), 9 backward (recompute x-hat: 2; the two reductions of the output
// gradient: 3; the input gradient: 4). It reads and writes each tensor once.
inline OpCost BatchNormForward(double n, int64_t element_size) {
  return {.flops = 7 * n, .bytes = 2 * n * static_cast<double>(element_size)};
}
inline OpCost BatchNormBackward(double n, int64_t element_size) {
  return {.flops = 9 * n, .bytes = 3 * n * static_cast<double>(element_size)};
}
// ReLU: one comparison forward (read, write); backward masks the gradient with the output
// (read both, write one).
inline OpCost ReluForward(double n, int64_t element_size) {
  return {.flops = n, .bytes = 2 * n * static_cast<double>(element_size)};
}
inline OpCost ReluBackward(double n, int64_t element_size) {
  return {.flops = n, .bytes = 3 * n * static_cast<double>(element_size)};
}
// The residual add: one add, two reads and a write. Its backward hands the same gradient to both
// branches: nothing computed, nothing moved.
inline OpCost AddForward(double n, int64_t element_size) {
  return {.flops = n, .bytes = 3 * n * static_cast<double>(element_size)};
}
inline OpCost AddBackward(double, int64_t) { return {}; }
// Average pooling (or a mean) of `n` input elements into `out` outputs: one add per input
// element and a divide per output; backward spreads each output gradient back (one divide per
// input element).
inline OpCost PoolForward(double n, double out, int64_t element_size) {
  return {.flops = n + out, .bytes = (n + out) * static_cast<double>(element_size)};
}
inline OpCost PoolBackward(double n, double out, int64_t element_size) {
  return {.flops = n, .bytes = (n + out) * static_cast<double>(element_size)};
}
// Cross-entropy over `n` logits (rows x classes): log-softmax (max, subtract, exp, sum, log,
// subtract: 6 per logit) and the mean of the picked ones; backward: softmax minus one-hot, scaled
// (3 per logit).
inline OpCost CrossEntropyForward(double n, int64_t element_size) {
  return {.flops = 6 * n, .bytes = n * static_cast<double>(element_size)};
}
inline OpCost CrossEntropyBackward(double n, int64_t element_size) {
  return {.flops = 3 * n, .bytes = 2 * n * static_cast<double>(element_size)};
}

// A dtype cast of `n` elements (autocast's bf16 copies of weights and activations, the logits
// back to float32): no arithmetic; it reads the source and writes the copy. Its backward casts
// the gradient back.
inline OpCost CastForward(double n, int64_t from_size, int64_t to_size) {
  return {.flops = 0, .bytes = n * static_cast<double>(from_size + to_size)};
}
inline OpCost CastBackward(double n, int64_t from_size, int64_t to_size) {
  return {.flops = 0, .bytes = n * static_cast<double>(from_size + to_size)};
}

// One optimizer step over `params` parameters of `element_size` bytes, per the update rules of
// PyTorch's optimizers with weight decay folded into the gradient (g += wd p: 2 FLOPs) as they
// do it. Per element:
//   sgd           buf = m buf + g; p -= lr buf                          6 FLOPs, 5 tensors moved
//   sgd_nesterov  ... and d = g + m buf                                 8 FLOPs, 5 tensors
//   adagrad       sum += g g; p -= clr g / (sqrt(sum) + eps)            9 FLOPs, 5 tensors
//   rmsprop       sq = a sq + (1-a) g g; p -= lr g / (sqrt(sq) + eps)  10 FLOPs, 5 tensors
//   adadelta      sq, std, delta, acc as PyTorch's                     18 FLOPs, 7 tensors
//   adam, adamw   m, v, the bias corrections, p -= step m / denom      15 FLOPs, 7 tensors
// (tensors moved: p, g and each state tensor read, p and each state tensor written). Another
// optimizer: nullopt (its row has no arithmetic).
inline std::optional<OpCost> OptimizerStepCost(std::string_view optimizer, double params,
                                               int64_t element_size) {
  struct Rule {
    std::string_view name;
    double flops, tensors;
  };
  static constexpr Rule kRules[] = {{"sgd", 6, 5},      {"sgd_nesterov", 8, 5}, {"adagrad", 9, 5},
                                    {"rmsprop", 10, 5}, {"adadelta", 18, 7},    {"adam", 15, 7},
                                    {"adamw", 15, 7}};
  for (const Rule& r : kRules) {
    if (r.name == optimizer) {
      return OpCost{.flops = r.flops * params,
                    .bytes = r.tensors * params * static_cast<double>(element_size)};
    }
  }
  return std::nullopt;
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_OP_COSTS_H_
