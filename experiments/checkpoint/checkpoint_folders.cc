#include "experiments/checkpoint/checkpoint_folders.h"

#include <fcntl.h>
#include <sys/file.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/files.h"
#include "core/status_macros.h"

namespace trainlab::experiments::checkpoint_internal {
namespace {

nlohmann::json StatusToJson(const absl::Status& s) {
  return {{"code", static_cast<int>(s.code())}, {"message", std::string(s.message())}};
}
absl::Status StatusFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(j.value("code", 0)),
                      j.value("message", std::string()));
}

// `s`, as rank `me` reports it: prefixed "rank R: " when another rank met it.
absl::Status FromRank(const absl::Status& s, int rank, int me) {
  if (s.ok() || rank == me) return s;
  return absl::Status(s.code(), absl::StrCat("rank ", rank, ": ", s.message()));
}

// The world size a fingerprint records (1 where it has none: one process).
int64_t WorldSizeOf(const nlohmann::json& f) {
  return f.is_object() && f.contains("world_size") && f["world_size"].is_number_integer()
             ? f["world_size"].get<int64_t>()
             : int64_t{1};
}

std::string ArchiveDigest(const std::string& archive) {
  const uLong crc = ::crc32_z(0L, reinterpret_cast<const Bytef*>(archive.data()), archive.size());
  return absl::StrCat(archive.size(), ":", absl::Hex(crc, absl::kZeroPad8));
}

}  // namespace

absl::StatusOr<Lock> TakeLock(const std::string& path, const std::string& holder,
                              const std::string& session) {
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(lock_path, ": cannot create the lock file: ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const std::string tag = absl::StrCat("session ", session, "\n");
    std::string text;
    // A rank of this job that took the lock a moment ago may not have written its tag yet: in a
    // job, look again for up to a second before calling the holder someone else.
    for (int tries = session.empty() ? 1 : 50; tries > 0; --tries) {
      char buf[1024] = {0};
      const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
      text = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
      if (!session.empty() && text.find(tag) != std::string::npos) {
        ::close(fd);
        return Lock{.fd = -1, .shared = true};
      }
      if (tries > 1) ::usleep(20 * 1000);
    }
    ::close(fd);
    const std::string first_line = text.substr(0, text.find('\n'));
    const std::string who = first_line.empty()
                                ? "another process"
                                : std::string(absl::StripAsciiWhitespace(first_line));
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": in use by another run (", who,
                     "); wait for it to end, or use another --checkpoint_dir"));
  }
  const std::string text =
      absl::StrCat(holder, "\n", session.empty() ? "" : absl::StrCat("session ", session, "\n"));
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) < 0) {
    // The lock is held all the same; only the message for others would be missing.
  }
  return Lock{.fd = fd, .shared = false};
}

// "PATH: a checkpoint is already there ...": the refusal to overwrite one, naming its job.
absl::Status AlreadyThere(const std::string& path, const std::string& its_job,
                          const std::string& job) {
  std::string whose;
  if (!job.empty()) {
    whose = its_job.empty() ? absl::StrCat(" (not written by this job, ", job, ")")
                            : absl::StrCat(" (of job ", its_job, "; this is job ", job, ")");
  }
  return absl::AlreadyExistsError(absl::StrCat(
      path, ": a checkpoint is already there", whose,
      "; pass --resume to continue it, or remove it (or choose another --checkpoint_dir) to "
      "start afresh"));
}

