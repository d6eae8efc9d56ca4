// TensorBoard output of an experiment (--tensorboard_dir=DIR): what the lab prints and records,
// as event files TensorBoard reads while the run trains.
//
//   DIR/<experiment>/                  the experiment's own run: its Settings paragraph, and at
//                                      the end its section (tables and the answer) as text
//   DIR/<experiment>/<label>[/repeat-N]  one run folder per training run (repeat-N when
//                                      --repeats > 1): per batch and per epoch scalars, the
//                                      run's settings and status for the HParams dashboard
//
// Every scalar of a run is on one step axis, the global batch step (1 for the first batch of
// the run): a batch's figures at its own step, an epoch's at the step of its last batch. One
// axis is what lets a resumed run purge what a killed one wrote past its checkpoint (TensorBoard
// drops every event with step >= the purge step, whatever its tag).
//
// Nothing here can stop a run: a run folder that cannot be opened, or a disk that fills while
// events are written, is one warning line and the run trains on without its charts.
//
// Example (training/run.cc):
//   std::unique_ptr<RunBoard> board = session.board->OpenRun(label, repeat, hparams, first_step);
//   board->Batch(record, step);                       // per batch, off the timed path
//   board->Epoch(stats, &test, stages, step);         // per epoch, then flushed
//   board->End(/*diverged=*/false);
#ifndef TRAINLAB_EXPERIMENTS_TENSORBOARD_BOARD_H_
#define TRAINLAB_EXPERIMENTS_TENSORBOARD_BOARD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/stats.h"
#include "plugins/tensorboard/event_writer.h"

namespace trainlab::experiments {

// The tags, grouped as TensorBoard's dashboard shows them (the part before '/' is the group).
namespace board_tags {
// Per batch.
inline constexpr const char* kBatchLoss = "batch/loss";
inline constexpr const char* kBatchTop1 = "batch/top1";  // percent of the batch
inline constexpr const char* kBatchLr = "batch/learning_rate";
inline constexpr const char* kBatchWait = "batch/data_wait_s";
inline constexpr const char* kBatchCopy = "batch/copy_s";
inline constexpr const char* kBatchTrain = "batch/train_s";
// Images over wait + copy + train: the rate the run goes at, loader included.
inline constexpr const char* kBatchImagesPerS = "batch/images_per_s";
// Per epoch: the lab's block.
inline constexpr const char* kEpochLoss = "epoch/loss";
inline constexpr const char* kEpochTop1 = "epoch/top1";
inline constexpr const char* kEpochDataLoading = "epoch/data_loading_s";
inline constexpr const char* kEpochTraining = "epoch/training_s";
inline constexpr const char* kEpochAvgPerBatch = "epoch/avg_train_per_batch_s";
inline constexpr const char* kEpochTime = "epoch/epoch_s";
inline constexpr const char* kEpochNumber = "epoch/epoch";  // which epoch ended at this step
// Per epoch, when evaluated.
inline constexpr const char* kTestLoss = "test/loss";
inline constexpr const char* kTestTop1 = "test/top1";
// Per epoch: the loader's stages (C4), summed over its workers.
inline constexpr const char* kLoaderRead = "loader/read_s";
inline constexpr const char* kLoaderCrop = "loader/crop_s";
inline constexpr const char* kLoaderFlip = "loader/flip_s";
inline constexpr const char* kLoaderNormalize = "loader/normalize_s";
inline constexpr const char* kLoaderAssemble = "loader/assemble_s";
// Text, in the experiment's own run.
inline constexpr const char* kSettings = "settings";
inline constexpr const char* kSection = "section";
}  // namespace board_tags

// One training run's event file.
class RunBoard {
 public:
  explicit RunBoard(std::unique_ptr<tensorboard::EventWriter> writer)
      : writer_(std::move(writer)) {}

  // A trained batch at its global step.
  void Batch(const BatchRecord& b, int64_t step);
  // An epoch that ended at global step `step`: the lab's block, the test figures when
  // evaluated (`test` may be null), the loader's stage times; then the file is flushed.
  void Epoch(const EpochStats& e, const EvalStats* test, const LoaderStageTimes& stages,
             int64_t step);
  // The run's end for the HParams dashboard: finished, or diverged (a failure); then flushed.
  void End(bool diverged);
  // Text at step 0 of the run (the profile's per-layer table).
  void Text(const std::string& tag, const std::string& markdown);

  const std::string& path() const { return writer_->path(); }

 private:
  std::unique_ptr<tensorboard::EventWriter> writer_;
};

class ExperimentBoard {
 public:
  // Checks that `dir` is (or can be made) a writable folder, then opens the experiment's own run
  // DIR/<experiment> (its texts replace an earlier session's on TensorBoard's server).
  // Errors name --tensorboard_dir and the problem: one line, before training.
  static absl::StatusOr<std::unique_ptr<ExperimentBoard>> Open(const std::string& dir,
                                                               const std::string& experiment,
                                                               int repeats);

  // DIR/<experiment>/<label>[/repeat-N]: the label's characters other than letters, digits and
  // ._+- become '_' ("sgd with BN" -> "sgd_with_BN").
  std::string RunFolder(const std::string& label, int repeat) const;

  // Opens a run's event file in its folder: its settings (`hparams`) and start for the HParams
  // dashboard, in group `<experiment>/<label>` (repeats are one group: TensorBoard aggregates
  // them). `first_step`: the global step of the first batch this process trains (1 for a fresh
  // run); what an earlier process wrote at and past it is purged (SummaryWriter's purge_step): a
  // killed run's steps past the checkpoint, or an earlier run's in the same folder (the files
  // stay). Null, after one warning line, when the folder cannot be opened: the run trains on
  // without its charts.
  std::unique_ptr<RunBoard> OpenRun(const std::string& label, int repeat,
                                    const std::map<std::string, tensorboard::HParamValue>& hparams,
                                    int64_t first_step);

  // Text in the experiment's own run, at step 0 (Markdown: TensorBoard renders it).
  void Text(const std::string& tag, const std::string& markdown);
  // A PNG in the experiment's own run, at step 0 (a plot of its section). An error when `png`
  // is not a PNG file (its size and channels are read from its header).
  absl::Status Image(const std::string& tag, const std::string& png);

  const std::string& dir() const { return dir_; }
  const std::string& experiment() const { return experiment_; }

 private:
  ExperimentBoard(std::string dir, std::string experiment, int repeats,
                  std::unique_ptr<tensorboard::EventWriter> own)
      : dir_(std::move(dir)),
        experiment_(std::move(experiment)),
        repeats_(repeats),
        own_(std::move(own)) {}

  std::string dir_, experiment_;
  int repeats_ = 1;
  std::unique_ptr<tensorboard::EventWriter> own_;
};

// The folder-safe form of a run label (see RunFolder).
std::string RunFolderName(const std::string& label);

// A PNG's width, height and channels, from its IHDR chunk; nullopt when `bytes` is not a PNG.
struct PngShape {
  int width = 0, height = 0, channels = 0;
};
std::optional<PngShape> ReadPngShape(const std::string& bytes);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_TENSORBOARD_BOARD_H_
