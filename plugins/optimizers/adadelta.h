// Adadelta (Zeiler 2012) as a torch::optim::Optimizer; LibTorch has none.
//
// The update is exactly PyTorch's documented torch.optim.Adadelta (single-tensor path of
// torch/optim/adadelta.py), per parameter p with gradient g:
//   g          = g + weight_decay * p                       (weight decay folded into g)
//   square_avg = rho * square_avg + (1 - rho) * g^2
//   std        = sqrt(square_avg + eps)
//   delta      = sqrt(acc_delta + eps) / std * g
//   acc_delta  = rho * acc_delta + (1 - rho) * delta^2
//   p          = p - lr * delta
// State (square_avg, acc_delta, step) saves and loads like LibTorch's own optimizers.
//
// Example:
//   trainlab::optim::Adadelta opt(model->parameters(), AdadeltaOptions(0.1).weight_decay(5e-4));
#ifndef TRAINLAB_PLUGINS_OPTIMIZERS_ADADELTA_H_
#define TRAINLAB_PLUGINS_OPTIMIZERS_ADADELTA_H_

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>
#include <torch/serialize/archive.h>

#include <memory>
#include <vector>

namespace trainlab::optim {

struct AdadeltaOptions : public torch::optim::OptimizerCloneableOptions<AdadeltaOptions> {
  AdadeltaOptions(double lr = 1.0);  // PyTorch's default lr
  TORCH_ARG(double, lr) = 1.0;
  TORCH_ARG(double, rho) = 0.9;
  TORCH_ARG(double, eps) = 1e-6;
  TORCH_ARG(double, weight_decay) = 0;

 public:  // TORCH_ARG leaves the section private
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
  friend bool operator==(const AdadeltaOptions& a, const AdadeltaOptions& b);
};

struct AdadeltaParamState : public torch::optim::OptimizerCloneableParamState<AdadeltaParamState> {
  TORCH_ARG(at::Tensor, square_avg);
  TORCH_ARG(at::Tensor, acc_delta);
  TORCH_ARG(int64_t, step) = 0;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const AdadeltaParamState& a, const AdadeltaParamState& b);
};

class Adadelta : public torch::optim::Optimizer {
 public:
  explicit Adadelta(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                    AdadeltaOptions defaults = {});
  explicit Adadelta(std::vector<at::Tensor> params, AdadeltaOptions defaults = {})
      : Adadelta(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(
                     std::move(params))},
                 defaults) {}

  at::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  template <typename Self, typename Archive>
  static void serialize(Self& self, Archive& archive) {
    _TORCH_OPTIM_SERIALIZE_WITH_TEMPLATE_ARG(Adadelta);
  }
};

}  // namespace trainlab::optim

#endif  // TRAINLAB_PLUGINS_OPTIMIZERS_ADADELTA_H_
