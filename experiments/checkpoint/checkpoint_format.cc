#include "experiments/checkpoint/checkpoint_format.h"

#include <c10/util/Exception.h>
#include <torch/serialize/input-archive.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "core/torch_error.h"
#include "experiments/results/result_json.h"

namespace trainlab::experiments {
namespace {

using json = nlohmann::json;

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

}  // namespace

absl::Status CorruptCheckpoint(const std::string& path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(path, ": not a usable checkpoint (", what, ")"));
}

std::string RunKey::str() const { return absl::StrCat(variant, " #", repeat); }

json MetaToJson(const CheckpointMeta& m) {
  const CodecOptions all{.batch_records = true};
  json finished = json::object();
  for (const auto& [key, run] : m.finished) {
    finished[key] = {{"result", ToJson(run.result, all)}, {"state_file", run.state_file}};
  }
  json current = nullptr;
  if (m.current) {
    current = {{"key", m.current->key},
               {"epoch", m.current->epoch},
               {"done", ToJson(m.current->done, all)}};
    if (m.current->partial) current["partial"] = ToJson(*m.current->partial, nullptr, nullptr, all);
  }
  return ValidUtf8({{"format_version", m.format_version},
                    {"experiment", m.experiment},
                    {"fingerprint", m.fingerprint},
                    {"job", m.job},
                    {"sequence", m.sequence},
                    {"finished", std::move(finished)},
                    {"current", std::move(current)}});
}

absl::StatusOr<CheckpointMeta> MetaFromJson(const JsonReader& j) {
  CheckpointMeta m;
  TRAINLAB_RETURN_IF_ERROR(j.ExpectObject());
  TRAINLAB_ASSIGN_OR_RETURN(const int64_t version, j.Int("format_version"));
  m.format_version = static_cast<int>(version);
  if (m.format_version != kCheckpointFormatVersion) return m;  // the caller says what to do
  TRAINLAB_ASSIGN_OR_RETURN(m.experiment, j.String("experiment"));
  TRAINLAB_ASSIGN_OR_RETURN(JsonReader fingerprint, j.Object("fingerprint"));
  m.fingerprint = fingerprint.json();
  if (j.Has("job")) {  // (absent from files written before 2026-12-07)
    TRAINLAB_ASSIGN_OR_RETURN(m.job, j.String("job"));
  }
  if (j.Has("sequence")) {  // (the same)
    TRAINLAB_ASSIGN_OR_RETURN(m.sequence, j.Int("sequence", 0));
  }
  TRAINLAB_ASSIGN_OR_RETURN(JsonReader finished, j.Object("finished"));
  ResultDecoder decode;
  for (auto it = finished.json().begin(); it != finished.json().end(); ++it) {
    const JsonReader run(*it, absl::StrCat("finished[\"", it.key(), "\"]"));
    FinishedRun f;
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader result, run.Object("result"));
    TRAINLAB_ASSIGN_OR_RETURN(f.result, decode.Run(result));
    TRAINLAB_ASSIGN_OR_RETURN(f.state_file, run.String("state_file"));
    if (f.state_file.find('/') != std::string::npos || f.state_file == "." ||
        f.state_file == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(run.path(), ".state_file: must be a file name beside the checkpoint"));
    }
    m.finished[it.key()] = std::move(f);
  }
  if (j.Has("current") && !j.json()["current"].is_null()) {
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader c, j.Object("current"));
    RunInProgress p;
    TRAINLAB_ASSIGN_OR_RETURN(p.key, c.String("key"));
    TRAINLAB_ASSIGN_OR_RETURN(p.epoch, c.Int("epoch", 0, int64_t{1} << 30));
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader done, c.Object("done"));
    TRAINLAB_ASSIGN_OR_RETURN(p.done, decode.Run(done));
    if (c.Has("partial")) {
      TRAINLAB_ASSIGN_OR_RETURN(JsonReader partial, c.Object("partial"));
      TRAINLAB_ASSIGN_OR_RETURN(EpochRecord rec, decode.Epoch(partial));
      p.partial = std::move(rec.stats);
    }
    m.current = std::move(p);
  }
  return m;
}

