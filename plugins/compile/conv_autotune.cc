// Linking this library registers the compile strategy `conv_autotune` (conv_autotune.h).
#include "plugins/compile/conv_autotune.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/record_function.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/autocast.h"
#include "core/strategy.h"

namespace trainlab::compile {
namespace {

using torch::autograd::variable_list;

bool ChannelsLastTensor(const at::Tensor& t) {
  return t.dim() == 4 && t.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

// Backward of one tuned convolution: its input and weight gradients, each through the tuner's
// choice for its own pass, and the bias gradient (a sum over the output's gradient).
class TunedConvolutionBackward final : public torch::autograd::Node {
 public:
  TunedConvolutionBackward(std::shared_ptr<ConvAutotuner> tuner, ConvolutionParams params,
                           bool has_bias)
      : tuner_(std::move(tuner)), params_(std::move(params)), has_bias_(has_bias) {}

  std::string name() const override { return "trainlab::TunedConvolutionBackward"; }

  void Save(const at::Tensor& x, const at::Tensor& weight) {
    x_ = torch::autograd::SavedVariable(x, /*is_output=*/false);
    weight_ = torch::autograd::SavedVariable(weight, /*is_output=*/false);
  }

  variable_list apply(variable_list&& grads) override {
    variable_list out(3);
    const at::Tensor& grad_out = grads[0];
    if (!grad_out.defined()) return out;
    const at::Tensor x = x_.unpack(), weight = weight_.unpack();
    if (task_should_compute_output(0)) {
      out[0] = tuner_->RunPass(ConvAutotuner::Pass::kInputGrad, grad_out, x, weight, {}, params_);
    }
    if (task_should_compute_output(1)) {
      out[1] = tuner_->RunPass(ConvAutotuner::Pass::kWeightGrad, grad_out, x, weight, {}, params_);
    }
    if (has_bias_ && task_should_compute_output(2)) out[2] = grad_out.sum({0, 2, 3});
    return out;
  }

  void release_variables() override {
    x_.reset_data();
    weight_.reset_data();
  }

 private:
  std::shared_ptr<ConvAutotuner> tuner_;
  ConvolutionParams params_;
  bool has_bias_;
  torch::autograd::SavedVariable x_, weight_;
};

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

const char* ConvAutotuner::PassName(Pass p) {
  switch (p) {
    case Pass::kForward:
      return "forward";
    case Pass::kInputGrad:
      return "input gradient";
    case Pass::kWeightGrad:
      return "weight gradient";
  }
  return "?";
}

const char* ConvAutotuner::AlgorithmName(Algorithm a) {
  return a == Algorithm::kLibrary ? "library" : "matmul";
}

at::Tensor ConvAutotuner::Convolve(const at::Tensor& x_in, const at::Tensor& weight_in,
                                   const at::Tensor& bias_in, const ConvolutionParams& params) {
  at::Tensor x = x_in, weight = weight_in, bias = bias_in;
  // aten::conv2d's autocast kernel, which this call stands in for: cast to the autocast dtype
  // (the weight through autocast's cache, once per step). Recorded by autograd like theirs.
  const std::optional<c10::ScalarType> dtype =
      x.is_cpu() ? AutocastDtype(c10::DeviceType::CPU) : std::nullopt;
  if (dtype) {
    x = at::autocast::cached_cast(*dtype, x, c10::DeviceType::CPU);
    weight = at::autocast::cached_cast(*dtype, weight, c10::DeviceType::CPU);
    if (bias.defined()) bias = at::autocast::cached_cast(*dtype, bias, c10::DeviceType::CPU);
  }
  RECORD_FUNCTION(
      "trainlab::convolution",
      std::vector<c10::IValue>({x, weight, bias, params.stride, params.padding, params.dilation,
                                false, std::vector<int64_t>{0, 0}, params.groups}));
  at::Tensor y;
  {
    // The node below is this convolution's graph: nothing inside is recorded by autograd, and
    // autocast has already cast.
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    y = RunPass(Pass::kForward, x, x, weight, bias, params);
  }
  const bool needs_grad =
      x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad());
  if (at::GradMode::is_enabled() && needs_grad) {
    auto node = std::shared_ptr<TunedConvolutionBackward>(
        new TunedConvolutionBackward(shared_from_this(), params, bias.defined()),
        torch::autograd::deleteNode);
    node->set_next_edges(torch::autograd::collect_next_edges(x, weight, bias));
    node->Save(x, weight);
    torch::autograd::set_history(y, node);
  }
  return y;
}

at::Tensor ConvAutotuner::RunPass(Pass pass, const at::Tensor& a, const at::Tensor& x,
                                  const at::Tensor& weight, const at::Tensor& bias,
                                  const ConvolutionParams& p) {
  const std::vector<int64_t> no_padding = {0, 0};
  auto library = [&]() -> at::Tensor {
    if (pass == Pass::kForward) {
      return at::convolution(x, weight, bias, p.stride, p.padding, p.dilation, false, no_padding,
                             p.groups);
    }
    const bool input = pass == Pass::kInputGrad;
    auto grads =
        at::convolution_backward(a, x, weight, c10::nullopt, p.stride, p.padding, p.dilation, false,
                                 no_padding, p.groups, {input, !input, false});
    return input ? std::get<0>(grads) : std::get<1>(grads);
  };
  ConvGeometry g;  // set before the matrix multiplies run
  auto matmul = [&]() -> at::Tensor {
    // Results in the memory format the library's would have.
    const bool channels_last = ChannelsLastTensor(x) || ChannelsLastTensor(weight);
    switch (pass) {
      case Pass::kForward: {
        at::Tensor y = MatMulConvolution(x, weight, bias, g);
        return channels_last ? y : y.contiguous();
      }
      case Pass::kInputGrad: {
        at::Tensor dx = MatMulInputGrad(a, weight, g);
        return channels_last ? dx : dx.contiguous();
      }
      case Pass::kWeightGrad: {
        at::Tensor dw = MatMulWeightGrad(a, x, g);
        return ChannelsLastTensor(weight) ? dw : dw.contiguous();
      }
    }
    return {};
  };
  auto run = [&](Algorithm algorithm) {
    return algorithm == Algorithm::kMatMul ? matmul() : library();
  };

  Key key = {static_cast<int64_t>(pass),
             static_cast<int64_t>(x.scalar_type()),
             ChannelsLastTensor(x),
             ChannelsLastTensor(weight),
             p.groups,
             at::get_num_threads(),
             bias.defined()};
  key.insert(key.end(), x.sizes().begin(), x.sizes().end());
  key.insert(key.end(), weight.sizes().begin(), weight.sizes().end());
  for (const auto* v : {&p.stride, &p.padding, &p.dilation}) {
    key.push_back(-1);
    key.insert(key.end(), v->begin(), v->end());
  }
  std::optional<Algorithm> known;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = choices_.find(key);
    if (it != choices_.end()) known = it->second.algorithm;
  }
  if (known == Algorithm::kLibrary) return library();  // not under the lock: other threads
  if (known == Algorithm::kMatMul) {                   // may run their passes meanwhile
    g = ConvGeometry::Of(x, weight, p.stride, p.padding, p.dilation);
    return matmul();
  }

