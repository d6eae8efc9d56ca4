#include "experiments/checkpoint.h"

#include <c10/util/Exception.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "experiments/results.h"
#include "plugins/optimizers/state_key.h"

namespace trainlab::experiments {
namespace {

using json = nlohmann::json;

json StagesToJson(const data::LoaderStageTimes& t) {
  return {{"read_s", t.read_s},         {"crop_s", t.crop_s},
          {"flip_s", t.flip_s},         {"normalize_s", t.normalize_s},
          {"assemble_s", t.assemble_s}, {"batches", t.batches},
          {"images", t.images}};
}
data::LoaderStageTimes StagesFromJson(const json& j) {
  data::LoaderStageTimes t;
  t.read_s = j.at("read_s");
  t.crop_s = j.at("crop_s");
  t.flip_s = j.at("flip_s");
  t.normalize_s = j.at("normalize_s");
  t.assemble_s = j.at("assemble_s");
  t.batches = j.at("batches");
  t.images = j.at("images");
  return t;
}

// FNV-1a, 64 bits.
struct Hash {
  uint64_t h = 1469598103934665603ull;
  void Add(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void Add(const std::string& s) {
    Add(s.data(), s.size());
    Add("\0", 1);
  }
  void Add(const at::Tensor& t) {
    const at::Tensor c = t.detach().to(at::kCPU).contiguous();
    Add(std::string(c.dtype().name()));
    for (int64_t d : c.sizes()) Add(&d, sizeof d);
    Add(c.data_ptr(), c.numel() * c.element_size());
  }
};

// The file is a frame around LibTorch's archive: magic, payload length and CRC-32, so that a
// truncated or corrupted file is refused before LibTorch parses it (LibTorch 1.13's archive
// reader can crash on a corrupted zip: found by mutating checkpoints, see tests/fuzz).
constexpr char kMagic[8] = {'T', 'L', 'C', 'K', 'P', 'T', '0', '1'};
constexpr size_t kHeaderBytes = 8 + 8 + 4;

uint32_t Crc32(const std::string& bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t done = 0;
  while (done < bytes.size()) {  // crc32 takes a uInt length
    const size_t n = std::min<size_t>(bytes.size() - done, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), static_cast<uInt>(n));
    done += n;
  }
  return static_cast<uint32_t>(crc);
}

absl::Status Corrupt(const std::string& path, const std::string& what) {
  return absl::DataLossError(absl::StrCat(path, ": not a usable checkpoint (", what, ")"));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<std::string> UnframeCheckpoint(const std::string& file, const std::string& path) {
  if (file.size() < kHeaderBytes || std::memcmp(file.data(), kMagic, 8) != 0) {
    return Corrupt(path, "not a trainlab checkpoint file: no TLCKPT01 header");
  }
  uint64_t length = 0;
  uint32_t crc = 0;
  for (int i = 0; i < 8; ++i) length |= uint64_t{static_cast<uint8_t>(file[8 + i])} << (8 * i);
  for (int i = 0; i < 4; ++i) crc |= uint32_t{static_cast<uint8_t>(file[16 + i])} << (8 * i);
  if (length != file.size() - kHeaderBytes) {
    return Corrupt(path,
                   absl::StrCat("truncated or extended: the header says ", length,
                                " bytes of archive, the file has ", file.size() - kHeaderBytes));
  }
  std::string payload = file.substr(kHeaderBytes);
  if (Crc32(payload) != crc) return Corrupt(path, "corrupted: CRC-32 mismatch");
  return payload;
}

std::string FrameCheckpoint(const std::string& archive) {
  std::string out(kMagic, 8);
  const uint64_t length = archive.size();
  const uint32_t crc = Crc32(archive);
  for (int i = 0; i < 8; ++i) out += static_cast<char>((length >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((crc >> (8 * i)) & 0xff);
  return out + archive;
}

std::string RunKey::str() const { return absl::StrCat(config, " #", repeat); }

json EpochToJson(const EpochStats& e) {
  json batches = json::array();
  for (const BatchRecord& b : e.batches) {
    batches.push_back(
        {b.index, b.size, b.wait_s, b.copy_s, b.train_s, JsonNumber(b.loss), b.correct});
  }
  json j = {{"epoch", e.epoch},     {"loss", JsonNumber(e.loss)}, {"top1", e.top1},
            {"load_s", e.load_s},   {"copy_s", e.copy_s},         {"train_s", e.train_s},
            {"epoch_s", e.epoch_s}, {"samples", e.samples},       {"batches", std::move(batches)}};
  if (e.diverged)
    j["diverged"] = {e.diverged->epoch, e.diverged->batch, JsonNumber(e.diverged->loss)};
  return j;
}

absl::StatusOr<EpochStats> EpochFromJson(const json& j) {
  try {
    EpochStats e;
    e.epoch = j.at("epoch");
    e.loss = NumberFromJson(j.at("loss"));
    e.top1 = j.at("top1");
    e.load_s = j.at("load_s");
    e.copy_s = j.at("copy_s");
    e.train_s = j.at("train_s");
    e.epoch_s = j.at("epoch_s");
    e.samples = j.at("samples");
    for (const json& b : j.at("batches")) {
      BatchRecord r;
      r.index = b.at(0);
      r.size = b.at(1);
      r.wait_s = b.at(2);
      r.copy_s = b.at(3);
      r.train_s = b.at(4);
      r.loss = NumberFromJson(b.at(5));
      r.correct = b.at(6);
      e.batches.push_back(r);
    }
    if (j.contains("diverged")) {
      const json& d = j["diverged"];
      e.diverged = Divergence{d.at(0), d.at(1), NumberFromJson(d.at(2))};
    }
    return e;
  } catch (const json::exception& ex) {
    return absl::DataLossError(absl::StrCat("epoch record: ", ex.what()));
  }
}

json RunResultToJson(const RunResult& r) {
  json epochs = json::array(), stages = json::array(), test = json::array();
  for (const EpochStats& e : r.epochs) epochs.push_back(EpochToJson(e));
  for (const auto& s : r.loader_stages) stages.push_back(StagesToJson(s));
  for (const EvalStats& t : r.test) test.push_back({JsonNumber(t.loss), t.top1, t.samples});
  return {{"repeat", r.repeat},
          {"total_s", r.total_s},
          {"epochs", std::move(epochs)},
          {"loader_stages", std::move(stages)},
          {"test", std::move(test)}};
}

absl::StatusOr<RunResult> RunResultFromJson(const json& j) {
  try {
    RunResult r;
    r.repeat = j.at("repeat");
    r.total_s = j.at("total_s");
    for (const json& e : j.at("epochs")) {
      TRAINLAB_ASSIGN_OR_RETURN(EpochStats stats, EpochFromJson(e));
      if (stats.diverged) r.diverged = stats.diverged;
      r.epochs.push_back(std::move(stats));
    }
    for (const json& s : j.at("loader_stages")) r.loader_stages.push_back(StagesFromJson(s));
    for (const json& t : j.at("test"))
      r.test.push_back(EvalStats{NumberFromJson(t.at(0)), t.at(1), t.at(2)});
    return r;
  } catch (const json::exception& ex) {
    return absl::DataLossError(absl::StrCat("run record: ", ex.what()));
  }
}

std::string StateDigest(const torch::nn::Module& model, const torch::optim::Optimizer& optimizer) {
  Hash h;
  for (const auto& p : model.named_parameters(/*recurse=*/true)) {
    h.Add(p.key());
    h.Add(p.value());
  }
  for (const auto& b : model.named_buffers(/*recurse=*/true)) {
    h.Add(b.key());
    h.Add(b.value());
  }
  // Per parameter, in order: its optimizer state, read back by key name (the archive's own
  // bytes are not comparable across processes: LibTorch 1.x keys them by tensor address).
  for (const auto& group : optimizer.param_groups()) {
    for (const at::Tensor& p : group.params()) {
      auto it = optimizer.state().find(trainlab::optim::StateKey(p));
      if (it == optimizer.state().end()) {
        h.Add(std::string("no state"));
        continue;
      }
      torch::serialize::OutputArchive out;
      it->second->serialize(out);
      std::ostringstream bytes;
      out.save_to(bytes);
      std::istringstream in_bytes(bytes.str());
      torch::serialize::InputArchive in;
      in.load_from(in_bytes);
      std::vector<std::string> keys = in.keys();
      std::sort(keys.begin(), keys.end());
      for (const std::string& k : keys) {
        h.Add(k);
        at::Tensor t;
        c10::IValue v;
        if (in.try_read(k, t)) {
          h.Add(t);
        } else if (in.try_read(k, v)) {
          std::ostringstream s;
          s << v;
          h.Add(s.str());
        }
      }
    }
  }
  return absl::StrFormat("%016x", h.h);
}

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Open(const std::string& dir,
                                                                 const std::string& experiment,
                                                                 const json& fingerprint,
                                                                 bool resume) {
  TRAINLAB_RETURN_IF_ERROR(PrepareResultsDir(dir));
  const std::string path = absl::StrCat(dir, "/", experiment, ".ckpt");
  std::unique_ptr<Checkpointer> c(new Checkpointer(path, fingerprint));
  const bool exists = std::filesystem::exists(path);
  if (!resume) {
    if (exists) {
      return absl::AlreadyExistsError(absl::StrCat(
          path,
          ": a checkpoint is already there; pass --resume to continue it, or remove it (or "
          "choose another --checkpoint_dir) to start afresh"));
    }
    return c;
  }
  if (!exists) {
    return absl::NotFoundError(
        absl::StrCat(path, ": no checkpoint to resume (run without --resume to start)"));
  }
  if (std::filesystem::is_directory(path)) return Corrupt(path, "a directory, not a file");
  absl::StatusOr<std::string> archive_bytes = UnframeCheckpoint(ReadFile(path), path);
  if (!archive_bytes.ok()) return archive_bytes.status();
  c->archive_bytes_ = std::move(*archive_bytes);
  std::string meta_text;
  try {
    std::istringstream in(c->archive_bytes_);
    torch::serialize::InputArchive archive;
    archive.load_from(in);
    c10::IValue meta;
    if (!archive.try_read("meta", meta) || !meta.isString()) return Corrupt(path, "no metadata");
    meta_text = meta.toStringRef();
  } catch (const c10::Error& e) {
    return Corrupt(path, absl::StrCat("LibTorch: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return Corrupt(path, e.what());
  }
  json meta = json::parse(meta_text, nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded() || !meta.is_object()) return Corrupt(path, "metadata is not JSON");
  const int version = meta.value("format_version", 0);
  if (version != kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": checkpoint format version ", version,
                                                      ", this build reads version ",
                                                      kCheckpointFormatVersion));
  }
  if (meta.value("experiment", "") != experiment) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": a checkpoint of ", meta.value("experiment", "?"), ", not of ", experiment));
  }
  const json& theirs = meta["fingerprint"];
  std::vector<std::string> diffs;
  for (const auto& [k, v] : fingerprint.items()) {
    if (!theirs.contains(k)) {
      diffs.push_back(absl::StrCat(k, " (not recorded)"));
    } else if (theirs[k] != v) {
      diffs.push_back(absl::StrCat(k, " was ", theirs[k].dump(), ", now ", v.dump()));
    }
  }
  if (!diffs.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": made with other settings: ", absl::StrJoin(diffs, "; "),
                     " (resume with the settings it was made with, or start afresh elsewhere)"));
  }
  for (const auto& [key, run] : meta["finished"].items()) {
    absl::StatusOr<RunResult> r = RunResultFromJson(run);
    if (!r.ok()) return Corrupt(path, std::string(r.status().message()));
    c->finished_[key] = std::move(*r);
  }
  c->current_ = meta.value("current", json());
  return c;
}

