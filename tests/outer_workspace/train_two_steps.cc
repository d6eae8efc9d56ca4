// An outside project's use of trainlab: ResNet-18, the SGD plugin found by name, the loader on a
// synthetic set (generated, for this test), the Trainer for two steps. The loss must be finite
// and the weights must have moved.
#include <ATen/ATen.h>

#include <cmath>

#include "core/optimizer.h"
#include "core/trainer.h"
#include "gtest/gtest.h"
#include "plugins/data/loader.h"
#include "plugins/data/synthetic.h"
#include "plugins/models/resnet18.h"

TEST(OuterWorkspace, TrainsTwoStepsWithTrainlabsTargets) {
  torch::manual_seed(0);
  trainlab::models::ResNet18 model;
  const at::Tensor before = model->parameters()[0].clone();

  absl::StatusOr<const trainlab::OptimizerEntry*> sgd =
      trainlab::OptimizerRegistry::Global().Find("sgd");
  ASSERT_TRUE(sgd.ok()) << sgd.status();
  auto optimizer = (*sgd)->make(model->parameters(), trainlab::OptimizerSettings{});
  ASSERT_TRUE(optimizer.ok()) << optimizer.status();

  auto data = std::make_shared<const trainlab::data::ImageDataset>(
      trainlab::data::MakeSyntheticDataset(16, /*seed=*/1));
  auto loader = trainlab::data::BatchLoader::Create(
      data, {.batch_size = 8, .num_workers = 1, .max_batches = 2});
  ASSERT_TRUE(loader.ok()) << loader.status();

  trainlab::Trainer trainer(*model, **optimizer, **loader, {.device = c10::kCPU});
  absl::StatusOr<trainlab::EpochStats> epoch = trainer.TrainEpoch(0);
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  EXPECT_EQ(epoch->batches.size(), 2u);
  EXPECT_TRUE(std::isfinite(epoch->loss)) << epoch->loss;
  EXPECT_FALSE(at::equal(before, model->parameters()[0])) << "SGD did not update the weights";
}
