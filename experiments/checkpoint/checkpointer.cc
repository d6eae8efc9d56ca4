#include "experiments/checkpoint/checkpointer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <fcntl.h>
#include <sys/file.h>
#include <torch/cuda.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/status_macros.h"
#include "core/torch_error.h"
#include "plugins/optimizers/state_key.h"

namespace trainlab::experiments {
namespace {

using torch::serialize::InputArchive;
using torch::serialize::OutputArchive;

// LibTorch's default generators: the CPU's and each CUDA device's.
std::vector<std::pair<std::string, at::Generator>> Generators() {
  std::vector<std::pair<std::string, at::Generator>> out;
  out.emplace_back("cpu", at::detail::getDefaultCPUGenerator());
  if (torch::cuda::is_available()) {
    for (size_t i = 0; i < torch::cuda::device_count(); ++i) {
      out.emplace_back(absl::StrCat("cuda", i), at::globalContext().defaultGenerator(c10::Device(
                                                    c10::kCUDA, static_cast<c10::DeviceIndex>(i))));
    }
  }
  return out;
}

void WriteStates(OutputArchive& archive, const torch::nn::Module& model,
                 const torch::optim::Optimizer& optimizer) {
  OutputArchive m, o, rng;
  model.save(m);
  optimizer.save(o);
  for (auto& [name, gen] : Generators()) {
    std::lock_guard<std::mutex> lock(gen.mutex());
    rng.write(name, gen.get_state());
  }
  archive.write("model", m);
  archive.write("optimizer", o);
  archive.write("rng", rng);
}

// Restores what WriteStates wrote; `optimizer` may be null (the model alone).
absl::Status ReadStates(const std::string& archive_bytes, const std::string& path,
                        torch::nn::Module& model, torch::optim::Optimizer* optimizer) {
  try {
    std::istringstream in(archive_bytes);
    InputArchive archive;
    archive.load_from(in);
    InputArchive m, o, rng;
    if (!archive.try_read("model", m) ||
        (optimizer != nullptr && !archive.try_read("optimizer", o))) {
      return CorruptCheckpoint(path, "no model or optimizer state for the run");
    }
    model.load(m);
    if (optimizer != nullptr) optimizer->load(o);
    if (optimizer != nullptr && archive.try_read("rng", rng)) {
      for (auto& [name, gen] : Generators()) {
        at::Tensor state;
        if (!rng.try_read(name, state)) continue;  // a device this checkpoint did not have
        std::lock_guard<std::mutex> lock(gen.mutex());
        gen.set_state(state);
      }
    }
  } catch (const std::exception& e) {
    return CorruptCheckpoint(path, absl::StrCat("LibTorch: ", TorchErrorLine(e)));
  }
  return absl::OkStatus();
}

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
                              const std::string& session = "") {
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

// The world size a fingerprint records (1 where it has none: one process).
int64_t WorldSizeOf(const nlohmann::json& f) {
  return f.is_object() && f.contains("world_size") && f["world_size"].is_number_integer()
             ? f["world_size"].get<int64_t>()
             : int64_t{1};
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

// What rank 0 sends the other ranks of what it read: "E<code>:<message>" (an error), "N<path>\n"
// (nothing to resume) or "R<path>\n<archive>" (the file, unframed).
std::string EncodeShared(const absl::Status& status, const std::string& path,
                         const std::string* archive) {
  if (!status.ok())
    return absl::StrCat("E", static_cast<int>(status.code()), ":", status.message());
  if (archive == nullptr) return absl::StrCat("N", path, "\n");
  return absl::StrCat("R", path, "\n", *archive);
}

struct Shared {
  std::string path;                    // rank 0's file
  std::optional<CheckpointFile> file;  // the file, when there was one
};

absl::StatusOr<Shared> DecodeShared(const std::string& msg) {
  if (msg.empty()) return absl::InternalError("checkpoint: nothing received from rank 0");
  if (msg[0] == 'E') {
    const size_t colon = msg.find(':');
    int code = static_cast<int>(absl::StatusCode::kUnknown);
    if (colon == std::string::npos || !absl::SimpleAtoi(msg.substr(1, colon - 1), &code)) {
      return absl::InternalError("checkpoint: a garbled error from rank 0");
    }
    return absl::Status(static_cast<absl::StatusCode>(code),
                        absl::StrCat("rank 0: ", msg.substr(colon + 1)));
  }
  const size_t nl = msg.find('\n');
  if (nl == std::string::npos || (msg[0] != 'N' && msg[0] != 'R')) {
    return absl::InternalError("checkpoint: a garbled message from rank 0");
  }
  Shared out;
  out.path = msg.substr(1, nl - 1);
  if (msg[0] == 'R') {
    TRAINLAB_ASSIGN_OR_RETURN(CheckpointFile f,
                              ParseCheckpointArchive(msg.substr(nl + 1), out.path));
    out.file = std::move(f);
  }
  return out;
}

// --- A data-parallel job's copies ----------------------------------------------------------

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

  nlohmann::json ToJson() const {
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
  static absl::StatusOr<Holding> FromJson(const std::string& text) {
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
};

std::string ArchiveDigest(const std::string& archive) {
  const uLong crc = ::crc32_z(0L, reinterpret_cast<const Bytef*>(archive.data()), archive.size());
  return absl::StrCat(archive.size(), ":", absl::Hex(crc, absl::kZeroPad8));
}

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

std::string RankList(const std::vector<int>& ranks) { return absl::StrJoin(ranks, ", "); }

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Open(Options o) {
  if (o.ranks) return OpenRanks(o);
  return OpenHere(o);
}

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::OpenRanks(const Options& o) {
  const Options::Ranks& g = *o.ranks;
  const bool keeps_copy = g.rank == 0 || g.node_copy;
  // 1. Rank 0 takes its folder first and tags this opening; then every node's first rank takes
  //    its own (a folder already locked under this tag is shared with that rank).
  std::string session;
  Claimed mine;
  if (g.rank == 0) {
    session = NewSession();
    mine = Claim(o, g.rank, session);
  }
  TRAINLAB_ASSIGN_OR_RETURN(session, g.broadcast(0, session));
  if (g.rank != 0 && keeps_copy) mine = Claim(o, g.rank, session);
  mine.holding.rank = g.rank;
  // 2. What every folder holds, on every rank; 3. the same decision on every rank.
  std::unique_ptr<Checkpointer> c(new Checkpointer(mine.holding.path, mine.Release()));
  TRAINLAB_ASSIGN_OR_RETURN(const std::vector<std::string> all,
                            g.all_gather(mine.holding.ToJson().dump()));
  std::vector<Holding> held;
  for (const std::string& text : all) {
    TRAINLAB_ASSIGN_OR_RETURN(Holding h, Holding::FromJson(text));
    held.push_back(std::move(h));
  }
  TRAINLAB_ASSIGN_OR_RETURN(const int chosen, Choose(held, o, g.rank));
  c->ranks_ = g;
  c->writes_ = mine.holding.role == "copy";
  if (!c->writes_) c->path_ = held.empty() ? "" : held[0].path;
  c->copies_ = static_cast<int>(
      std::count_if(held.begin(), held.end(), [](const Holding& h) { return h.role == "copy"; }));
  c->meta_.experiment = o.experiment;
  c->meta_.fingerprint = o.fingerprint;
  c->meta_.job = o.job;
  if (chosen < 0) return c;

  // 4. The chosen copy on every rank; every folder that lacks it (an empty disk, an older or
  //    unreadable copy) gets it now, with the final states of the runs it lists as finished.
  const Holding& from = held[chosen];
  TRAINLAB_ASSIGN_OR_RETURN(
      std::string archive,
      g.broadcast(from.rank, g.rank == from.rank ? mine.file->archive : std::string()));
  CheckpointFile file;
  if (g.rank == from.rank) {
    file = std::move(*mine.file);
  } else {
    TRAINLAB_ASSIGN_OR_RETURN(file, ParseCheckpointArchive(archive, from.path));
  }
  std::vector<int> lacking;
  for (const Holding& h : held) {
    if (h.role == "copy" && h.digest != from.digest) lacking.push_back(h.rank);
  }
  absl::Status wrote;
  if (c->writes_ && mine.holding.digest != from.digest) {
    wrote = WriteFileAtomically(c->path_, FrameCheckpoint(archive));
  }
  archive.clear();
  const std::string dir = std::filesystem::path(c->path_).parent_path().string();
  for (const auto& [key, run] : file.meta.finished) {
    if (run.state_file.empty() || !from.finals.count(run.state_file)) continue;
    const bool someone_lacks = std::any_of(held.begin(), held.end(), [&](const Holding& h) {
      return h.role == "copy" && !h.finals.count(run.state_file);
    });
    if (!someone_lacks) continue;
    absl::StatusOr<std::string> bytes = std::string();
    if (g.rank == from.rank) {
      bytes = ReadRegularFile(absl::StrCat(dir, "/", run.state_file), kMaxCheckpointBytes,
                              "checkpoint");
    }
    absl::StatusOr<std::string> got = BroadcastResult(g, from.rank, bytes);
    if (!got.ok()) {
      if (wrote.ok()) wrote = got.status();
      continue;  // every rank met the same error: the collectives stay in step
    }
    if (c->writes_ && !mine.holding.finals.count(run.state_file) && wrote.ok()) {
      wrote = WriteFileAtomically(absl::StrCat(dir, "/", run.state_file), *got);
    }
  }
  TRAINLAB_RETURN_IF_ERROR(Agree(g, wrote));
  TRAINLAB_RETURN_IF_ERROR(c->Adopt(std::move(file), o));
  // Where it came from, when that was not simply rank 0's own copy.
  if (from.rank != 0 || !lacking.empty()) {
    c->restored_from_ = absl::StrCat("rank ", from.rank, "'s copy (", from.position, ")");
    if (!lacking.empty()) {
      absl::StrAppend(&c->restored_from_, ", written to the folder", lacking.size() > 1 ? "s" : "",
                      " of rank", lacking.size() > 1 ? "s " : " ", RankList(lacking),
                      ", which lacked it or held an older or unreadable copy");
    }
  }
  return c;
}

absl::Status Checkpointer::Adopt(CheckpointFile file, const Options& o) {
  TRAINLAB_ASSIGN_OR_RETURN(const FingerprintMatch match, Compatible(file.meta, o, path_));
  extended_ = match.extended;
  meta_.sequence = file.meta.sequence;
  meta_.finished = std::move(file.meta.finished);
  meta_.current = std::move(file.meta.current);
  archive_ = std::move(file.archive);
  resuming_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::OpenHere(const Options& o) {
  TRAINLAB_RETURN_IF_ERROR(PrepareWritableDir(o.dir, "--checkpoint_dir"));
  const std::string path = absl::StrCat(o.dir, "/", o.experiment, ".ckpt");
  TRAINLAB_ASSIGN_OR_RETURN(const Lock lock, TakeLock(path, o.holder));
  std::unique_ptr<Checkpointer> c(new Checkpointer(path, lock.fd));
  c->meta_.experiment = o.experiment;
  c->meta_.fingerprint = o.fingerprint;
  c->meta_.job = o.job;
  RemoveStaleTemporaries(o.dir, o.experiment + ".ckpt");
  std::error_code ec;
  const bool exists = std::filesystem::exists(std::filesystem::symlink_status(path, ec));
  if (!o.resume && !(o.resume_if_present && exists)) {
    if (!exists) return c;
    // This job's own checkpoint (a restart after a lost worker or node): resumed by the job.
    if (!o.job.empty()) {
      TRAINLAB_ASSIGN_OR_RETURN(CheckpointFile file, ReadCheckpointFile(path));
      if (file.meta.job == o.job) {
        TRAINLAB_RETURN_IF_ERROR(c->Adopt(std::move(file), o));
        return c;
      }
      return AlreadyThere(path, file.meta.job, o.job);
    }
    return AlreadyThere(path, "", "");
  }
  if (!exists) {
    return absl::NotFoundError(
        absl::StrCat(path, ": no checkpoint to resume (run without --resume to start)"));
  }
  TRAINLAB_ASSIGN_OR_RETURN(CheckpointFile file, ReadCheckpointFile(path));
  TRAINLAB_RETURN_IF_ERROR(c->Adopt(std::move(file), o));
  return c;
}

absl::StatusOr<CheckpointFile> Checkpointer::ReadShared(const std::string& path) const {
  if (!ranks_) return ReadCheckpointFile(path);
  const bool root = ranks_->rank == 0;
  absl::StatusOr<CheckpointFile> f;
  std::string msg;
  if (root) {
    f = ReadCheckpointFile(path);
    msg = f.ok() ? EncodeShared(absl::OkStatus(), path, &f->archive)
                 : EncodeShared(f.status(), "", nullptr);
  }
  TRAINLAB_ASSIGN_OR_RETURN(const std::string got, ranks_->broadcast(0, msg));
  if (root) return f;
  TRAINLAB_ASSIGN_OR_RETURN(Shared shared, DecodeShared(got));
  if (!shared.file) return absl::InternalError("checkpoint: rank 0 sent no file");
  return std::move(*shared.file);
}

Checkpointer::~Checkpointer() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::string Checkpointer::StateFileFor(const RunKey& key) const {
  Fnv1a h;
  h.AddString(key.str());
  return absl::StrCat(std::filesystem::path(path_).stem().string(), ".", h.Hex(), ".final.ckpt");
}

const RunResult* Checkpointer::Finished(const RunKey& key, int64_t epochs) const {
  auto it = meta_.finished.find(key.str());
  if (it == meta_.finished.end()) return nullptr;
  const RunResult& r = it->second.result;
  // (A run that reached --target_accuracy is done, however many epochs it had left.)
  if (r.diverged || r.target || static_cast<int64_t>(r.epochs.size()) >= epochs) return &r;
  return nullptr;  // to be extended: Resume continues it
}

absl::StatusOr<std::optional<InProgress>> Checkpointer::Resume(const RunKey& key, int64_t epochs,
                                                               torch::nn::Module& model,
                                                               torch::optim::Optimizer& optimizer) {
  if (meta_.current && meta_.current->key == key.str()) {
    InProgress p{meta_.current->epoch, meta_.current->done, meta_.current->partial};
    TRAINLAB_RETURN_IF_ERROR(ReadStates(archive_, path_, model, &optimizer));
    meta_.current.reset();  // used once
    archive_.clear();
    return std::optional<InProgress>(std::move(p));
  }
  auto it = meta_.finished.find(key.str());
  if (it == meta_.finished.end() || Finished(key, epochs) != nullptr) {
    return std::optional<InProgress>();
  }
  // A finished run that the larger --epochs extends: from its final state.
  if (it->second.state_file.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": run '", key.str(),
                     "' finished, and this checkpoint has no final state to "
                     "extend it from"));
  }
  const std::string state_path =
      (std::filesystem::path(path_).parent_path() / it->second.state_file).string();
  TRAINLAB_ASSIGN_OR_RETURN(CheckpointFile state, ReadShared(state_path));
  TRAINLAB_RETURN_IF_ERROR(ReadStates(state.archive, state_path, model, &optimizer));
  InProgress p{static_cast<int64_t>(it->second.result.epochs.size()), it->second.result,
               std::nullopt};
  meta_.finished.erase(it);
  return std::optional<InProgress>(std::move(p));
}

absl::Status Checkpointer::LoadFinalModel(const RunKey& key, torch::nn::Module& model) const {
  auto it = meta_.finished.find(key.str());
  if (it == meta_.finished.end() || it->second.state_file.empty()) {
    return absl::NotFoundError(
        absl::StrCat(path_, ": no final state of run '", key.str(), "' to save the weights from"));
  }
  const std::string state_path =
      (std::filesystem::path(path_).parent_path() / it->second.state_file).string();
  TRAINLAB_ASSIGN_OR_RETURN(CheckpointFile state, ReadCheckpointFile(state_path));
  return ReadStates(state.archive, state_path, model, nullptr);
}

absl::Status Checkpointer::Publish(const std::string& file_name,
                                   const std::function<absl::StatusOr<std::string>()>& make) {
  const bool root = !ranks_ || ranks_->rank == 0;
  const std::string path = (std::filesystem::path(path_).parent_path() / file_name).string();
  if (copies_ <= 1) {  // rank 0's folder alone
    if (!writes_) return absl::OkStatus();
    TRAINLAB_ASSIGN_OR_RETURN(const std::string bytes, make());
    return WriteFileAtomically(path, bytes);
  }
  // Rank 0's bytes to every node's copy, then one verdict for every rank (a node whose disk is
  // full stops the job with one line naming it, on every rank).
  absl::StatusOr<std::string> bytes = root ? make() : absl::StatusOr<std::string>(std::string());
  absl::StatusOr<std::string> got = BroadcastResult(*ranks_, 0, bytes);
  bytes = absl::StatusOr<std::string>(std::string());
  absl::Status wrote = got.status();
  if (got.ok() && writes_) wrote = WriteFileAtomically(path, *got);
  return Agree(*ranks_, wrote);
}

absl::Status Checkpointer::Write(const torch::nn::Module* model,
                                 const torch::optim::Optimizer* optimizer) {
  ++meta_.sequence;
  return Publish(std::filesystem::path(path_).filename().string(), [&] {
    return CheckpointBytes(meta_, [&](OutputArchive& a) {
      if (model != nullptr) WriteStates(a, *model, *optimizer);
    });
  });
}

absl::Status Checkpointer::Save(const RunKey& key, const RunResult& done,
                                const std::optional<EpochStats>& partial, int64_t epoch,
                                const torch::nn::Module& model,
                                const torch::optim::Optimizer& optimizer) {
  meta_.current = RunInProgress{key.str(), epoch, done, partial};
  TRAINLAB_RETURN_IF_ERROR(Write(&model, &optimizer));
  last_position_ = partial ? absl::StrCat("run '", key.variant, "', epoch ", epoch + 1,
                                          ", after batch ", partial->batches.size())
                           : absl::StrCat("run '", key.variant, "', after epoch ", epoch);
  return absl::OkStatus();
}

absl::Status Checkpointer::Finish(const RunKey& key, const RunResult& result,
                                  const torch::nn::Module& model,
                                  const torch::optim::Optimizer& optimizer) {
  // The final state first: the checkpoint never names a file that is not there.
  const std::string state_file = StateFileFor(key);
  CheckpointMeta state_meta;
  state_meta.experiment = meta_.experiment;
  state_meta.fingerprint = meta_.fingerprint;
  TRAINLAB_RETURN_IF_ERROR(Publish(state_file, [&] {
    return CheckpointBytes(state_meta, [&](OutputArchive& a) { WriteStates(a, model, optimizer); });
  }));
  meta_.finished[key.str()] = FinishedRun{result, state_file};
  meta_.current.reset();
  TRAINLAB_RETURN_IF_ERROR(Write(nullptr, nullptr));
  last_position_ = absl::StrCat("after run '", key.variant, "'");
  return absl::OkStatus();
}

std::string StateDigest(const torch::nn::Module& model, const torch::optim::Optimizer& optimizer) {
  Fnv1a h;
  auto add_tensor = [&h](const at::Tensor& t) {
    const at::Tensor c = t.detach().to(at::kCPU).contiguous();
    h.AddString(std::string(c.dtype().name()));
    for (int64_t d : c.sizes()) h.Add(&d, sizeof d);
    h.Add(c.data_ptr(), c.numel() * c.element_size());
  };
  for (const auto& p : model.named_parameters(/*recurse=*/true)) {
    h.AddString(p.key());
    add_tensor(p.value());
  }
  for (const auto& b : model.named_buffers(/*recurse=*/true)) {
    h.AddString(b.key());
    add_tensor(b.value());
  }
  // Per parameter, in order: its optimizer state, read back by key name (the archive's own
  // bytes are not comparable across processes: LibTorch 1.x keys them by tensor address).
  for (const auto& group : optimizer.param_groups()) {
    for (const at::Tensor& p : group.params()) {
      auto it = optimizer.state().find(trainlab::optim::StateKey(p));
      if (it == optimizer.state().end()) {
        h.AddString("no state");
        continue;
      }
      OutputArchive out;
      it->second->serialize(out);
      std::ostringstream bytes;
      out.save_to(bytes);
      std::istringstream in_bytes(bytes.str());
      InputArchive in;
      in.load_from(in_bytes);
      std::vector<std::string> keys = in.keys();
      std::sort(keys.begin(), keys.end());
      for (const std::string& k : keys) {
        h.AddString(k);
        at::Tensor t;
        c10::IValue v;
        if (in.try_read(k, t)) {
          add_tensor(t);
        } else if (in.try_read(k, v)) {
          std::ostringstream s;
          s << v;
          h.AddString(s.str());
        }
      }
    }
  }
  return h.Hex();
}

}  // namespace trainlab::experiments
