// Checkpoints: a run that survives a Ctrl-C, a crash or a lost machine (the file format is
// checkpoint_format.h's).
//
// One checkpoint per experiment and folder, DIR/<experiment>.ckpt, held by one process at a time
// (an flock on DIR/<experiment>.ckpt.lock, which names its holder). Saving is atomic and durable
// (core/files.h); temporary files that a killed process left are removed when the next one opens
// the folder. With `--resume` the run continues exactly where it stopped: the model, the
// optimizer, LibTorch's random generators and the loader's position. A larger `--epochs` extends
// a run (finished or not) when nothing else depends on the total; the checkpoint then says so.
//
// Data-parallel (Options::share set on every rank): rank 0 alone opens DIR, reads and writes the
// file; what it read (or the error it met) is sent to every other rank, which holds the same
// state in memory and writes nothing. So the ranks need no shared storage, take the same branch
// at every step (resume or not, which runs are finished) and restore the same bytes.
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(auto ckpt, Checkpointer::Open({.dir = d, .experiment = "c2",
//                                                            .fingerprint = f, .resume = true}));
//   if (const RunResult* done = ckpt->Finished(key, epochs)) ...   // skip a finished run
//   TRAINLAB_ASSIGN_OR_RETURN(auto p, ckpt->Resume(key, epochs, model, optimizer));
#ifndef TRAINLAB_EXPERIMENTS_CHECKPOINT_CHECKPOINTER_H_
#define TRAINLAB_EXPERIMENTS_CHECKPOINT_CHECKPOINTER_H_

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/checkpoint/checkpoint_format.h"

namespace trainlab::experiments {

// The state of a run to continue, as read from a checkpoint.
struct InProgress {
  int64_t epoch = 0;                  // 0-based: the epoch to train next (or to finish)
  RunResult done;                     // the epochs it finished
  std::optional<EpochStats> partial;  // batches of `epoch` already trained, when stopped mid-epoch
};

class Checkpointer {
 public:
  struct Options {
    std::string dir;
    std::string experiment;
    nlohmann::json fingerprint;  // the settings that must not change on resume
    bool resume = false;
    // --resume=auto: resume when DIR holds a checkpoint of this experiment, else start afresh.
    bool resume_if_present = false;
    // The elastic job this process belongs to (TORCHELASTIC_RUN_ID; "" outside one). A checkpoint
    // the same job wrote is resumed without --resume, whichever agent restarted this process (the
    // agents' restart counts are their own); one of another job still needs --resume.
    std::string job;
    // Settings that may grow on resume (the run is extended): "epochs", unless something
    // depends on the total.
    std::set<std::string> extendable = {"epochs"};
    std::string holder;  // who we are, for the lock file ("c2 --epochs=5 ... (pid 123)")
    // Data-parallel: rank 0's bytes on every rank (Communicator::BroadcastBytes); every rank
    // calls it at the same points. `writes` on rank 0 alone.
    std::function<absl::StatusOr<std::string>(const std::string&)> share;
    bool writes = true;
  };

  // With `resume`, DIR must hold a checkpoint of this experiment with the same fingerprint (up to
  // extendable settings) and format version; without it, DIR must not hold one (it would be
  // overwritten). Errors name the file and what does not match, or who holds the lock.
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Open(Options options);
  ~Checkpointer();

  const std::string& path() const { return path_; }  // rank 0's file, on every rank
  // This process writes the file (false on the ranks other than 0 of a data-parallel run).
  bool writes() const { return writes_; }
  // The checkpoint was there and this run continues it (--resume, or --resume=auto found it).
  bool resuming() const { return resuming_; }
  // Settings the resumed run extends: {"epochs": {1, 2}}.
  const std::map<std::string, std::pair<int64_t, int64_t>>& extended() const { return extended_; }

  // A run that finished before the checkpoint was written and needs no more epochs (it has
  // `epochs` of them, or it diverged), or nullptr.
  const RunResult* Finished(const RunKey& key, int64_t epochs) const;
  // The run to continue, when it is `key`: the run in progress, or a finished one that
  // `epochs` extends. Restores the model, the optimizer and LibTorch's random generators (built
  // as for a fresh run) and returns where to go on; nullopt when `key` starts afresh.
  absl::StatusOr<std::optional<InProgress>> Resume(const RunKey& key, int64_t epochs,
                                                   torch::nn::Module& model,
                                                   torch::optim::Optimizer& optimizer);
  // Loads a finished run's final model state (for --save_model of a run restored unchanged).
  absl::Status LoadFinalModel(const RunKey& key, torch::nn::Module& model) const;

  // Writes the run in progress: `done` epochs finished, `partial` the epoch under way (or
  // nullopt at an epoch boundary), with the model's, optimizer's and generators' current state.
  absl::Status Save(const RunKey& key, const RunResult& done,
                    const std::optional<EpochStats>& partial, int64_t epoch,
                    const torch::nn::Module& model, const torch::optim::Optimizer& optimizer);
  // Records `key` as finished: its full result, and its final state in a file of its own.
  absl::Status Finish(const RunKey& key, const RunResult& result, const torch::nn::Module& model,
                      const torch::optim::Optimizer& optimizer);

  // Where the last Save or Finish left the checkpoint, for the "resume with" message
  // ("run 'sgd', epoch 2, after batch 5"); empty when this process has written nothing.
  const std::string& LastPosition() const { return last_position_; }

 private:
  Checkpointer(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}
  static absl::StatusOr<std::unique_ptr<Checkpointer>> OpenHere(const Options& options);
  static absl::StatusOr<std::unique_ptr<Checkpointer>> OpenMirror(const Options& options);
  // Takes the file's settings and runs as this run's (after the fingerprint check).
  absl::Status Adopt(CheckpointFile file, const Options& options);
  // ReadCheckpointFile on rank 0, its result on every rank.
  absl::StatusOr<CheckpointFile> ReadShared(const std::string& path) const;
  absl::Status Write(const torch::nn::Module* model, const torch::optim::Optimizer* optimizer);
  std::string StateFileFor(const RunKey& key) const;

  std::string path_;
  int lock_fd_ = -1;
  CheckpointMeta meta_;
  std::string archive_;  // the file's archive as read, for Resume (dropped once used)
  std::map<std::string, std::pair<int64_t, int64_t>> extended_;
  std::string last_position_;
  bool writes_ = true;
  bool resuming_ = false;
  std::function<absl::StatusOr<std::string>(const std::string&)> share_;
};

// A hash of the model's parameters and buffers and the optimizer's per-parameter state, in
// parameter order: equal exactly when the training states are bit-identical.
std::string StateDigest(const torch::nn::Module& model, const torch::optim::Optimizer& optimizer);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_CHECKPOINT_CHECKPOINTER_H_
