// The model registry and the model plugins: names, layer counts, TorchScript loading (good and
// bad files), training a scripted model through the nn::Module view, and the state_dict file.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "core/model.h"
#include "plugins/models/state_dict.h"
#include "plugins/models/torchscript.h"

namespace trainlab {
namespace {

constexpr char kTiny[] = "tests/testdata/models/tiny_cnn.pt";

std::shared_ptr<ClassifierImpl> Make(const std::string& name, const std::string& path = "") {
  absl::StatusOr<std::shared_ptr<ClassifierImpl>> m = MakeModel(name, {.path = path});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

std::string ErrorOf(const std::string& name, const std::string& path) {
  absl::StatusOr<std::shared_ptr<ClassifierImpl>> m = MakeModel(name, {.path = path});
  return m.ok() ? "(loaded)" : std::string(m.status().message());
}

TEST(ModelRegistry, HasEveryLinkedModel) {
  EXPECT_EQ(ModelRegistry::Global().Names(),
            (std::vector<std::string>{"resnet18", "resnet18_no_bn", "torchscript"}));
  EXPECT_NE(ErrorOf("resnet34", "").find("unknown model 'resnet34'; known: resnet18"),
            std::string::npos);
  EXPECT_NE(ErrorOf("torchscript", "").find("needs --model_path"), std::string::npos);
  EXPECT_NE(ErrorOf("resnet18", kTiny).find("not --model=resnet18"), std::string::npos);
}

TEST(ResNet18Models, CountTheLabsAnswers) {
  const LayerCounts bn = Make("resnet18")->CountLayers();
  EXPECT_EQ(bn.conv2d, 20);
  EXPECT_EQ(bn.conv2d_3x3_or_larger, 17);
  EXPECT_EQ(bn.last_linear_in, 512);
  auto no_bn = Make("resnet18_no_bn");
  EXPECT_EQ(no_bn->CountLayers().conv2d, 20);
  for (const auto& [name, t] : no_bn->StateDict()) {
    EXPECT_EQ(name.find("bn"), std::string::npos) << name;
    EXPECT_EQ(name.find("running_"), std::string::npos) << name;
  }
}

TEST(TorchScriptModel, LoadsCountsAndSharesItsTensors) {
  auto m = Make("torchscript", kTiny);
  ASSERT_NE(m, nullptr);
  const LayerCounts c = m->CountLayers();
  EXPECT_EQ(c.conv2d, 2);  // conv 3x3 and mix 1x1
  EXPECT_EQ(c.conv2d_3x3_or_larger, 1);
  EXPECT_EQ(c.last_linear_in, 8);
  int64_t n = 0;
  for (const at::Tensor& p : m->parameters()) n += p.numel();
  EXPECT_EQ(n, 8 * 3 * 9 + 8 + 8 + 8 * 8 + 8 + 8 * 10 + 10);
  // The Python names, and the very tensors the nn::Module view registered.
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, t] : m->StateDict()) state[name] = t;
  ASSERT_TRUE(state.count("conv.weight") && state.count("bn.running_mean") &&
              state.count("fc.bias"));
  EXPECT_TRUE(state["conv.weight"].is_same(m->named_parameters()["conv:weight"]));
}

TEST(TorchScriptModel, TrainsThroughOurOptimizerAndSwitchesModes) {
  auto m = Make("torchscript", kTiny);
  ASSERT_NE(m, nullptr);
  torch::manual_seed(1);
  const at::Tensor x = at::randn({16, 3, 32, 32});
  const at::Tensor y = at::arange(16, at::kLong) % 10;
  torch::optim::SGD sgd(m->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, t] : m->StateDict()) state[name] = t;
  const at::Tensor w0 = state["conv.weight"].clone();
  const at::Tensor mean0 = state["bn.running_mean"].clone();

  m->train();
  double first = 0, last = 0;
  for (int step = 0; step < 5; ++step) {
    sgd.zero_grad();
    at::Tensor loss = torch::nn::functional::cross_entropy(m->forward(x), y);
    loss.backward();
    sgd.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, first);                                    // it learns
  EXPECT_FALSE(at::equal(state["conv.weight"], w0));         // the scripted module's own
  EXPECT_FALSE(at::equal(state["bn.running_mean"], mean0));  // train mode: stats move

  m->eval();  // eval mode: BN uses its statistics and leaves them alone
  EXPECT_FALSE(m->is_training());
  const at::Tensor mean1 = state["bn.running_mean"].clone();
  const at::Tensor a = m->forward(x), b = m->forward(x);
  EXPECT_TRUE(at::equal(state["bn.running_mean"], mean1));
  EXPECT_TRUE(at::allclose(a, b));
}

std::string WriteTemp(const std::string& name, const std::string& contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir ? dir : "/tmp") + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

TEST(TorchScriptModel, BadFilesGetOneClearErrorEach) {
  EXPECT_EQ(ErrorOf("torchscript", "/nonexistent/model.pt"),
            "/nonexistent/model.pt: no such TorchScript file");
  const std::string text = WriteTemp("not_a_model.pt", "just some text, not a zip archive\n");
  EXPECT_EQ(ErrorOf("torchscript", text).find(text + ": not a TorchScript archive"), 0u)
      << ErrorOf("torchscript", text);
  const std::string none = "tests/testdata/models/no_forward.pt";
  EXPECT_EQ(ErrorOf("torchscript", none), none + ": the scripted module has no forward() method");
  const std::string five = "tests/testdata/models/wrong_classes.pt";
  EXPECT_EQ(ErrorOf("torchscript", five),
            five +
                ": forward() maps a (2, 3, 32, 32) batch to (2, 5) Float; trainlab needs "
                "(2, 10) floating-point logits");
}

TEST(StateDict, RoundTripsEveryTensorUnderPyTorchsNames) {
  torch::manual_seed(3);
  auto m = Make("resnet18");
  absl::StatusOr<std::string> bytes = models::StateDictBytes(*m);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<models::NamedTensors> back = models::ParseStateDict(*bytes, "w.pt");
  ASSERT_TRUE(back.ok()) << back.status();
  const auto want = m->StateDict();
  ASSERT_EQ(back->size(), want.size());
  // 62 parameters and 60 buffers (20 BatchNorms x running_mean, running_var, num_batches_tracked).
  EXPECT_EQ(want.size(), 62u + 60u);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ((*back)[i].first, want[i].first);
    EXPECT_TRUE(at::equal((*back)[i].second, want[i].second)) << want[i].first;
  }
  EXPECT_FALSE(models::ParseStateDict("garbage", "bad.pt").ok());
}

}  // namespace
}  // namespace trainlab
