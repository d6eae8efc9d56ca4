#include "experiments/checkpoint/checkpointer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <fcntl.h>
#include <sys/file.h>
#include <torch/cuda.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

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

// Takes DIR/<experiment>.ckpt.lock for this process (flock), writing `holder` into it. Another
// live process holding it is an error that names it; the lock goes with the process, however it
// ends.
absl::StatusOr<int> TakeLock(const std::string& path, const std::string& holder) {
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(lock_path, ": cannot create the lock file: ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[512] = {0};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    const std::string who =
        n > 0 ? std::string(absl::StripAsciiWhitespace(std::string(buf, n))) : "another process";
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": in use by another run (", who,
                     "); wait for it to end, or use another --checkpoint_dir"));
  }
  const std::string text = holder + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) < 0) {
    // The lock is held all the same; only the message for others would be missing.
  }
  return fd;
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

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Open(Options o) {
  if (!o.share) return OpenHere(o);
  if (!o.writes) return OpenMirror(o);
  absl::StatusOr<std::unique_ptr<Checkpointer>> c = OpenHere(o);
  const std::string msg = c.ok() ? EncodeShared(absl::OkStatus(), (*c)->path_,
                                                (*c)->resuming_ ? &(*c)->archive_ : nullptr)
                                 : EncodeShared(c.status(), "", nullptr);
  TRAINLAB_RETURN_IF_ERROR(o.share(msg).status());
  if (c.ok()) (*c)->share_ = o.share;
  return c;
}

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::OpenMirror(const Options& o) {
  TRAINLAB_ASSIGN_OR_RETURN(const std::string msg, o.share(""));
  TRAINLAB_ASSIGN_OR_RETURN(Shared shared, DecodeShared(msg));
  std::unique_ptr<Checkpointer> c(new Checkpointer(shared.path, -1));
  c->writes_ = false;
  c->share_ = o.share;
  c->meta_.experiment = o.experiment;
  c->meta_.fingerprint = o.fingerprint;
  if (shared.file) TRAINLAB_RETURN_IF_ERROR(c->Adopt(std::move(*shared.file), o));
  return c;
}

absl::Status Checkpointer::Adopt(CheckpointFile file, const Options& o) {
  if (file.meta.experiment != o.experiment) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": a checkpoint of ", file.meta.experiment, ", not of ", o.experiment));
  }
  // A checkpoint whose settings were recorded in another form (an earlier trainlab's) cannot be
  // compared setting by setting: one line says so instead of a list of every key.
  const auto version = [](const nlohmann::json& f) {
    return f.is_object() && f.contains("fingerprint_version") &&
                   f["fingerprint_version"].is_number_integer()
               ? f["fingerprint_version"].get<int64_t>()
               : int64_t{1};
  };
  if (version(file.meta.fingerprint) != version(o.fingerprint)) {
    return absl::FailedPreconditionError(absl::StrCat(
        path_, ": its settings were recorded in another form (fingerprint version ",
        version(file.meta.fingerprint), "; this trainlab writes version ", version(o.fingerprint),
        "): finish it with the trainlab that made it, or start afresh"));
  }
  const FingerprintMatch match =
      CompareFingerprints(file.meta.fingerprint, o.fingerprint, o.extendable);
  if (!match.differences.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": made with other settings: ", absl::StrJoin(match.differences, "; "),
                     " (resume with the settings it was made with, or start afresh elsewhere)"));
  }
  extended_ = match.extended;
  meta_.finished = std::move(file.meta.finished);
  meta_.current = std::move(file.meta.current);
  archive_ = std::move(file.archive);
  resuming_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::OpenHere(const Options& o) {
  TRAINLAB_RETURN_IF_ERROR(PrepareWritableDir(o.dir, "--checkpoint_dir"));
  const std::string path = absl::StrCat(o.dir, "/", o.experiment, ".ckpt");
  TRAINLAB_ASSIGN_OR_RETURN(const int lock_fd, TakeLock(path, o.holder));
  std::unique_ptr<Checkpointer> c(new Checkpointer(path, lock_fd));
  c->meta_.experiment = o.experiment;
  c->meta_.fingerprint = o.fingerprint;
  c->meta_.job = o.job;
  RemoveStaleTemporaries(o.dir, o.experiment + ".ckpt");
  std::error_code ec;
  const bool exists = std::filesystem::exists(std::filesystem::symlink_status(path, ec));
  if (!o.resume && !(o.resume_if_present && exists)) {
    if (!exists) return c;
    // This job's own checkpoint (a restart after a lost worker or node): resumed by the job.
    std::string whose;
    if (!o.job.empty()) {
      TRAINLAB_ASSIGN_OR_RETURN(CheckpointFile file, ReadCheckpointFile(path));
      if (file.meta.job == o.job) {
        TRAINLAB_RETURN_IF_ERROR(c->Adopt(std::move(file), o));
        return c;
      }
      whose = file.meta.job.empty()
                  ? absl::StrCat(" (not written by this job, ", o.job, ")")
                  : absl::StrCat(" (of job ", file.meta.job, "; this is job ", o.job, ")");
    }
    return absl::AlreadyExistsError(absl::StrCat(
        path, ": a checkpoint is already there", whose,
        "; pass --resume to continue it, or remove it (or choose another --checkpoint_dir) to "
        "start afresh"));
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
  if (!share_) return ReadCheckpointFile(path);
  absl::StatusOr<CheckpointFile> f;
  std::string msg;
  if (writes_) {
    f = ReadCheckpointFile(path);
    msg = f.ok() ? EncodeShared(absl::OkStatus(), path, &f->archive)
                 : EncodeShared(f.status(), "", nullptr);
  }
  TRAINLAB_ASSIGN_OR_RETURN(const std::string got, share_(msg));
  if (writes_) return f;
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

absl::Status Checkpointer::Write(const torch::nn::Module* model,
                                 const torch::optim::Optimizer* optimizer) {
  if (!writes_) return absl::OkStatus();  // rank 0 writes; this rank keeps the state in memory
  TRAINLAB_ASSIGN_OR_RETURN(const std::string bytes, CheckpointBytes(meta_, [&](OutputArchive& a) {
                              if (model != nullptr) WriteStates(a, *model, *optimizer);
                            }));
  return WriteFileAtomically(path_, bytes);
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
  if (!writes_) {
    meta_.finished[key.str()] = FinishedRun{result, state_file};
    meta_.current.reset();
    last_position_ = absl::StrCat("after run '", key.variant, "'");
    return absl::OkStatus();
  }
  CheckpointMeta state_meta;
  state_meta.experiment = meta_.experiment;
  state_meta.fingerprint = meta_.fingerprint;
  TRAINLAB_ASSIGN_OR_RETURN(
      const std::string state_bytes,
      CheckpointBytes(state_meta, [&](OutputArchive& a) { WriteStates(a, model, optimizer); }));
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  TRAINLAB_RETURN_IF_ERROR(WriteFileAtomically(absl::StrCat(dir, "/", state_file), state_bytes));
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
