// fused_bn_relu: the model's training-mode batch norms (those it calls through
// core/normalization.h's BatchNorm2d) on oneDNN's batch-normalization primitive, the ReLU that
// follows one fused into it: one pass computes the statistics, a second normalizes, scales,
// shifts and clamps (ATen: a statistics pass, a normalizing pass, then a ReLU pass that reads and
// writes the whole activation again); the backward reads the ReLU's mask from a bit-per-element
// workspace instead of the saved output, and gives the input, scale and shift gradients in one
// pass pair. The running statistics and num_batches_tracked are updated as
// torch::nn::BatchNorm2d's forward updates them.
//
// It takes over a batch norm only where oneDNN has a real (JIT) kernel for it: a 4-D CPU tensor in
// float32 or bfloat16 (scale, shift and statistics float32, as under autocast), contiguous in
// NCHW or NHWC, with affine parameters, in training mode (or with track_running_stats off), more
// than one value per channel. Anything else (evaluation with running statistics, double, another
// layout, oneDNN limited below its bfloat16 kernels) runs the module's own forward, and the
// choice is recorded (Choices()) with its reason.
//
// The batch norm is one autograd node (`trainlab::FusedBatchNormBackward`); it is recorded for
// profilers as `trainlab::batch_norm` with aten::batch_norm's arguments and a ninth, whether the
// ReLU is fused, so the layer profile counts it as a batch norm (and a ReLU).
//
// Example:
//   auto fused = std::make_shared<FusedBatchNormRelu>();
//   trainlab::ScopedNormalizationOverride use(fused.get());
//   at::Tensor y = trainlab::BatchNorm2d(*bn, x, /*relu=*/true);
#ifndef TRAINLAB_PLUGINS_COMPILE_FUSED_BN_RELU_H_
#define TRAINLAB_PLUGINS_COMPILE_FUSED_BN_RELU_H_

#include <ATen/ATen.h>

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/normalization.h"

namespace trainlab::compile {

class FusedBatchNormRelu final : public NormalizationOverride {
 public:
  // Whether this build has oneDNN of its own (Debian's, the default build); LibTorch 2.x builds
  // (--config=torch2, --config=cuda) do not, and every batch norm runs the module's forward.
  static bool Built();
  // Why oneDNN's primitive cannot run this batch norm, or nullopt when it can.
  static std::optional<std::string> Unsupported(const torch::nn::BatchNorm2dImpl& bn,
                                                const at::Tensor& x);

  at::Tensor BatchNorm(torch::nn::BatchNorm2dImpl& bn, const at::Tensor& x, bool relu) override;
  std::string name() const override { return "fused_bn_relu"; }

  // One line per shape and outcome met, sorted: "128x64x32x32 BFloat16 channels_last, relu:
  // oneDNN (bnorm_jit:avx512_core_bf16 | ...)", or the reason the module's own forward ran.
  std::vector<std::string> Choices() const override;

 private:
  mutable std::mutex mu_;
  std::set<std::string> choices_;
};

}  // namespace trainlab::compile

#endif  // TRAINLAB_PLUGINS_COMPILE_FUSED_BN_RELU_H_
