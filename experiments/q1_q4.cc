// Q1-Q4 of the lab, counted from the real model and optimizers (no literals):
//   Q1 convolutional layers; Q2 input width of the last linear layer;
//   Q3 trainable parameters and gradients after one real forward/backward/step with SGD;
//   Q4 the same with Adam, plus Adam's per-parameter state.
// It takes only the flags that change an answer (--batch_norm) and --results_dir.
//
//   bazel run //experiments:q1_q4
#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <cinttypes>
#include <cstdio>

#include "core/introspect.h"
#include "core/optimizer.h"
#include "core/status_macros.h"
#include "experiments/experiment.h"
#include "plugins/models/resnet18.h"

namespace trainlab::experiments {
namespace {

struct Counts {
  int64_t params = 0;
  int64_t grads = 0;
  int64_t state = 0;  // optimizer state elements
};

// One real step of `name` on a random batch; counts before the optimizer can change anything.
absl::StatusOr<Counts> StepAndCount(const std::string& name, bool batch_norm) {
  torch::manual_seed(0);
  models::ResNet18 model(models::ResNet18Options().batch_norm(batch_norm));
  TRAINLAB_ASSIGN_OR_RETURN(const OptimizerEntry* entry, OptimizerRegistry::Global().Find(name));
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<torch::optim::Optimizer> opt,
                            entry->make(model->parameters(), OptimizerSettings{}));
  const at::Tensor x = at::randn({8, 3, 32, 32});  // a small batch: (8, 3, 32, 32)
  const at::Tensor y = at::randint(0, 10, {8}, at::kLong);
  opt->zero_grad();
  torch::nn::functional::cross_entropy(model->forward(x), y).backward();
  opt->step();
  Counts c;
  c.params = CountTrainableParameters(*model);
  c.grads = CountGradientElements(*model);
  for (const auto& [key, state] : opt->state()) {
    if (const auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(state.get())) {
      c.state += adam->exp_avg().numel() + adam->exp_avg_sq().numel();
      if (adam->max_exp_avg_sq().defined()) c.state += adam->max_exp_avg_sq().numel();
    } else if (const auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(state.get())) {
      c.state += sgd->momentum_buffer().defined() ? sgd->momentum_buffer().numel() : 0;
    }
  }
  return c;
}

absl::StatusOr<ExperimentResult> RunQ1Q4(Session& session) {
  const bool bn = session.config.run.batch_norm;
  models::ResNet18 model(models::ResNet18Options().batch_norm(bn));
  if (!bn) std::printf("Model: ResNet-18 without batch norm (--nobatch_norm)\n");
  const int64_t convs = CountConv2d(*model), convs3 = CountConv2d(*model, /*min_kernel=*/3);
  const int64_t linear_in = LastLinearInFeatures(*model).value_or(-1);
  std::printf("Q1: convolutional layers: %" PRId64 " (%" PRId64
              " without the three 1x1 shortcut convolutions)\n",
              convs, convs3);
  std::printf("Q2: input features of the last linear layer: %" PRId64 "\n", linear_in);
  TRAINLAB_ASSIGN_OR_RETURN(Counts sgd, StepAndCount("sgd", bn));
  std::printf("Q3: SGD: trainable parameters %" PRId64 ", gradients %" PRId64
              " (momentum buffers %" PRId64 ")\n",
              sgd.params, sgd.grads, sgd.state);
  TRAINLAB_ASSIGN_OR_RETURN(Counts adam, StepAndCount("adam", bn));
  std::printf("Q4: Adam: trainable parameters %" PRId64 ", gradients %" PRId64
              "; Adam also keeps exp_avg and exp_avg_sq: %" PRId64 " state elements\n",
              adam.params, adam.grads, adam.state);
  if (bn) {
    models::ResNet18 no_bn(models::ResNet18Options().batch_norm(false));
    std::printf("(Without batch norm, for C7: %" PRId64 " trainable parameters.)\n",
                CountTrainableParameters(*no_bn));
  }
  ExperimentResult result;
  result.summary = {
      {"batch_norm", bn},
      {"conv_layers", convs},
      {"conv_layers_without_1x1", convs3},
      {"last_linear_in_features", linear_in},
      {"sgd", {{"parameters", sgd.params}, {"gradients", sgd.grads}, {"state", sgd.state}}},
      {"adam", {{"parameters", adam.params}, {"gradients", adam.grads}, {"state", adam.state}}}};
  return result;
}

const bool kRegistered = ExperimentRegistry::Global().Register(
    "q1_q4",
    {.usage = "q1_q4: counts ResNet-18's layers, parameters and gradients (Q1-Q4) from the model.",
     .trains = false,
     .flags = {"batch_norm", "results_dir"},
     .run = RunQ1Q4});

}  // namespace
}  // namespace trainlab::experiments
