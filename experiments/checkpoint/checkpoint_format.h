// The checkpoint file: what is in it and how it is checked, apart from the training code.
//
// DIR/<experiment>.ckpt is a frame around a LibTorch archive:
//   "TLCKPT01", the archive's length (8 bytes, little-endian), its CRC-32 (4 bytes), the archive
// checked before LibTorch parses a byte (LibTorch 1.13's zip reader can crash on a corrupted
// file: found by fuzzing). The archive holds:
//   meta       JSON (CheckpointMeta): format version, experiment, the settings fingerprint, the
//              runs already finished (their full results, per-batch records included, and the
//              file with each one's final state), and for the run in progress its key, the epochs
//              it finished and the batches of the epoch under way
//   model      the model's parameters and buffers (BatchNorm statistics included)
//   optimizer  the optimizer's state (momentum buffers, Adam moments, step counts ...)
//   rng        LibTorch's random generators (CPU, and each CUDA device's): dropout continues with
//              the masks it would have drawn
// A finished run's final state (model, optimizer, rng) goes to its own file,
// DIR/<experiment>.<run id>.final.ckpt, in the same frame: `--resume` with a larger `--epochs`
// continues it, and `--save_model` can write its weights.
// The loader needs only (seed, epoch, next batch): its order and augmentation are functions of
// those (plugins/data/loader.h).
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(CheckpointFile f, ReadCheckpointFile("/ck/c2.ckpt"));
//   for (const auto& [key, run] : f.meta.finished) ...
#ifndef TRAINLAB_EXPERIMENTS_CHECKPOINT_CHECKPOINT_FORMAT_H_
#define TRAINLAB_EXPERIMENTS_CHECKPOINT_CHECKPOINT_FORMAT_H_

#include <torch/serialize/output-archive.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "experiments/results/json_reader.h"
#include "experiments/results/result.h"

namespace trainlab::experiments {

inline constexpr int kCheckpointFormatVersion = 2;
// A checkpoint larger than this is refused unread (ResNet-18 with Adam's state: ~135 MB).
inline constexpr uint64_t kMaxCheckpointBytes = uint64_t{4} << 30;

// Which training run of an experiment: the variant's label and the repeat (1-based).
struct RunKey {
  std::string variant;
  int repeat = 1;
  std::string str() const;  // "adam #2"
};

struct FinishedRun {
  RunResult result;
  std::string state_file;  // its final state, beside the checkpoint ("" in older checkpoints)
};

struct RunInProgress {
  std::string key;                    // RunKey::str()
  int64_t epoch = 0;                  // 0-based: the epoch to train next (or to finish)
  RunResult done;                     // the epochs it finished
  std::optional<EpochStats> partial;  // batches of `epoch` already trained, when stopped mid-epoch
};

struct CheckpointMeta {
  int format_version = kCheckpointFormatVersion;
  std::string experiment;
  nlohmann::json fingerprint = nlohmann::json::object();
  // The elastic job that wrote it (TORCHELASTIC_RUN_ID, torchrun's rendezvous id), or "" (not
  // under an elastic launcher, or a file written before 2026-12-07).
  std::string job;
  // How many times the run's checkpoint was written (every save and finish, from the run's
  // start, resumes included): of copies on several nodes, the highest is the newest. 0 in files
  // written before 2026-12-07.
  int64_t sequence = 0;
  std::map<std::string, FinishedRun> finished;  // by RunKey::str()
  std::optional<RunInProgress> current;
};

nlohmann::json MetaToJson(const CheckpointMeta& meta);
absl::StatusOr<CheckpointMeta> MetaFromJson(const JsonReader& j);

// The framing: FrameCheckpoint(archive) is the file; UnframeCheckpoint checks the magic, the
// length and the CRC-32 and returns the archive, naming `path` in errors.
std::string FrameCheckpoint(const std::string& archive);
absl::StatusOr<std::string> UnframeCheckpoint(const std::string& file, const std::string& path);

struct CheckpointFile {
  CheckpointMeta meta;
  std::string archive;  // the LibTorch archive, for the model, optimizer and rng states
};
// Reads `path` (a regular file of at most kMaxCheckpointBytes), unframes it and reads its
// metadata. Errors name the file and what is wrong with it (and which field).
absl::StatusOr<CheckpointFile> ReadCheckpointFile(const std::string& path);
// The same from an archive already unframed (one rank 0 read and sent); `path` names it in errors.
absl::StatusOr<CheckpointFile> ParseCheckpointArchive(std::string archive, const std::string& path);
// The file's bytes: an archive of `meta` and what `states` writes into it (model, optimizer,
// rng; nothing for a checkpoint between runs), framed.
absl::StatusOr<std::string> CheckpointBytes(
    const CheckpointMeta& meta,
    const std::function<void(torch::serialize::OutputArchive&)>& states);

// "PATH: not a usable checkpoint (WHAT)": a file that is there but cannot be resumed from.
absl::Status CorruptCheckpoint(const std::string& path, absl::string_view what);

// How a checkpoint's fingerprint compares with this run's.
struct FingerprintMatch {
  std::vector<std::string> differences;  // "lr was 0.1, now 0.05"; empty: it may resume
  // Settings that grew, and may (e.g. {"epochs": {1, 2}}): the run is extended.
  std::map<std::string, std::pair<int64_t, int64_t>> extended;
};
// `extendable`: settings whose integer value may grow on resume (epochs, unless a schedule over
// the whole run depends on it).
FingerprintMatch CompareFingerprints(const nlohmann::json& theirs, const nlohmann::json& ours,
                                     const std::set<std::string>& extendable);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_CHECKPOINT_CHECKPOINT_FORMAT_H_