std::string FrameCheckpoint(const std::string& archive) {
  std::string out(kMagic, 8);
  const uint64_t length = archive.size();
  const uint32_t crc = Crc32(archive);
  for (int i = 0; i < 8; ++i) out += static_cast<char>((length >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((crc >> (8 * i)) & 0xff);
  return out + archive;
}

absl::StatusOr<std::string> UnframeCheckpoint(const std::string& file, const std::string& path) {
  if (file.size() < kHeaderBytes || std::memcmp(file.data(), kMagic, 8) != 0) {
    return CorruptCheckpoint(path, "not a trainlab checkpoint file: no TLCKPT01 header");
  }
  uint64_t length = 0;
  uint32_t crc = 0;
  for (int i = 0; i < 8; ++i) length |= uint64_t{static_cast<uint8_t>(file[8 + i])} << (8 * i);
  for (int i = 0; i < 4; ++i) crc |= uint32_t{static_cast<uint8_t>(file[16 + i])} << (8 * i);
  if (length != file.size() - kHeaderBytes) {
    return CorruptCheckpoint(
        path, absl::StrCat("truncated or extended: the header says ", length,
                           " bytes of archive, the file has ", file.size() - kHeaderBytes));
  }
  std::string payload = file.substr(kHeaderBytes);
  if (Crc32(payload) != crc) return CorruptCheckpoint(path, "corrupted: CRC-32 mismatch");
  return payload;
}

absl::StatusOr<CheckpointFile> ReadCheckpointFile(const std::string& path) {
  TRAINLAB_ASSIGN_OR_RETURN(const std::string bytes,
                            ReadRegularFile(path, kMaxCheckpointBytes, "checkpoint"));
  TRAINLAB_ASSIGN_OR_RETURN(std::string archive, UnframeCheckpoint(bytes, path));
  return ParseCheckpointArchive(std::move(archive), path);
}

absl::StatusOr<CheckpointFile> ParseCheckpointArchive(std::string archive,
                                                      const std::string& path) {
  CheckpointFile out;
  out.archive = std::move(archive);
  std::string meta_text;
  try {
    std::istringstream in(out.archive);
    torch::serialize::InputArchive archive;
    archive.load_from(in);
    c10::IValue meta;
    if (!archive.try_read("meta", meta) || !meta.isString())
      return CorruptCheckpoint(path, "no metadata");
    meta_text = meta.toStringRef();
  } catch (const std::exception& e) {
    return CorruptCheckpoint(path, absl::StrCat("LibTorch: ", TorchErrorLine(e)));
  }
  const json meta = json::parse(meta_text, nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded() || !meta.is_object())
    return CorruptCheckpoint(path, "its metadata is not JSON");
  absl::StatusOr<CheckpointMeta> m = MetaFromJson(JsonReader(meta, "meta"));
  if (!m.ok()) return CorruptCheckpoint(path, m.status().message());
  if (m->format_version != kCheckpointFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": checkpoint format version ", m->format_version, ", this build reads version ",
        kCheckpointFormatVersion, " (finish it with the trainlab that wrote it, or start afresh)"));
  }
  out.meta = std::move(*m);
  return out;
}

absl::StatusOr<std::string> CheckpointBytes(
    const CheckpointMeta& meta,
    const std::function<void(torch::serialize::OutputArchive&)>& states) {
  std::ostringstream bytes;
  try {
    torch::serialize::OutputArchive archive;
    archive.write("meta", c10::IValue(MetaToJson(meta).dump()));
    if (states) states(archive);
    archive.save_to(bytes);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot serialise the checkpoint: ", TorchErrorLine(e)));
  }
  return FrameCheckpoint(bytes.str());
}

FingerprintMatch CompareFingerprints(const json& theirs, const json& ours,
                                     const std::set<std::string>& extendable) {
  FingerprintMatch m;
  if (!theirs.is_object()) {
    m.differences.push_back("no settings recorded");
    return m;
  }
  for (auto it = ours.begin(); it != ours.end(); ++it) {
    const std::string& k = it.key();
    if (!theirs.contains(k)) {
      m.differences.push_back(absl::StrCat(k, " (not recorded)"));
      continue;
    }
    const json& was = theirs[k];
    if (was == *it) continue;
    if (extendable.count(k) && was.is_number_integer() && it->is_number_integer() &&
        was.get<int64_t>() < it->get<int64_t>()) {
      m.extended[k] = {was.get<int64_t>(), it->get<int64_t>()};
      continue;
    }
    m.differences.push_back(absl::StrCat(k, " was ", was.dump(), ", now ", it->dump()));
  }
  // A setting the checkpoint has and these settings leave at its default (the fingerprint holds
  // the later settings only when set: a cosine checkpoint resumed without --lr_schedule).
  for (auto it = theirs.begin(); it != theirs.end(); ++it) {
    if (!ours.contains(it.key())) {
      m.differences.push_back(absl::StrCat(it.key(), " was ", it->dump(), ", now the default"));
    }
  }
  return m;
}

}  // namespace trainlab::experiments
