// Q1-Q4 of the lab, counted from the real model and optimizers (no literals):
//   Q1 convolutional layers; Q2 input width of the last linear layer;
//   Q3 trainable parameters and gradients after one real forward/backward/step with SGD;
//   Q4 the same with Adam, plus Adam's per-parameter state.
// It takes only the flags that change an answer (--model, --model_path, --batch_norm) and
// --results_dir; any registered model is counted, a TorchScript one included.
//
//   bazel run //experiments:q1_q4
#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <cinttypes>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/introspect.h"
#include "core/model.h"
#include "core/optimizer.h"
#include "core/status_macros.h"
#include "experiments/harness/experiment.h"

namespace trainlab::experiments {
namespace {

struct Counts {
  int64_t params = 0;
  int64_t grads = 0;
  int64_t state = 0;  // optimizer state elements
};

// One real step of optimizer `name` on a random batch; counts before the optimizer can change
// anything.
absl::StatusOr<Counts> StepAndCount(const std::string& name, const RunConfig& run) {
  torch::manual_seed(0);
  TRAINLAB_ASSIGN_OR_RETURN(std::shared_ptr<ClassifierImpl> model,
                            MakeModel(run.model, {.path = run.model_path}));
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
  const RunConfig& run = session.options.run;
  TRAINLAB_ASSIGN_OR_RETURN(std::shared_ptr<ClassifierImpl> model,
                            MakeModel(run.model, {.path = run.model_path}));
  std::printf("Model: %s%s\n", run.model.c_str(),
              run.model_path.empty() ? "" : absl::StrCat(" from ", run.model_path).c_str());
  const LayerCounts layers = model->CountLayers();
  const int64_t convs = layers.conv2d, convs3 = layers.conv2d_3x3_or_larger;
  const int64_t linear_in = layers.last_linear_in.value_or(-1);
  std::printf("Q1: convolutional layers: %" PRId64 " (%" PRId64 " without 1x1 convolutions)\n",
              convs, convs3);
  if (layers.last_linear_in) {
    std::printf("Q2: input features of the last linear layer: %" PRId64 "\n", linear_in);
  } else {
    std::printf("Q2: the model has no linear layer\n");
  }
  TRAINLAB_ASSIGN_OR_RETURN(Counts sgd, StepAndCount("sgd", run));
  std::printf("Q3: SGD: trainable parameters %" PRId64 ", gradients %" PRId64
              " (momentum buffers %" PRId64 ")\n",
              sgd.params, sgd.grads, sgd.state);
  TRAINLAB_ASSIGN_OR_RETURN(Counts adam, StepAndCount("adam", run));
  std::printf("Q4: Adam: trainable parameters %" PRId64 ", gradients %" PRId64
              "; Adam also keeps exp_avg and exp_avg_sq: %" PRId64 " state elements\n",
              adam.params, adam.grads, adam.state);
  const bool bn = run.model != "resnet18_no_bn";
  if (run.model == "resnet18") {
    TRAINLAB_ASSIGN_OR_RETURN(std::shared_ptr<ClassifierImpl> no_bn,
                              MakeModel("resnet18_no_bn", {}));
    std::printf("(Without batch norm, for C7: %" PRId64 " trainable parameters.)\n",
                CountTrainableParameters(*no_bn));
  }
  ExperimentResult result;
  result.summary = {
      {"model", run.model},
      {"batch_norm", bn},
      {"conv_layers", convs},
      {"conv_layers_without_1x1", convs3},
      {"last_linear_in_features", linear_in},
      {"sgd", {{"parameters", sgd.params}, {"gradients", sgd.grads}, {"state", sgd.state}}},
      {"adam", {{"parameters", adam.params}, {"gradients", adam.grads}, {"state", adam.state}}}};
  return result;
}

const bool kRegistered =
    RegisterExperiment("q1_q4",
                       {.usage = "q1_q4: counts a model's layers, parameters and gradients (Q1-Q4) "
                                 "from the model itself\n"
                                 "  (ResNet-18 unless --model says otherwise).",
                        .trains = false,
                        .flags = {"model", "model_path", "batch_norm", "results_dir"}},
                       RunQ1Q4);

}  // namespace
}  // namespace trainlab::experiments