// Whether a checkpoint with `meta` may be resumed by a run with options `o`: the same
// experiment, fingerprint version, world size and settings (up to extendable ones).
absl::StatusOr<FingerprintMatch> Compatible(const CheckpointMeta& meta,
                                            const Checkpointer::Options& o,
                                            const std::string& path) {
  if (meta.experiment != o.experiment) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": a checkpoint of ", meta.experiment, ", not of ", o.experiment));
  }
  // A checkpoint whose settings were recorded in another form (an earlier trainlab's) cannot be
  // compared setting by setting: one line says so instead of a list of every key.
  const auto version = [](const nlohmann::json& f) {
    return f.is_object() && f.contains("fingerprint_version") &&
                   f["fingerprint_version"].is_number_integer()
               ? f["fingerprint_version"].get<int64_t>()
               : int64_t{1};
  };
  if (version(meta.fingerprint) != version(o.fingerprint)) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": its settings were recorded in another form (fingerprint version ",
        version(meta.fingerprint), "; this trainlab writes version ", version(o.fingerprint),
        "): finish it with the trainlab that made it, or start afresh"));
  }
  // A job that lost a node and went on with fewer (torchrun --nnodes=1:2), or more: the run is
  // not resumed on another world size (docs/distributed.md says why).
  const int64_t theirs = WorldSizeOf(meta.fingerprint), ours = WorldSizeOf(o.fingerprint);
  if (theirs != ours) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": written by ", theirs, theirs == 1 ? " process" : " ranks", ", and this job has ",
        ours, ours == 1 ? " process" : " ranks",
        ": a run resumes only on the world size that wrote it (its global batch and every "
        "rank's data shard would change); start ",
        theirs, theirs == 1 ? " process" : " ranks", " to continue it, or start afresh elsewhere"));
  }
  FingerprintMatch match = CompareFingerprints(meta.fingerprint, o.fingerprint, o.extendable);
  if (!match.differences.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": made with other settings: ", absl::StrJoin(match.differences, "; "),
                     " (resume with the settings it was made with, or start afresh elsewhere)"));
  }
  return match;
}

// Where a checkpoint stands, for messages: "run 'sgd #1', epoch 2, after batch 4".
std::string PositionOf(const CheckpointMeta& m) {
  if (m.current) {
    return m.current->partial
               ? absl::StrCat("run '", m.current->key, "', epoch ", m.current->epoch + 1,
                              ", after batch ", m.current->partial->batches.size())
               : absl::StrCat("run '", m.current->key, "', after epoch ", m.current->epoch);
  }
  return absl::StrCat(m.finished.size(), " run(s) finished");
}

// --- A data-parallel job's copies ----------------------------------------------------------

nlohmann::json Holding::ToJson() const {
  return {{"rank", rank},
          {"role", role},
          {"path", path},
          {"error", StatusToJson(error)},
          {"has_file", has_file},
          {"unreadable", StatusToJson(unreadable)},
          {"job", job},
          {"sequence", sequence},
          {"position", position},
          {"digest", digest},
          {"usable", StatusToJson(usable)},
          {"finals", finals}};
}
absl::StatusOr<Holding> Holding::FromJson(const std::string& text) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    Holding h;
    h.rank = j.at("rank").get<int>();
    h.role = j.at("role").get<std::string>();
    h.path = j.at("path").get<std::string>();
    h.error = StatusFromJson(j.at("error"));
    h.has_file = j.at("has_file").get<bool>();
    h.unreadable = StatusFromJson(j.at("unreadable"));
    h.job = j.at("job").get<std::string>();
    h.sequence = j.at("sequence").get<int64_t>();
    h.position = j.at("position").get<std::string>();
    h.digest = j.at("digest").get<std::string>();
    h.usable = StatusFromJson(j.at("usable"));
    h.finals = j.at("finals").get<std::set<std::string>>();
    return h;
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("checkpoint: a garbled description from another rank: ", e.what()));
  }
}

Claimed Claim(const Checkpointer::Options& o, int rank, const std::string& session) {
  Claimed m;
  m.holding.rank = rank;
  m.holding.role = "copy";
  if (absl::Status s = PrepareWritableDir(o.dir, "--checkpoint_dir"); !s.ok()) {
    m.holding.error = s;
    return m;
  }
  const std::string path = absl::StrCat(o.dir, "/", o.experiment, ".ckpt");
  m.holding.path = path;
  absl::StatusOr<Lock> lock = TakeLock(path, o.holder, session);
  if (!lock.ok()) {
    m.holding.error = lock.status();
    return m;
  }
  if (lock->shared) {
    m.holding.role = "shared";
    return m;
  }
  m.lock_fd = lock->fd;
  RemoveStaleTemporaries(o.dir, o.experiment + ".ckpt");
  std::error_code ec;
  const std::string final_prefix = o.experiment + ".";
  for (const auto& entry : std::filesystem::directory_iterator(o.dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(final_prefix, 0) == 0 && absl::EndsWith(name, ".final.ckpt")) {
      m.holding.finals.insert(name);
    }
  }
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) return m;
  m.holding.has_file = true;
  absl::StatusOr<CheckpointFile> f = ReadCheckpointFile(path);
  if (!f.ok()) {
    m.holding.unreadable = f.status();
    return m;
  }
  m.holding.job = f->meta.job;
  m.holding.sequence = f->meta.sequence;
  m.holding.position = PositionOf(f->meta);
  m.holding.digest = ArchiveDigest(f->archive);
  m.holding.usable = Compatible(f->meta, o, path).status();
  m.file = std::move(*f);
  return m;
}

