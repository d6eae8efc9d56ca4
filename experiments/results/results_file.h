// Results that outlive the terminal: DIR/<experiment>.json, the settings, the environment and
// every figure of every run (result_json.h's codec), and DIR/<experiment>_batches.csv, one row
// per batch.
//
// Schema version 2:
//   { "schema_version": 2, "experiment": "c3", "command_line": [...], "settings": {flag: value},
//     "environment": {"cpu_model", "cores", "intra_op_threads", "allocator", "kernels",
//                     "libtorch_version", "device", "git_commit", "date", ...},
//     "variants": [variant], "summary": {...}, "notes": [...] }
// Version 1 (trainlab before 2026-12) named "variants" "configs"; it is read the same way.
// CSV: variant,repeat,epoch,batch,size,wait_s,copy_s,train_s,loss,correct,lr (lr: the rate the
// batch trained at; files before schedules lack it, and version 1's first column is "config").
//
// Files are written whole or not at all (core/files.h), with every string made valid UTF-8 (a
// byte that is not is kept as "\xFF"). Reading checks the schema version and every field, and
// an error names the file and the field.
//
// Example:
//   TRAINLAB_RETURN_IF_ERROR(WriteResultsFiles("/tmp/r", file));
//   absl::StatusOr<std::optional<ResultsFile>> c3 = ReadResultsFile("/tmp/r", "c3");
#ifndef TRAINLAB_EXPERIMENTS_RESULTS_RESULTS_FILE_H_
#define TRAINLAB_EXPERIMENTS_RESULTS_RESULTS_FILE_H_

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "experiments/results/result.h"

namespace trainlab::experiments {

inline constexpr int kResultsSchemaVersion = 2;
// Larger results files are refused (the lab's full run writes well under 1 MiB of JSON).
inline constexpr uint64_t kMaxResultsJsonBytes = uint64_t{256} << 20;
inline constexpr uint64_t kMaxBatchesCsvBytes = uint64_t{1} << 30;

struct ResultsFile {
  int schema_version = kResultsSchemaVersion;
  std::string experiment;
  nlohmann::json command_line = nlohmann::json::array();
  nlohmann::json settings = nlohmann::json::object();
  nlohmann::json environment = nlohmann::json::object();
  ExperimentResult result;
};

// The JSON document (valid UTF-8 throughout).
nlohmann::json ResultsJson(const ResultsFile& file);
// Parses a results document; `path` names it in errors.
absl::StatusOr<ResultsFile> ParseResultsJson(const std::string& text, const std::string& path);

// One row per batch of every run.
std::string BatchesCsv(const ExperimentResult& result);
// Fills the per-batch records of `result`'s epochs from a CSV BatchesCsv wrote; `path` names it
// in errors ("PATH:12: ...").
absl::Status ReadBatchesCsv(const std::string& text, const std::string& path,
                            ExperimentResult& result);

// DIR/<experiment>.json, and DIR/<experiment>_batches.csv when any variant ran.
absl::Status WriteResultsFiles(const std::string& dir, const ResultsFile& file);
// The paths WriteResultsFiles writes.
std::string ResultsJsonPath(const std::string& dir, const std::string& experiment);
std::string BatchesCsvPath(const std::string& dir, const std::string& experiment);

// DIR/<experiment>.json with its CSV (when there); nullopt when the JSON is not there.
absl::StatusOr<std::optional<ResultsFile>> ReadResultsFile(const std::string& dir,
                                                           const std::string& experiment);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_RESULTS_RESULTS_FILE_H_
