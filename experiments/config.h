// One training run, complete: all that RunTraining needs besides the data. An experiment makes
// its variants by copying the session's default RunConfig and changing what the lab's question
// varies (c3: num_workers; c6: optimizer; c7: model; c8: strategy).
//
// Example:
//   RunConfig run = session.DefaultRun();
//   run.num_workers = 4;
#ifndef TRAINLAB_EXPERIMENTS_CONFIG_H_
#define TRAINLAB_EXPERIMENTS_CONFIG_H_

#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>

#include "core/optimizer.h"

namespace trainlab::experiments {

struct RunConfig {
  std::string label;  // how tables name this run ("sgd", "4 workers", ...)
  std::string optimizer = "sgd";
  OptimizerSettings optimizer_settings;  // lr, weight decay, momentum
  std::string strategy = "eager";
  int num_workers = 2;
  int epochs = 5;
  int64_t batch_size = 128;
  int64_t max_batches_per_epoch = 0;  // 0 = the whole training set
  uint64_t seed = 0;
  std::string model = "resnet18";  // a ModelRegistry name (core/model.h)
  std::string model_path;          // the file of a loaded model (--model=torchscript)
  std::string save_model;          // write the trained weights here (PyTorch state_dict)
  c10::Device device = c10::kCPU;
  bool evaluate = false;     // test-set loss and top-1 after each epoch
  bool print_blocks = true;  // the lab's per-epoch block on stdout
  bool record_trace = true;  // spans into the session's trace, when --trace is set
  // For tests: LoaderOptions::before_batch of the training loader (a failure to inject), and a
  // call before each epoch's evaluation (a signal to send there).
  std::function<void(int64_t epoch, int64_t batch)> loader_fault;
  std::function<void(int64_t epoch)> before_evaluate;
};

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_CONFIG_H_