// The decision every rank takes from the same holdings: the index of the copy to resume, -1 to
// start afresh, or the error that stops every rank (as rank `me` words it).
absl::StatusOr<int> Choose(const std::vector<Holding>& held, const Checkpointer::Options& o,
                           int me) {
  for (const Holding& h : held) {
    if (!h.error.ok()) return FromRank(h.error, h.rank, me);
  }
  const bool wants = o.resume || o.resume_if_present;
  std::vector<const Holding*> files;
  for (const Holding& h : held) {
    if (h.role == "copy" && h.has_file) files.push_back(&h);
  }
  if (!wants) {
    // Without --resume only this job's own checkpoints are continued; any other is refused.
    // (A copy that cannot be read is replaced when this job has a readable one elsewhere.)
    for (const Holding* h : files) {
      if (o.job.empty()) return FromRank(AlreadyThere(h->path, "", ""), h->rank, me);
      if (h->unreadable.ok() && h->job != o.job) {
        return FromRank(AlreadyThere(h->path, h->job, o.job), h->rank, me);
      }
    }
  }
  int chosen = -1;
  for (size_t i = 0; i < held.size(); ++i) {
    const Holding& h = held[i];
    if (h.role != "copy" || !h.has_file || !h.unreadable.ok()) continue;
    // A readable copy this run may not resume is another run's checkpoint: never overwritten.
    if (!h.usable.ok()) return FromRank(h.usable, h.rank, me);
    if (chosen < 0 || h.sequence > held[chosen].sequence) chosen = static_cast<int>(i);
  }
  if (chosen >= 0) return chosen;
  // Nothing readable: a copy that is there but unreadable stops the run (as with one process).
  if (!files.empty()) return FromRank(files.front()->unreadable, files.front()->rank, me);
  if (o.resume) {
    const std::string where =
        held.empty() ? o.dir : held[0].path;  // rank 0's file names the run's checkpoint
    return absl::NotFoundError(
        absl::StrCat(where, ": no checkpoint to resume",
                     files.empty() && held.size() > 1 ? " in any node's --checkpoint_dir" : "",
                     " (run without --resume to start)"));
  }
  return -1;
}

// One status for every rank: the first rank's error (in rank order), or OK.
absl::Status Agree(const Checkpointer::Options::Ranks& g, const absl::Status& mine) {
  TRAINLAB_ASSIGN_OR_RETURN(const std::vector<std::string> all,
                            g.all_gather(mine.ok() ? std::string() : StatusToJson(mine).dump()));
  for (size_t r = 0; r < all.size(); ++r) {
    if (all[r].empty()) continue;
    absl::Status s;
    try {
      s = StatusFromJson(nlohmann::json::parse(all[r]));
    } catch (const std::exception&) {
      s = absl::InternalError("checkpoint: a garbled status from another rank");
    }
    return FromRank(s, static_cast<int>(r), g.rank);
  }
  return absl::OkStatus();
}

// Rank `root`'s status-or-bytes on every rank: "B<bytes>" or "E<status JSON>".
absl::StatusOr<std::string> BroadcastResult(const Checkpointer::Options::Ranks& g, int root,
                                            const absl::StatusOr<std::string>& mine) {
  std::string msg;
  if (g.rank == root) {
    if (mine.ok()) {
      msg.reserve(mine->size() + 1);
      msg.push_back('B');
      msg.append(*mine);
    } else {
      msg = absl::StrCat("E", StatusToJson(mine.status()).dump());
    }
  }
  TRAINLAB_ASSIGN_OR_RETURN(std::string got, g.broadcast(root, msg));
  if (got.empty()) return absl::InternalError("checkpoint: nothing received from another rank");
  if (got[0] == 'B') return got.erase(0, 1);
  absl::Status s;
  try {
    s = StatusFromJson(nlohmann::json::parse(got.substr(1)));
  } catch (const std::exception&) {
    s = absl::InternalError("checkpoint: a garbled status from another rank");
  }
  return FromRank(s.ok() ? absl::InternalError("checkpoint: an empty error") : s, root, g.rank);
}

std::string NewSession() {
  std::random_device rd;
  return absl::StrCat(absl::Hex(rd(), absl::kZeroPad8), absl::Hex(rd(), absl::kZeroPad8), "-",
                      getpid());
}

}  // namespace trainlab::experiments::checkpoint_internal
