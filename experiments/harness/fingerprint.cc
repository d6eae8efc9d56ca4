// A checkpoint's fingerprint, derived from the settings recorded, and the agreement of every
// rank's settings before a data-parallel run starts.
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/hash.h"
#include "core/status_macros.h"
#include "experiments/harness/session.h"
#include "experiments/harness/session_steps.h"

namespace trainlab::experiments {
namespace {

// The images and labels, hashed: the dataset's identity in a checkpoint's fingerprint.
std::string DatasetDigest(const data::ImageDataset& d) {
  Fnv1a h;
  h.Add(d.pixels.data(), d.pixels.size());
  h.Add(d.labels.data(), d.labels.size());
  return h.Hex();
}

}  // namespace

namespace internal {

// Settings that cannot change a run's result, left out of a checkpoint's fingerprint; every other
// setting recorded (ExperimentOptions::settings: the shared flags and the experiment's own) is in
// it without being named here, so a new flag refuses a mismatched resume by itself.
const std::set<std::string>& NotInFingerprint() {
  static const auto* names = new std::set<std::string>{
      // Where output goes and how progress shows.
      "results_dir", "tensorboard_dir", "trace", "nvtx", "progress", "save_model", "keep_best",
      // Checkpointing itself, and the data-parallel plumbing (compared across ranks instead).
      "checkpoint_dir", "checkpoint_every", "resume", "dist_timeout", "dist_backend",
      // Speed only: the loader gives the same batches for any worker count (plugins/data).
      "threads", "malloc_tuning", "num_workers",
      // Resolved below: the data by its digest (the same files may sit in another folder on
      // another node), the device by the one chosen.
      "dataset", "data_dir", "synthetic_train", "synthetic_test", "device", "disable_cuda",
      // The `all` driver's name for itself.
      "driver"};
  return *names;
}

// The flag a fingerprint key comes from, for the agreement's error line.
std::string FlagOf(const std::string& key) {
  if (key == "dataset") return "the data (--dataset, --data_dir, --synthetic_train/_test)";
  if (key == "test_digest") return "the test data (--dataset, --data_dir, --synthetic_test)";
  if (key == "checkpointing") return "--checkpoint_dir (given or not)";
  if (key == "experiment") return "the experiment (binary)";
  return "--" + key;
}

std::string ValueText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "nothing";
  return v.dump();
}

// Every rank's settings against rank 0's: the fingerprint a checkpoint keeps, the dataset's
// content and what decides how many collectives follow. Any difference is one error, the same on
// every rank, naming each setting and the ranks that differ, before any training.
absl::Status AgreeOnSettings(const Session& s) {
  nlohmann::json mine = s.Fingerprint();
  mine["experiment"] = s.options.experiment;
  mine["checkpointing"] = !s.options.checkpoint_dir.empty();
  mine["checkpoint_every"] = s.options.checkpoint_every;
  mine["resume"] = s.options.resume ? "yes" : s.options.resume_auto ? "auto" : "no";
  mine["dist_timeout"] = s.options.dist_timeout_s;
  mine["dist_backend"] = s.options.dist_backend;
  mine["synthetic_test"] = s.options.synthetic_test;
  if (s.test) mine["test_digest"] = DatasetDigest(*s.test);
  TRAINLAB_ASSIGN_OR_RETURN(const std::vector<std::string> all,
                            s.comm->AllGatherBytes(mine.dump()));
  std::vector<nlohmann::json> ranks;
  for (const std::string& text : all) {
    ranks.push_back(nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false));
    if (ranks.back().is_discarded()) {
      return absl::InternalError("comparing settings: a rank sent unreadable settings");
    }
  }
  std::vector<std::string> differences;
  for (auto it = ranks[0].begin(); it != ranks[0].end(); ++it) {
    std::string line;
    for (size_t r = 1; r < ranks.size(); ++r) {
      const nlohmann::json theirs = ranks[r].contains(it.key()) ? ranks[r][it.key()] : nullptr;
      if (theirs == *it) continue;
      const bool nested = it->is_object();  // the dataset: name, sizes, digest
      if (line.empty()) {
        line = absl::StrCat(FlagOf(it.key()), ": rank 0 has ",
                            nested ? (*it).value("name", std::string("?")) + " " +
                                         (*it).value("digest", std::string())
                                   : ValueText(*it));
      }
      absl::StrAppend(&line, ", rank ", r, " has ",
                      nested && theirs.is_object() ? theirs.value("name", std::string("?")) + " " +
                                                         theirs.value("digest", std::string())
                                                   : ValueText(theirs));
    }
    if (!line.empty()) differences.push_back(std::move(line));
  }
  if (differences.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the ranks were started with different settings (", absl::StrJoin(differences, "; "),
      "); start every rank with the same flags and data"));
}

}  // namespace internal

nlohmann::json Session::Fingerprint() const {
  nlohmann::json f = nlohmann::json::object();
  for (auto it = options.settings.begin(); it != options.settings.end(); ++it) {
    if (!internal::NotInFingerprint().count(it.key())) f[it.key()] = *it;
  }
  f["fingerprint_version"] = kFingerprintVersion;
  // What the excluded settings resolve to, where it decides the run: the device chosen (its kind
  // for data-parallel ranks, which train on cuda:LOCAL_RANK), the ranks that shard the data, the
  // data itself.
  f["device"] = comm ? c10::DeviceTypeName(device.type(), /*lower_case=*/true) : device.str();
  if (comm) f["world_size"] = comm->world_size();
  if (train) {
    f["dataset"] = {{"name", train->name},
                    {"train_images", train->size},
                    {"test_images", test ? test->size : 0},
                    {"digest", DatasetDigest(*train)}};
  }
  return f;
}

}  // namespace trainlab::experiments
