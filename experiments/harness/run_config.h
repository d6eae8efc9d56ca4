// One training run, complete: all that RunTraining needs besides the data. An experiment makes
// its variants by copying the session's default RunConfig and changing what the lab's question
// varies (c3: num_workers; c6: optimizer; c7: model; c8: strategy).
//
// Example:
//   RunConfig run = session.DefaultRun();
//   run.num_workers = 4;
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_RUN_CONFIG_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_RUN_CONFIG_H_

#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/lr_schedule.h"
#include "core/optimizer.h"

namespace trainlab::experiments {

struct RunConfig {
  std::string label;  // how tables name this run ("sgd", "4 workers", ...)
  std::string optimizer = "sgd";
  OptimizerSettings optimizer_settings;  // lr, weight decay, momentum
  // The learning rate over the run (core/lr_schedule.h: constant | step | cosine | onecycle),
  // and cross-entropy's label smoothing.
  std::string lr_schedule = "constant";
  double warmup_epochs = 0;
  std::vector<double> lr_milestones;  // step: epochs
  double lr_gamma = 0.1;
  double label_smoothing = 0;
  // Evaluation: the test images and their mirrors (--tta=flip); stop at the first epoch whose
  // test top-1 reaches this percentage (0: train every epoch).
  bool tta_flip = false;
  double target_accuracy = 0;
  std::string strategy = "eager";
  int num_workers = 2;
  int epochs = 5;
  int64_t batch_size = 128;
  int64_t max_batches_per_epoch = 0;  // 0 = the whole training set
  uint64_t seed = 0;
  std::string model = "resnet18";  // a ModelRegistry name (core/model.h)
  std::string model_path;          // the file of a loaded model (--model=torchscript)
  std::string save_model;          // write the trained weights here (PyTorch state_dict)
  bool keep_best = false;          // ... those of the epoch with the best test top-1
  c10::Device device = c10::kCPU;
  bool evaluate = false;     // test-set loss and top-1 after each epoch
  bool print_blocks = true;  // the lab's per-epoch block on stdout
  bool record_trace = true;  // spans into the session's trace, when --trace is set
  // For tests: LoaderOptions::before_batch of the training loader (a failure to inject), and a
  // call before each epoch's evaluation (a signal to send there).
  std::function<void(int64_t epoch, int64_t batch)> loader_fault;
  std::function<void(int64_t epoch)> before_evaluate;
};

// The schedule `config` asks for, over its epochs of `steps_per_epoch` batches.
inline LrScheduleOptions ScheduleOptions(const RunConfig& config, int64_t steps_per_epoch) {
  return {.kind = config.lr_schedule,
          .lr = config.optimizer_settings.lr,
          .warmup_epochs = config.warmup_epochs,
          .milestones = config.lr_milestones,
          .gamma = config.lr_gamma,
          .epochs = config.epochs,
          .steps_per_epoch = steps_per_epoch};
}

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_RUN_CONFIG_H_
