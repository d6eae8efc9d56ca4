// Which ATen ops the op tracer (core/profiling/layer_tracer.h) counts as layers, and what each is:
// Count() reads a RecordFunction's op and inputs (a convolution, linear, batch norm, ReLU, the
// residual add, pooling, a dtype cast, the loss) into a TracedOp with its shape, dtype and
// arithmetic (core/op_costs.h), at autocast's dtype where autocast runs it (AutocastTarget, per
// this LibTorch's autocast API); NameFor() names it after the module that owns its weight, or
// after the module whose forward runs it. Included by layer_tracer.h, after the class.
#ifndef TRAINLAB_CORE_PROFILING_INTERNAL_OP_COUNTING_H_
#define TRAINLAB_CORE_PROFILING_INTERNAL_OP_COUNTING_H_

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <torch/version.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <vector>
#include "core/autocast.h"

#include "core/op_costs.h"
#include "core/profiling/layer_tracer.h"

namespace trainlab {

// The name of the module that owns `weight`, or of the module before.
inline std::string LayerTracer::NameFor(const at::Tensor* weight, const std::string& op) {
  if (weight != nullptr) {
    for (const std::map<const void*, std::string>* owners : {&owner_, &copy_owner_}) {
      auto it = owners->find(weight->data_ptr());
      if (it != owners->end()) {
        last_owner_ = it->second;
        return it->second;
      }
    }
  }
  // Parameter-free layers: in the module whose forward runs them, when it says so; else in
  // the parent of the module of the layer before ("layer2.0" for "layer2.0.bn1").
  std::string parent;
  if (!scopes_.empty()) {
    parent = scopes_.back();
  } else {
    const size_t dot = last_owner_.rfind('.');
    parent = dot == std::string::npos ? "" : last_owner_.substr(0, dot);
  }
  const std::string base = parent.empty() ? op : parent + "." + op;
  const int n = ++unnamed_[base];
  return n == 1 ? base : base + "#" + std::to_string(n);
}

// The dtype autocast will run an op on float32 `t` in, when autocast is on for its device at
// this level of the dispatch; nullopt otherwise.
inline std::optional<c10::ScalarType> LayerTracer::AutocastTarget(const at::Tensor& t) {
  if (t.scalar_type() != at::kFloat) return std::nullopt;
  return AutocastDtype(t.device().type());
}

inline void LayerTracer::Add(const char* aten, std::string op, const at::Tensor& input,
                             const at::Tensor* weight, OpCost forward, OpCost backward,
                             std::optional<c10::ScalarType> dtype) {
  ops_.push_back({.module = NameFor(weight, op),
                  .op = std::move(op),
                  .aten = aten,
                  .input_shape = Sizes(input),
                  .dtype = dtype.value_or(input.scalar_type()),
                  .forward = forward,
                  .backward = backward});
}

// Whether `fn` is an op we count (then it is recorded).
inline bool LayerTracer::Count(const at::RecordFunction& fn) {
  const char* name = fn.name();
  c10::ArrayRef<const c10::IValue> in = fn.inputs();
  auto is = [&](const char* n) { return std::strcmp(name, n) == 0; };
  if (in.empty() || !IsTensor(in[0])) return false;
  const at::Tensor x = in[0].toTensor();
  const int64_t es = static_cast<int64_t>(x.element_size());
  const double n = static_cast<double>(x.numel());
  // trainlab::convolution: conv_autotune's (plugins/compile/conv_autotune.h), recorded with
  // aten::convolution's arguments.
  if ((is("aten::convolution") || is("trainlab::convolution")) && in.size() >= 9 &&
      IsTensor(in[1])) {
    const at::Tensor w = in[1].toTensor();
    const std::vector<int64_t> stride = in[3].toIntVector(), pad = in[4].toIntVector(),
                               dil = in[5].toIntVector(), out_pad = in[7].toIntVector();
    const bool transposed = in[6].toBool();
    const int64_t groups = in[8].toInt();
    std::vector<int64_t> out = {x.size(0), transposed ? w.size(1) * groups : w.size(0)};
    for (size_t d = 0; d + 2 < static_cast<size_t>(x.dim()); ++d) {
      const int64_t k = w.size(static_cast<int64_t>(d) + 2);
      const int64_t s = stride[d % stride.size()], p = pad[d % pad.size()],
                    dl = dil[d % dil.size()];
      const int64_t i = x.size(static_cast<int64_t>(d) + 2);
      out.push_back(transposed
                        ? (i - 1) * s - 2 * p + dl * (k - 1) + out_pad[d % out_pad.size()] + 1
                        : (i + 2 * p - dl * (k - 1) - 1) / s + 1);
    }
    // A transposed convolution is the input gradient of the convolution from its output to
    // its input: the same arithmetic with the two swapped.
    ConvShape shape{.input = transposed ? out : Sizes(x),
                    .weight = Sizes(w),
                    .output = transposed ? Sizes(x) : out,
                    .bias = IsTensor(in[2])};
    Add(name, "conv", x, &w, ConvForward(shape, es), ConvBackward(shape, es, x.requires_grad()));
    return true;
  }
  if ((is("aten::linear") && in.size() >= 2 && IsTensor(in[1])) ||
      (is("aten::addmm") && in.size() >= 3 && IsTensor(in[1]) && IsTensor(in[2]))) {
    const bool addmm = is("aten::addmm");
    const at::Tensor input = addmm ? in[1].toTensor() : x;
    const at::Tensor w = addmm ? in[2].toTensor() : in[1].toTensor();
    const int64_t features_in = input.size(-1);
    LinearShape shape{.rows = input.numel() / std::max<int64_t>(features_in, 1),
                      .in = features_in,
                      .out = addmm ? w.size(1) : w.size(0),
                      .bias = addmm || (in.size() >= 3 && IsTensor(in[2]))};
    // Autocast intercepts aten::linear itself (a convolution only at aten::conv2d, above the
    // aten::convolution counted here): the recorded inputs are still float32, the casts run
    // inside (their time is in this row), and the arithmetic runs at autocast's dtype.
    const std::optional<c10::ScalarType> cast = AutocastTarget(input);
    const int64_t les = static_cast<int64_t>(cast ? c10::elementSize(*cast) : input.element_size());
    Add(name, "linear", input, &w, LinearForward(shape, les),
        LinearBackward(shape, les, input.requires_grad()), cast);
    return true;
  }
  if (is("aten::batch_norm")) {
    const at::Tensor* w = in.size() >= 2 && IsTensor(in[1]) ? &in[1].toTensor() : nullptr;
    Add(name, "batch_norm", x, w, BatchNormForward(n, es), BatchNormBackward(n, es));
    return true;
  }
  // trainlab::batch_norm: fused_bn_relu's (plugins/compile/fused_bn_relu.h), recorded with
  // aten::batch_norm's arguments and a ninth, whether the ReLU is fused: then the ReLU's
  // arithmetic too, and its mask as one bit per element (written forward, read backward)
  // instead of the activation it would read and write again.
  if (is("trainlab::batch_norm") && in.size() >= 9 && in[8].isBool()) {
    const at::Tensor* w = IsTensor(in[1]) ? &in[1].toTensor() : nullptr;
    OpCost forward = BatchNormForward(n, es), backward = BatchNormBackward(n, es);
    if (in[8].toBool()) {
      forward += {.flops = n, .bytes = n / 8};
      backward += {.flops = n, .bytes = n / 8};
    }
    Add(name, in[8].toBool() ? "batch_norm_relu" : "batch_norm", x, w, forward, backward);
    return true;
  }
  if (is("aten::relu") || is("aten::relu_")) {
    Add(name, "relu", x, nullptr, ReluForward(n, es), ReluBackward(n, es));
    return true;
  }
  if ((is("aten::add") || is("aten::add_")) && in.size() >= 2 && IsTensor(in[1]) &&
      in[1].toTensor().numel() == x.numel() && x.numel() > 1) {
    Add(name, "add", x, nullptr, AddForward(n, es), AddBackward(n, es));
    return true;
  }
  if (is("aten::adaptive_avg_pool2d") && in.size() >= 2) {
    double out = static_cast<double>(x.numel() / (x.size(-1) * x.size(-2)));
    for (int64_t s : in[1].toIntVector()) out *= static_cast<double>(s);
    Add(name, "pool", x, nullptr, PoolForward(n, out, es), PoolBackward(n, out, es));
    return true;
  }
  // A dtype cast (autocast's copies, the logits back to float32). A cast of a parameter is
  // named after the parameter's module.
  // (An optional dtype arrives as an int IValue, or as None when only the device changes.)
  if (is("aten::_to_copy") && in.size() >= 2 && in[1].isInt() &&
      in[1].toScalarType() != x.scalar_type()) {
    const int64_t to = static_cast<int64_t>(c10::elementSize(in[1].toScalarType()));
    const bool parameter = owner_.count(x.data_ptr()) > 0;
    param_cast_pending_ = parameter;
    Add(name, "cast", x, parameter ? &x : nullptr, CastForward(n, es, to), CastBackward(n, to, es));
    return true;
  }
  if (is("aten::cross_entropy_loss")) {
    Add(name, "cross_entropy", x, nullptr, CrossEntropyForward(n, es), CrossEntropyBackward(n, es));
    return true;
  }
  return false;
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_PROFILING_INTERNAL_OP_COUNTING_H_