  // First time this key is met: time the candidates (outside the lock; a thread that meets the
  // same key meanwhile times it too, and the first to finish decides).
  const std::optional<std::string> unsupported = MatMulUnsupported(x, weight, p.groups);
  if (!unsupported) g = ConvGeometry::Of(x, weight, p.stride, p.padding, p.dilation);
  Choice choice;
  choice.shape = absl::StrCat(
      unsupported ? absl::StrCat(x.sizes().vec()[0], "x", x.size(1), "... groups ", p.groups)
                  : g.ToString(),
      ", ", c10::toString(x.scalar_type()), ", ",
      ChannelsLastTensor(x) ? "channels_last" : "contiguous");
  at::Tensor out;
  if (unsupported) {
    choice.note = *unsupported;
    choice.algorithm = Algorithm::kLibrary;
    out = library();
  } else if (force_) {
    choice.algorithm = *force_;
    choice.note = "forced";
    out = run(*force_);
  } else {
    // Interleaved (library, matmul, library, matmul, ...) after one warm-up run each, so that
    // a slow moment of a shared machine falls on both candidates, not on one.
    constexpr std::array<Algorithm, 2> kCandidates = {Algorithm::kLibrary, Algorithm::kMatMul};
    std::array<at::Tensor, 2> results;
    for (Algorithm candidate : kCandidates) results[static_cast<int>(candidate)] = run(candidate);
    for (int i = 0; i < kRuns; ++i) {
      for (Algorithm candidate : kCandidates) {
        const int c = static_cast<int>(candidate);
        const auto t0 = std::chrono::steady_clock::now();
        results[c] = run(candidate);
        const double s = Seconds(std::chrono::steady_clock::now() - t0);
        if (choice.seconds[c] < 0 || s < choice.seconds[c]) choice.seconds[c] = s;
      }
    }
    choice.algorithm =
        choice.seconds[1] < choice.seconds[0] ? Algorithm::kMatMul : Algorithm::kLibrary;
    out = std::move(results[static_cast<int>(choice.algorithm)]);
  }
  std::lock_guard<std::mutex> lock(mu_);
  choices_.emplace(std::move(key), std::move(choice));
  return out;
}

std::vector<ConvolutionChoice> ConvAutotuner::Choices() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ConvolutionChoice> out;
  for (const auto& [key, c] : choices_) {
    ConvolutionChoice r{.shape = c.shape,
                        .pass = PassName(static_cast<Pass>(key[0])),
                        .algorithm = AlgorithmName(c.algorithm),
                        .note = c.note};
    for (Algorithm a : {Algorithm::kLibrary, Algorithm::kMatMul}) {
      if (c.seconds[static_cast<int>(a)] >= 0) {
        r.seconds.emplace_back(AlgorithmName(a), c.seconds[static_cast<int>(a)]);
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

const bool kRegistered = StrategyRegistry::Global().Register(
    "conv_autotune",
    {.description = "each convolution pass on the faster of the library's algorithm and matrix "
                    "multiplies (im2col + oneDNN matmul), timed per shape at first use (CPU)",
     .can_run = [](const c10::Device& d) -> absl::Status {
       if (d.is_cpu()) return absl::OkStatus();
       return absl::FailedPreconditionError(
           absl::StrCat("conv_autotune times CPU convolution algorithms; on ", d.str(),
                        " cuDNN chooses its own (use cudnn_autotune)"));
     },
     .apply = [](StepOptions& o) { o.convolution = std::make_shared<ConvAutotuner>(); }});

}  // namespace
}  // namespace trainlab::compile
