#include "experiments/checkpoint/checkpointer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/status_macros.h"
#include "core/torch_error.h"
#include "experiments/checkpoint/checkpoint_folders.h"

namespace trainlab::experiments {
namespace {

using checkpoint_internal::AlreadyThere;
using checkpoint_internal::Claimed;
using checkpoint_internal::Holding;
using checkpoint_internal::Lock;

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
    session = checkpoint_internal::NewSession();
    mine = checkpoint_internal::Claim(o, g.rank, session);
  }
  TRAINLAB_ASSIGN_OR_RETURN(session, g.broadcast(0, session));
  if (g.rank != 0 && keeps_copy) mine = checkpoint_internal::Claim(o, g.rank, session);
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
  TRAINLAB_ASSIGN_OR_RETURN(const int chosen, checkpoint_internal::Choose(held, o, g.rank));
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
    absl::StatusOr<std::string> got = checkpoint_internal::BroadcastResult(g, from.rank, bytes);
    if (!got.ok()) {
      if (wrote.ok()) wrote = got.status();
      continue;  // every rank met the same error: the collectives stay in step
    }
    if (c->writes_ && !mine.holding.finals.count(run.state_file) && wrote.ok()) {
      wrote = WriteFileAtomically(absl::StrCat(dir, "/", run.state_file), *got);
    }
  }
  TRAINLAB_RETURN_IF_ERROR(checkpoint_internal::Agree(g, wrote));
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
  TRAINLAB_ASSIGN_OR_RETURN(const FingerprintMatch match,
                            checkpoint_internal::Compatible(file.meta, o, path_));
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
  TRAINLAB_ASSIGN_OR_RETURN(const Lock lock, checkpoint_internal::TakeLock(path, o.holder));
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
  absl::StatusOr<std::string> got = checkpoint_internal::BroadcastResult(*ranks_, 0, bytes);
  bytes = absl::StatusOr<std::string>(std::string());
  absl::Status wrote = got.status();
  if (got.ok() && writes_) wrote = WriteFileAtomically(path, *got);
  return checkpoint_internal::Agree(*ranks_, wrote);
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

}  // namespace trainlab::experiments