const RunResult* Checkpointer::Finished(const RunKey& key) const {
  auto it = finished_.find(key.str());
  return it == finished_.end() ? nullptr : &it->second;
}

absl::StatusOr<std::optional<InProgress>> Checkpointer::Resume(const RunKey& key,
                                                               torch::nn::Module& model,
                                                               torch::optim::Optimizer& optimizer) {
  if (current_.is_null() || current_.value("key", "") != key.str()) {
    return std::optional<InProgress>();
  }
  InProgress p;
  try {
    p.epoch = current_.at("epoch");
    absl::StatusOr<RunResult> done = RunResultFromJson(current_.at("done"));
    if (!done.ok()) return Corrupt(path_, std::string(done.status().message()));
    p.done = std::move(*done);
    if (current_.contains("partial")) {
      absl::StatusOr<EpochStats> partial = EpochFromJson(current_["partial"]);
      if (!partial.ok()) return Corrupt(path_, std::string(partial.status().message()));
      p.partial = std::move(*partial);
    }
  } catch (const json::exception& e) {
    return Corrupt(path_, e.what());
  }
  try {
    std::istringstream in(archive_bytes_);
    torch::serialize::InputArchive archive;
    archive.load_from(in);
    torch::serialize::InputArchive m, o;
    if (!archive.try_read("model", m) || !archive.try_read("optimizer", o)) {
      return Corrupt(path_, "no model or optimizer state for the run in progress");
    }
    model.load(m);
    optimizer.load(o);
  } catch (const c10::Error& e) {
    return Corrupt(path_, absl::StrCat("LibTorch: ", e.what_without_backtrace()));
  }
  current_ = json();  // used once
  archive_bytes_.clear();
  return std::optional<InProgress>(std::move(p));
}

