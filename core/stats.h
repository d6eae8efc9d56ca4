// What one epoch measured, and the lab's report format.
//
// Definitions (the lab's):
//   load_s   time the training loop waited for the loader's next batch (device copy excluded)
//   copy_s   host-to-device copy of the batch (zero work on the CPU, still timed)
//   train_s  forward + loss + backward + optimizer step, ended by a device synchronize
//   epoch_s  wall time of the whole epoch loop
//   loss     mean of the per-batch training losses; top1 = correct / samples * 100
#ifndef TRAINLAB_CORE_STATS_H_
#define TRAINLAB_CORE_STATS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"

namespace trainlab {

// Seconds spent in each part of one training step (measured when asked for; see step.h).
struct PhaseTimes {
  double forward_s = 0;   // forward + loss
  double backward_s = 0;  // backward
  double step_s = 0;      // optimizer step
};

struct BatchRecord {
  int64_t index = 0;
  int64_t size = 0;
  double wait_s = 0;
  double copy_s = 0;
  double train_s = 0;
  double loss = 0;
  int64_t correct = 0;
  std::optional<PhaseTimes> phases;
  double lr = 0;  // the learning rate it trained at (0: not recorded, as in older results)
};

// The first batch whose loss was NaN or infinite.
struct Divergence {
  int64_t epoch = 0;
  int64_t batch = 0;
  double loss = 0;
};

struct EpochStats {
  int64_t epoch = 0;  // 1-based, as printed
  double loss = 0;
  double top1 = 0;  // percent
  double load_s = 0;
  double copy_s = 0;
  double train_s = 0;
  double epoch_s = 0;
  int64_t samples = 0;
  std::vector<BatchRecord> batches;
  std::optional<Divergence> diverged;

  double avg_train_per_batch_s() const {
    return batches.empty() ? 0.0 : train_s / static_cast<double>(batches.size());
  }
};

// Where a running epoch stands, for progress displays (TrainerOptions::on_batch).
struct EpochProgress {
  int64_t epoch = 0;  // 1-based
  int64_t batches_done = 0;
  int64_t batches_total = 0;
  int64_t samples = 0;
  double elapsed_s = 0;
  double running_loss = 0;  // mean loss of the batches so far
};

// Seconds a loader spent in each stage of making batches, summed over the threads that made them
// (plugins/data/loader.h fills it per epoch).
struct LoaderStageTimes {
  double read_s = 0;       // gathering the samples' bytes from the in-memory dataset
  double crop_s = 0;       // padded random crop
  double flip_s = 0;       // horizontal flip
  double normalize_s = 0;  // uint8 -> float, mean/std
  double assemble_s = 0;   // slot from the pool, labels, tensors around the memory
  int64_t batches = 0;
  int64_t images = 0;
  double total_s() const { return read_s + crop_s + flip_s + normalize_s + assemble_s; }
  LoaderStageTimes& operator+=(const LoaderStageTimes& o) {
    read_s += o.read_s;
    crop_s += o.crop_s;
    flip_s += o.flip_s;
    normalize_s += o.normalize_s;
    assemble_s += o.assemble_s;
    batches += o.batches;
    images += o.images;
    return *this;
  }
};

struct EvalStats {
  double loss = 0;
  double top1 = 0;
  int64_t samples = 0;
  double seconds = 0;  // the evaluation's wall time, device synchronized (not training time)
};

// The first epoch whose test top-1 reached a target (--target_accuracy): when, and at what cost.
struct TargetReached {
  double target = 0;    // top-1 %
  int64_t epoch = 0;    // 1-based
  int64_t batches = 0;  // trained until then, over all epochs
  double train_s = 0;   // the training time alone (sum of the epochs' train_s)
  double wall_s = 0;    // epochs' wall time plus the evaluations'
};

// The lab's per-epoch block, byte for byte:
//   =====
//   Epoch 1 Summary:
//   - Loss: 1.9055
//   ...
//   =====
inline std::string FormatLabBlock(const EpochStats& s) {
  return absl::StrFormat(
      "=====\n"
      "Epoch %d Summary:\n"
      "- Loss: %.4f\n"
      "- Accuracy (Top-1): %.2f%%\n"
      "- Total Data Loading Time: %.4fs\n"
      "- Total Training Time: %.4fs\n"
      "- Average Training Time per Batch: %.4fs\n"
      "- Total Epoch Time: %.4fs\n"
      "=====\n",
      s.epoch, s.loss, s.top1, s.load_s, s.train_s, s.avg_train_per_batch_s(), s.epoch_s);
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_STATS_H_
