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
// Data-parallel (Options::ranks set on every rank): a copy on every node. Rank 0 and the first
// rank of every other node (LOCAL_RANK 0) each hold their own --checkpoint_dir and write rank 0's
// bytes into it (rank 0 serializes; the bytes are broadcast when there is more than one folder);
// the other ranks hold the state in memory and write nothing. Nodes that share one folder (NFS)
// have one writer: the first to take the folder's lock; the others find the lock held by this
// same job (its session tag is in the lock file) and leave the folder to it.
// Opening, every rank all-gathers what each folder holds (job, sequence, position, digest) and
// every rank takes the same decision from the same list: resume from the newest usable copy (the
// highest sequence; the lowest rank among equals), start afresh, or fail with one error. The
// copy's holder broadcasts it to every rank; a folder that lacks it (a replacement node's empty
// disk, an older copy) gets it written at once, with the finished runs' final states. So no two
// ranks decide differently, and a job that lost any node, rank 0's included, resumes from a
// survivor's disk.
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
    // A data-parallel job: every rank opens with this set, and calls Open, Resume, Save and
    // Finish at the same points (they run collectives).
    struct Ranks {
      int rank = 0;
      int world_size = 1;
      // This rank keeps a copy in its own `dir`: the first rank of its node (LOCAL_RANK 0).
      // Rank 0 always does.
      bool node_copy = false;
      // `bytes` of rank `root` on every rank (the others' arguments are ignored).
      std::function<absl::StatusOr<std::string>(int root, const std::string& bytes)> broadcast;
      // Every rank's bytes, in rank order, on every rank.
      std::function<absl::StatusOr<std::vector<std::string>>(const std::string& bytes)> all_gather;
    };
    std::optional<Ranks> ranks;
  };

  // With `resume`, DIR must hold a checkpoint of this experiment with the same fingerprint (up to
  // extendable settings) and format version; without it, DIR must not hold one (it would be
  // overwritten). Errors name the file and what does not match, or who holds the lock.
  static absl::StatusOr<std::unique_ptr<Checkpointer>> Open(Options options);
  ~Checkpointer();

  const std::string& path() const { return path_; }  // rank 0's file, on every rank
  // This process writes a copy (rank 0, and the first rank of each other node with a folder of
  // its own).
  bool writes() const { return writes_; }
  // Data-parallel: how many folders hold a copy (the writers), and where the resumed copy came
  // from when it was not rank 0's own ("rank 1's copy, written to 1 folder that lacked it"); ""
  // otherwise.
  int copies() const { return copies_; }
  const std::string& restored_from() const { return restored_from_; }
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
  static absl::StatusOr<std::unique_ptr<Checkpointer>> OpenRanks(const Options& options);
  // Takes the file's settings and runs as this run's (after the fingerprint check).
  absl::Status Adopt(CheckpointFile file, const Options& options);
  // ReadCheckpointFile on rank 0, its result on every rank.
  absl::StatusOr<CheckpointFile> ReadShared(const std::string& path) const;
  absl::Status Write(const torch::nn::Module* model, const torch::optim::Optimizer* optimizer);
  // Writes `file_name` beside the checkpoint in every copy: rank 0's `bytes` (made by `make` on
  // rank 0 alone), broadcast when there are several copies.
  absl::Status Publish(const std::string& file_name,
                       const std::function<absl::StatusOr<std::string>()>& make);
  std::string StateFileFor(const RunKey& key) const;

  std::string path_;
  int lock_fd_ = -1;
  CheckpointMeta meta_;
  std::string archive_;  // the file's archive as read, for Resume (dropped once used)
  std::map<std::string, std::pair<int64_t, int64_t>> extended_;
  std::string last_position_;
  bool writes_ = true;
  bool resuming_ = false;
  int copies_ = 1;
  std::string restored_from_;
  std::optional<Options::Ranks> ranks_;
};

// A hash of the model's parameters and buffers and the optimizer's per-parameter state, in
// parameter order: equal exactly when the training states are bit-identical.
std::string StateDigest(const torch::nn::Module& model, const torch::optim::Optimizer& optimizer);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_CHECKPOINT_CHECKPOINTER_H_