absl::Status Checkpointer::Write(const json& current, const torch::nn::Module* model,
                                 const torch::optim::Optimizer* optimizer) {
  json finished = json::object();
  for (const auto& [k, r] : finished_) finished[k] = RunResultToJson(r);
  const json meta = {{"format_version", kCheckpointFormatVersion},
                     {"experiment", std::filesystem::path(path_).stem().string()},
                     {"fingerprint", fingerprint_},
                     {"finished", std::move(finished)},
                     {"current", current}};
  std::ostringstream bytes;
  try {
    torch::serialize::OutputArchive archive;
    archive.write("meta", c10::IValue(meta.dump()));
    if (model != nullptr) {
      torch::serialize::OutputArchive m, o;
      model->save(m);
      optimizer->save(o);
      archive.write("model", m);
      archive.write("optimizer", o);
    }
    archive.save_to(bytes);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat(path_, ": cannot serialise the checkpoint: ", e.what_without_backtrace()));
  }
  return WriteFileAtomically(path_, FrameCheckpoint(bytes.str()));
}

absl::Status Checkpointer::Save(const RunKey& key, const RunResult& done,
                                const std::optional<EpochStats>& partial, int64_t epoch,
                                const torch::nn::Module& model,
                                const torch::optim::Optimizer& optimizer) {
  json current = {{"key", key.str()}, {"epoch", epoch}, {"done", RunResultToJson(done)}};
  if (partial) current["partial"] = EpochToJson(*partial);
  last_position_ = partial ? absl::StrCat("run '", key.config, "', epoch ", epoch + 1,
                                          ", after batch ", partial->batches.size())
                           : absl::StrCat("run '", key.config, "', after epoch ", epoch);
  return Write(current, &model, &optimizer);
}

absl::Status Checkpointer::Finish(const RunKey& key, const RunResult& result) {
  finished_[key.str()] = result;
  last_position_ = absl::StrCat("after run '", key.config, "'");
  return Write(json(), nullptr, nullptr);
}

}  // namespace trainlab::experiments
