// Checkpoints: a run that survives a Ctrl-C, a crash or a lost machine.
//
// One file per experiment, DIR/<experiment>.ckpt (a LibTorch archive in a frame with a length
// and a CRC-32, checked before LibTorch reads it), holds everything needed
// to continue exactly where the run stopped:
//   meta        JSON: format version, the settings fingerprint, the runs already finished (their
//               full results, per-batch records included), and for the run in progress its key
//               (configuration label, repeat), the epochs it finished, and the batches of the
//               epoch in progress (so a resumed epoch prints the block of the whole epoch)
//   model       the model's parameters and buffers (BatchNorm statistics included)
//   optimizer   the optimizer's state (momentum buffers, Adam moments, step counts ...)
// The loader needs only (seed, epoch, next batch): its order and augmentation are functions of
// those (plugins/data/loader.h). A file is written whole (temporary file, fsync, rename over the
// old one), so the previous checkpoint stays valid until the new one is complete.
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(auto ckpt, Checkpointer::Open(dir, "c2", fingerprint, resume));
//   if (const RunResult* done = ckpt->Finished(key)) ...          // skip a finished run
//   if (std::optional<InProgress> p = ckpt->InProgressFor(key))  // continue this one
#ifndef TRAINLAB_EXPERIMENTS_CHECKPOINT_H_
#define TRAINLAB_EXPERIMENTS_CHECKPOINT_H_

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/stats.h"
#include "experiments/run_result.h"

namespace trainlab::experiments {

inline constexpr int kCheckpointFormatVersion = 1;

// Which training run of an experiment: the configuration's label and the repeat (1-based).
struct RunKey {
  std::string config;
  int repeat = 1;
  std::string str() const;
};

// The state of the run in progress, as read from a checkpoint.
struct InProgress {
  int64_t epoch = 0;                  // 0-based: the epoch to train next (or to finish)
  RunResult done;                     // the epochs it finished
  std::optional<EpochStats> partial;  // batches of `epoch` already trained, when stopped mid-epoch
};

class Checkpointer {
 public:
  // `fingerprint`: the settings that must not change on resume. With `resume`, DIR must hold a
  // checkpoint of this experiment with the same fingerprint and format version; without it, DIR
  // must not hold one (it would be overwritten). Errors name the file and what does not match.
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Open(const std::string& dir,
                                                            const std::string& experiment,
                                                            const nlohmann::json& fingerprint,
                                                            bool resume);

  const std::string& path() const { return path_; }

  // A run finished before the checkpoint was written, or nullptr.
  const RunResult* Finished(const RunKey& key) const;
  // The run in progress, when it is `key`; restores the model and optimizer into `model` and
  // `optimizer` (built as for a fresh run).
  absl::StatusOr<std::optional<InProgress>> Resume(const RunKey& key, torch::nn::Module& model,
                                                   torch::optim::Optimizer& optimizer);

  // Writes the run in progress: `done` epochs finished, `partial` the epoch under way (or
  // nullopt at an epoch boundary), with the model's and optimizer's current state.
  absl::Status Save(const RunKey& key, const RunResult& done,
                    const std::optional<EpochStats>& partial, int64_t epoch,
                    const torch::nn::Module& model, const torch::optim::Optimizer& optimizer);
  // Records `key` as finished (its full result) and drops the run-in-progress state.
  absl::Status Finish(const RunKey& key, const RunResult& result);

  // Where the last Save stopped, for the "resume with" message: "epoch 2, batch 5".
  std::string LastPosition() const { return last_position_; }

 private:
  Checkpointer(std::string path, nlohmann::json fingerprint)
      : path_(std::move(path)), fingerprint_(std::move(fingerprint)) {}
  absl::Status Write(const nlohmann::json& current, const torch::nn::Module* model,
                     const torch::optim::Optimizer* optimizer);

  std::string path_;
  nlohmann::json fingerprint_;
  std::map<std::string, RunResult> finished_;  // by RunKey::str()
  nlohmann::json current_;                     // the run in progress when read, or null
  std::string archive_bytes_;                  // the file as read, for Resume
  std::string last_position_;
};

// Full RunResult <-> JSON, per-batch records included (exact: doubles round-trip).
nlohmann::json RunResultToJson(const RunResult& r);
absl::StatusOr<RunResult> RunResultFromJson(const nlohmann::json& j);
nlohmann::json EpochToJson(const EpochStats& e);
absl::StatusOr<EpochStats> EpochFromJson(const nlohmann::json& j);

// The file framing: "TLCKPT01", the archive's length (8 bytes, little-endian) and CRC-32 (4
// bytes), then LibTorch's archive. UnframeCheckpoint checks all three and names `path` in errors.
std::string FrameCheckpoint(const std::string& archive);
absl::StatusOr<std::string> UnframeCheckpoint(const std::string& file, const std::string& path);

// A hash of the model's parameters and buffers and the optimizer's per-parameter state, in
// parameter order: equal exactly when the training states are bit-identical.
std::string StateDigest(const torch::nn::Module& model, const torch::optim::Optimizer& optimizer);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_CHECKPOINT_H_
