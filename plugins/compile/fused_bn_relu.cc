// Linking this library registers the compile strategy `fused_bn_relu` (fused_bn_relu.h).
#include "plugins/compile/fused_bn_relu.h"

#include <ATen/core/grad_mode.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <array>
#include <bit>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/strategy.h"
// Set by plugins/compile/BUILD.bazel in the default build (Debian's LibTorch 1.13 and oneDNN 2.6).
#ifndef TRAINLAB_SYSTEM_DNNL
#define TRAINLAB_SYSTEM_DNNL 0
#endif
#if TRAINLAB_SYSTEM_DNNL
#include "dnnl.hpp"
#endif

namespace trainlab::compile {
namespace {

using torch::autograd::variable_list;

#if TRAINLAB_SYSTEM_DNNL

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// NHWC when x is channels-last and not also plain contiguous (with one channel, or a 1x1 image,
// the two layouts are the same bytes).
bool Nhwc(const at::Tensor& x) {
  return !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

// The forward and backward primitives for one problem (sizes, dtype, layout, epsilon, ReLU,
// thread count): creating them costs far more than running a small one.
struct Primitives {
  dnnl::memory::desc data, channel;
  dnnl::batch_normalization_forward forward;
  dnnl::batch_normalization_backward backward;
  size_t workspace_bytes = 0;
  dnnl::memory::desc workspace;
  std::string impl;   // oneDNN's implementation names, forward | backward
  bool fast = false;  // both JIT kernels, not oneDNN's reference loops

  static std::shared_ptr<const Primitives> For(const at::Tensor& x, double eps, bool relu) {
    static std::mutex mu;
    static auto* cache = new std::map<std::array<int64_t, 9>, std::shared_ptr<const Primitives>>();
    const bool nhwc = Nhwc(x);
    const float epsilon = static_cast<float>(eps);
    const std::array<int64_t, 9> key = {x.size(0),
                                        x.size(1),
                                        x.size(2),
                                        x.size(3),
                                        static_cast<int64_t>(x.scalar_type()),
                                        nhwc,
                                        relu,
                                        std::bit_cast<int32_t>(epsilon),
                                        at::get_num_threads()};
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(key);
    if (it != cache->end()) return it->second;
    auto p = std::make_shared<Primitives>();
    p->data =
        dnnl::memory::desc({x.size(0), x.size(1), x.size(2), x.size(3)},
                           x.scalar_type() == at::kBFloat16 ? dnnl::memory::data_type::bf16
                                                            : dnnl::memory::data_type::f32,
                           nhwc ? dnnl::memory::format_tag::nhwc : dnnl::memory::format_tag::nchw);
    p->channel =
        dnnl::memory::desc({x.size(1)}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
    auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    if (relu) flags = flags | dnnl::normalization_flags::fuse_norm_relu;
    try {
      dnnl::batch_normalization_forward::primitive_desc fpd(
          dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, p->data,
                                                  epsilon, flags),
          Engine());
      dnnl::batch_normalization_backward::primitive_desc bpd(
          dnnl::batch_normalization_backward::desc(dnnl::prop_kind::backward, p->data, p->data,
                                                   epsilon, flags),
          Engine(), fpd);
      p->forward = dnnl::batch_normalization_forward(fpd);
      p->backward = dnnl::batch_normalization_backward(bpd);
      p->workspace = fpd.workspace_desc();
      p->workspace_bytes = p->workspace.get_size();
      const std::string f = fpd.impl_info_str(), b = bpd.impl_info_str();
      p->impl = absl::StrCat(f, " | ", b);
      p->fast = f.rfind("ref", 0) != 0 && b.rfind("ref", 0) != 0;
    } catch (const dnnl::error& e) {
      p->impl = absl::StrCat("no oneDNN primitive (", e.what(), ")");
      p->fast = false;
    }
    return cache->emplace(key, std::move(p)).first->second;
  }
};

dnnl::memory Memory(const dnnl::memory::desc& d, const at::Tensor& t) {
  return dnnl::memory(d, Engine(), t.data_ptr());
}

// Backward of one fused batch norm (+ ReLU): the input, scale and shift gradients from one run
// of oneDNN's backward primitive.
class FusedBatchNormBackward final : public torch::autograd::Node {
 public:
  FusedBatchNormBackward(std::shared_ptr<const Primitives> prims, at::Tensor mean,
                         at::Tensor variance, at::Tensor workspace)
      : prims_(std::move(prims)),
        mean_(std::move(mean)),
        variance_(std::move(variance)),
        workspace_(std::move(workspace)) {}

  std::string name() const override { return "trainlab::FusedBatchNormBackward"; }

  void Save(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
    x_ = torch::autograd::SavedVariable(x, /*is_output=*/false);
    weight_ = torch::autograd::SavedVariable(weight, /*is_output=*/false);
    bias_ = torch::autograd::SavedVariable(bias, /*is_output=*/false);
  }

  variable_list apply(variable_list&& grads) override {
    variable_list out(3);
    if (!grads[0].defined()) return out;
    const at::Tensor x = x_.unpack(), weight = weight_.unpack(), bias = bias_.unpack();
    const at::Tensor dy =
        (Nhwc(x) ? grads[0].contiguous(at::MemoryFormat::ChannelsLast) : grads[0].contiguous())
            .to(x.scalar_type());
    at::Tensor dx = at::empty_like(x);
    at::Tensor dscale = at::empty_like(mean_), dshift = at::empty_like(mean_);
    const Primitives& p = *prims_;
    std::unordered_map<int, dnnl::memory> args = {
        {DNNL_ARG_SRC, Memory(p.data, x)},
        {DNNL_ARG_DIFF_DST, Memory(p.data, dy)},
        {DNNL_ARG_MEAN, Memory(p.channel, mean_)},
        {DNNL_ARG_VARIANCE, Memory(p.channel, variance_)},
        {DNNL_ARG_SCALE, Memory(p.channel, weight)},
        // oneDNN 2.6's backward asks for the shift too when use_shift is set (unread).
        {DNNL_ARG_SHIFT, Memory(p.channel, bias)},
        {DNNL_ARG_DIFF_SRC, Memory(p.data, dx)},
        {DNNL_ARG_DIFF_SCALE, Memory(p.channel, dscale)},
        {DNNL_ARG_DIFF_SHIFT, Memory(p.channel, dshift)}};
    if (p.workspace_bytes > 0) args.emplace(DNNL_ARG_WORKSPACE, Memory(p.workspace, workspace_));
    dnnl::stream stream(Engine());
    p.backward.execute(stream, args);
    stream.wait();
    if (task_should_compute_output(0)) out[0] = dx;
    if (task_should_compute_output(1)) out[1] = dscale;
    if (task_should_compute_output(2)) out[2] = dshift;
    return out;
  }

  void release_variables() override {
    x_.reset_data();
    weight_.reset_data();
    bias_.reset_data();
    workspace_.reset();
  }

 private:
  std::shared_ptr<const Primitives> prims_;
  at::Tensor mean_, variance_, workspace_;
  torch::autograd::SavedVariable x_, weight_, bias_;
};

#endif  // TRAINLAB_SYSTEM_DNNL

std::string ShapeName(const at::Tensor& x, bool relu) {
  std::string s = absl::StrCat(x.size(0));
  for (int64_t d = 1; d < x.dim(); ++d) absl::StrAppend(&s, "x", x.size(d));
  const char* layout = x.is_contiguous()                                 ? "contiguous"
                       : x.is_contiguous(at::MemoryFormat::ChannelsLast) ? "channels_last"
                                                                         : "strided";
  return absl::StrCat(s, " ", c10::toString(x.scalar_type()), " ", layout, relu ? ", relu" : "");
}

}  // namespace

std::optional<std::string> FusedBatchNormRelu::Unsupported(const torch::nn::BatchNorm2dImpl& bn,
                                                           const at::Tensor& x) {
  const auto& o = bn.options;
#if !TRAINLAB_SYSTEM_DNNL
  // LibTorch 2.x (--config=torch2, --config=cuda) links its own oneDNN 3 with hidden symbols and
  // its headers shadow Debian's oneDNN 2.6: this build has no oneDNN of its own to call.
  return "built against LibTorch 2.x, whose oneDNN is internal (the default build has it)";
#endif
  if (!x.is_cpu()) return "a CPU primitive (oneDNN)";
  if (x.dim() != 4) return "only 4-D inputs";
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kBFloat16) {
    return absl::StrCat("no oneDNN batch norm for ", c10::toString(x.scalar_type()));
  }
  if (!x.is_contiguous() && !x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return "input neither NCHW- nor NHWC-contiguous";
  }
  if (!o.affine() || !bn.weight.defined() || bn.weight.scalar_type() != at::kFloat ||
      bn.bias.scalar_type() != at::kFloat) {
    return "no float32 scale and shift";
  }
  if (!bn.is_training() && o.track_running_stats()) return "evaluation (running statistics)";
  if (x.size(0) * x.size(2) * x.size(3) <= 1) return "one value per channel";
  return std::nullopt;
}

bool FusedBatchNormRelu::Built() { return TRAINLAB_SYSTEM_DNNL; }

at::Tensor FusedBatchNormRelu::BatchNorm(torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x_in,
                                         bool relu) {
#if !TRAINLAB_SYSTEM_DNNL
  const std::string why = *Unsupported(bn, x_in);
  {
    std::lock_guard<std::mutex> lock(mu_);
    choices_.insert(absl::StrCat(ShapeName(x_in, relu), ": module's own forward: ", why));
  }
  at::Tensor y = bn.forward(x_in);
  return relu ? at::relu(y) : y;
#else
  std::optional<std::string> why = Unsupported(bn, x_in);
  std::shared_ptr<const Primitives> prims;
  if (!why) {
    prims = Primitives::For(x_in, bn.options.eps(), relu);
    if (!prims->fast) why = absl::StrCat("oneDNN has no JIT kernel here: ", prims->impl);
  }
  {
    std::string choice = absl::StrCat(ShapeName(x_in, relu), ": ",
                                      why ? absl::StrCat("module's own forward: ", *why)
                                          : absl::StrCat("oneDNN (", prims->impl, ")"));
    std::lock_guard<std::mutex> lock(mu_);
    choices_.insert(std::move(choice));
  }
  if (why) {
    at::Tensor y = bn.forward(x_in);
    return relu ? at::relu(y) : y;
  }

  // torch::nn::BatchNorm2d's bookkeeping: num_batches_tracked, and the averaging factor (the
  // cumulative average 1 / num_batches_tracked when momentum is unset).
  const auto& o = bn.options;
  double factor = o.momentum().value_or(0.0);
  const bool update = bn.is_training() && o.track_running_stats();
  if (update && bn.num_batches_tracked.defined()) {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked += 1;
    if (!o.momentum()) factor = 1.0 / bn.num_batches_tracked.item<double>();
  }
  const at::Tensor& weight = bn.weight;
  const at::Tensor& bias = bn.bias;
  RECORD_FUNCTION("trainlab::batch_norm",
                  std::vector<c10::IValue>({x_in, weight, bias, bn.running_mean, bn.running_var,
                                            true, factor, o.eps(), relu}));
  const Primitives& p = *prims;
  at::Tensor y = at::empty_like(x_in);
  at::Tensor mean = at::empty({x_in.size(1)}, weight.options().requires_grad(false));
  at::Tensor variance = at::empty_like(mean);
  at::Tensor workspace =
      at::empty({static_cast<int64_t>(p.workspace_bytes)}, x_in.options().dtype(at::kByte));
  {
    std::unordered_map<int, dnnl::memory> args = {{DNNL_ARG_SRC, Memory(p.data, x_in)},
                                                  {DNNL_ARG_DST, Memory(p.data, y)},
                                                  {DNNL_ARG_MEAN, Memory(p.channel, mean)},
                                                  {DNNL_ARG_VARIANCE, Memory(p.channel, variance)},
                                                  {DNNL_ARG_SCALE, Memory(p.channel, weight)},
                                                  {DNNL_ARG_SHIFT, Memory(p.channel, bias)}};
    if (p.workspace_bytes > 0) args.emplace(DNNL_ARG_WORKSPACE, Memory(p.workspace, workspace));
    dnnl::stream stream(Engine());
    p.forward.execute(stream, args);
    stream.wait();
  }
  if (update) {
    // ATen's update: the batch's biased variance made unbiased, averaged in.
    torch::NoGradGuard no_grad;
    const double n = static_cast<double>(x_in.numel() / x_in.size(1));
    bn.running_mean.mul_(1 - factor).add_(mean, factor);
    bn.running_var.mul_(1 - factor).add_(variance, factor * n / (n - 1));
  }
  const bool needs_grad = x_in.requires_grad() || weight.requires_grad() || bias.requires_grad();
  if (at::GradMode::is_enabled() && needs_grad) {
    auto node = std::shared_ptr<FusedBatchNormBackward>(
        new FusedBatchNormBackward(prims, mean, variance, workspace), torch::autograd::deleteNode);
    node->set_next_edges(torch::autograd::collect_next_edges(x_in, weight, bias));
    node->Save(x_in, weight, bias);
    torch::autograd::set_history(y, node);
  }
  return y;
#endif  // TRAINLAB_SYSTEM_DNNL
}

std::vector<std::string> FusedBatchNormRelu::Choices() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {choices_.begin(), choices_.end()};
}

namespace {

const bool kRegistered = StrategyRegistry::Global().Register(
    "fused_bn_relu",
    {.description = "training-mode batch norms on oneDNN's primitive, the ReLU after one fused "
                    "into it, forward and backward (CPU)",
     .can_run = [](const c10::Device& d) -> absl::Status {
       if (d.is_cpu()) return absl::OkStatus();
       return absl::FailedPreconditionError(
           absl::StrCat("fused_bn_relu runs oneDNN's CPU batch normalization; on ", d.str(),
                        " the library's (cuDNN's) batch norm runs"));
     },
     .apply = [](StepOptions& o) { o.normalization = std::make_shared<FusedBatchNormRelu>(); }});

}  // namespace
}  // namespace trainlab::compile
