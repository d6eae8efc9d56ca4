// How a Checkpointer holds its folder, and the folders of a data-parallel job: the lock, the
// compatibility check, and the copies on every node (what each rank holds, the decision every
// rank takes from the same list, one verdict for every rank). checkpointer.cc's helpers, apart
// so that the class reads as what it does; not an API of its own.
#ifndef TRAINLAB_EXPERIMENTS_CHECKPOINT_CHECKPOINT_FOLDERS_H_
#define TRAINLAB_EXPERIMENTS_CHECKPOINT_CHECKPOINT_FOLDERS_H_

#include <unistd.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/checkpoint/checkpoint_format.h"
#include "experiments/checkpoint/checkpointer.h"

namespace trainlab::experiments::checkpoint_internal {

// Takes DIR/<experiment>.ckpt.lock for this process (flock), writing `holder` (and, in a
// data-parallel job, `session`: this opening's tag, the same on every rank) into it. Another live
// process holding it is an error that names it, unless it is a rank of this same job opening
// the same folder (a folder shared by nodes): then `shared` and no lock. The lock goes with the
// process, however it ends.
struct Lock {
  int fd = -1;
  bool shared = false;
};
absl::StatusOr<Lock> TakeLock(const std::string& path, const std::string& holder,
                              const std::string& session = "");

// "PATH: a checkpoint is already there ...": the refusal to overwrite one, naming its job.
absl::Status AlreadyThere(const std::string& path, const std::string& its_job,
                          const std::string& job);

// Whether a checkpoint with `meta` may be resumed by a run with options `o`: the same
// experiment, fingerprint version, world size and settings (up to extendable ones).
absl::StatusOr<FingerprintMatch> Compatible(const CheckpointMeta& meta,
                                            const Checkpointer::Options& o,
                                            const std::string& path);

// Where a checkpoint stands, for messages: "run 'sgd #1', epoch 2, after batch 4".
std::string PositionOf(const CheckpointMeta& m);

// What one rank holds when a data-parallel job opens its checkpoint; all-gathered as JSON so that
// every rank decides from the same list.
struct Holding {
  int rank = 0;
  // "none": no folder of its own; "copy": it holds and writes its folder; "shared": its folder is
  // another rank's of this job (one folder on shared storage).
  std::string role = "none";
  std::string path;         // its checkpoint file
  absl::Status error;       // its folder could not be opened (not writable, another run's lock)
  bool has_file = false;    // a checkpoint is there ...
  absl::Status unreadable;  // ... but could not be read
  std::string job;
  int64_t sequence = 0;
  std::string position;
  std::string digest;            // of the archive ("" without one)
  absl::Status usable;           // Compatible() with this run
  std::set<std::string> finals;  // finished runs' final states in the folder

  nlohmann::json ToJson() const;
  static absl::StatusOr<Holding> FromJson(const std::string& text);
};

// This rank's folder, locked (or found to be another rank's), and what it holds.
struct Claimed {
  Holding holding;
  std::optional<CheckpointFile> file;
  // The folder's lock, closed (released) unless Release() hands it to the Checkpointer.
  Claimed() = default;
  Claimed(Claimed&& o) noexcept : holding(std::move(o.holding)), file(std::move(o.file)) {
    std::swap(lock_fd, o.lock_fd);
  }
  Claimed& operator=(Claimed&& o) noexcept {
    holding = std::move(o.holding);
    file = std::move(o.file);
    std::swap(lock_fd, o.lock_fd);
    return *this;
  }
  ~Claimed() {
    if (lock_fd >= 0) ::close(lock_fd);
  }
  int Release() { return std::exchange(lock_fd, -1); }
  int lock_fd = -1;
};

// Locks this rank's folder (or finds it another rank's of this opening: `session`) and reads what
// it holds. Errors go into the holding, for every rank to see.
Claimed Claim(const Checkpointer::Options& o, int rank, const std::string& session);

// The decision every rank takes from the same holdings: the index of the copy to resume, -1 to
// start afresh, or the error that stops every rank (as rank `me` words it).
absl::StatusOr<int> Choose(const std::vector<Holding>& held, const Checkpointer::Options& o,
                           int me);

// One status for every rank: the first rank's error (in rank order), or OK.
absl::Status Agree(const Checkpointer::Options::Ranks& g, const absl::Status& mine);

// Rank `root`'s bytes (or its error) on every rank.
absl::StatusOr<std::string> BroadcastResult(const Checkpointer::Options::Ranks& g, int root,
                                            const absl::StatusOr<std::string>& mine);

// A tag for one opening of a job's checkpoint, the same on every rank once rank 0 broadcasts it.
std::string NewSession();

}  // namespace trainlab::experiments::checkpoint_internal

#endif  // TRAINLAB_EXPERIMENTS_CHECKPOINT_CHECKPOINT_FOLDERS_H_
