// Results that outlive the terminal: DIR/<experiment>.json with the settings, the environment
// and every figure of every run, and DIR/<experiment>_batches.csv with one row per batch.
//
// Schema (version 1; tests/results_checker.cc and experiments/report.cc read it):
//   { "schema_version": 1, "experiment": "c3", "command_line": [...], "settings": {flag: value},
//     "environment": {cpu_model, cores, intra_op_threads, allocator, libtorch_version, cuda, ...},
//     "date": "2026-11-29T07:13:00Z",
//     "configs": [ { "label", "params", "skipped"?, "runs": [ { "repeat", "diverged"?, "total_s",
//        "epochs": [ {epoch, loss, top1, load_s, copy_s, train_s, epoch_s, avg_train_per_batch_s,
//                     samples, batches, loader_stages: {...}, test?: {loss, top1, samples}} ] } ] }
//                     ],
//     "summary": {...}, "notes": [...] }
// Files are written whole or not at all: a temporary file in the same folder, then a rename.
#ifndef TRAINLAB_EXPERIMENTS_RESULTS_H_
#define TRAINLAB_EXPERIMENTS_RESULTS_H_

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/run.h"
#include "experiments/session.h"

namespace trainlab::experiments {

inline constexpr int kResultsSchemaVersion = 1;

// JSON has no NaN or infinity: such a double is written as the string "nan", "inf" or "-inf",
// and read back by NumberFromJson (which gives NaN for anything else that is not a number).
nlohmann::json JsonNumber(double v);
double NumberFromJson(const nlohmann::json& j);

// Creates `dir` if needed and proves it writable (a probe file is written and removed).
absl::Status PrepareResultsDir(const std::string& dir);

// Writes `contents` to `path` through a temporary file and a rename: readers see the old file or
// the new one, never half of one.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents);

// CPU model and cores, threads, allocator, LibTorch / CUDA / cuDNN versions, GPU name, the git
// commit of the workspace when run by `bazel run` inside a git checkout, and the date.
nlohmann::json Environment(const Session& session);

// The whole JSON document for one experiment.
nlohmann::json ResultsJson(const Session& session, const ExperimentResult& result);

// One row per batch: config,repeat,epoch,batch,size,wait_s,copy_s,train_s,loss,correct.
std::string BatchesCsv(const ExperimentResult& result);

// Writes both files into the session's --results_dir (nothing when it is not set) and says so.
absl::Status WriteResults(const Session& session, const ExperimentResult& result);

// Reads DIR/<experiment>.json; nullopt when the file is not there, an error when it is there
// but unreadable or of another schema version.
absl::StatusOr<std::optional<nlohmann::json>> ReadResults(const std::string& dir,
                                                          const std::string& experiment);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_RESULTS_H_
