// The one JSON codec of the result model (result.h), used by results files and checkpoints alike.
// Doubles round-trip exactly; NaN and infinities are written as "nan", "inf", "-inf".
//
//   run      {"repeat", "total_s", "diverged"?: {"epoch", "batch", "loss"}, "epochs": [epoch]}
//   epoch    {"epoch", "loss", "top1", "load_s", "copy_s", "train_s", "epoch_s",
//             "avg_train_per_batch_s", "samples", "batches" (a count),
//             "loader_stages"?: {"read_s", "crop_s", "flip_s", "normalize_s", "assemble_s",
//                                "batches", "images"},
//             "test"?: {"loss", "top1", "samples"}, "diverged"?: {"epoch", "batch", "loss"},
//             "batch_records"?: [[index, size, wait_s, copy_s, train_s, loss, correct, lr],
//                                ...]}  (lr since schedules; older records have 7 fields)
//   variant  {"label", "params", "optimizer", "strategy", "num_workers", "model", "device",
//             "runs": [run], "skipped"?: "why"}
//   result   {"variants": [variant], "summary": {...}, "notes": [...]}
// Per-batch records go in when CodecOptions::batch_records says so: checkpoints keep them (a
// resumed epoch prints the block of the whole epoch); results files leave them to the CSV beside
// them. Reading checks every field's type and range and names the field that is wrong.
//
// Example:
//   nlohmann::json j = ToJson(run, {.batch_records = true});
//   absl::StatusOr<RunResult> back = ResultDecoder().Run(JsonReader(j));  // == run
#ifndef TRAINLAB_EXPERIMENTS_RESULTS_RESULT_JSON_H_
#define TRAINLAB_EXPERIMENTS_RESULTS_RESULT_JSON_H_

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "experiments/results/json_reader.h"
#include "experiments/results/result.h"

namespace trainlab::experiments {

struct CodecOptions {
  bool batch_records = false;  // per-batch records inside each epoch
};

nlohmann::json ToJson(const EpochStats& e, const LoaderStageTimes* stages, const EvalStats* test,
                      CodecOptions options);
nlohmann::json ToJson(const RunResult& r, CodecOptions options);
nlohmann::json ToJson(const VariantResult& v, CodecOptions options);
// {"variants", "summary", "notes"} (the experiment's name is the results file's).
nlohmann::json ToJson(const ExperimentResult& r, CodecOptions options);

// An epoch and, when present, its loader stages and test results.
struct EpochRecord {
  EpochStats stats;
  std::optional<LoaderStageTimes> stages;
  std::optional<EvalStats> test;
};

// Reads the model back. One decoder per document: without per-batch records an epoch holds its
// batch count as placeholders (the CSV beside a results file fills them in), and the decoder
// bounds their total, so a hostile file cannot make it allocate without limit.
class ResultDecoder {
 public:
  // More batch placeholders than any real results file holds (the lab's full run: ~10,000).
  static constexpr int64_t kMaxPlaceholders = int64_t{1} << 20;

  absl::StatusOr<EpochRecord> Epoch(const JsonReader& j);
  absl::StatusOr<RunResult> Run(const JsonReader& j);
  absl::StatusOr<VariantResult> Variant(const JsonReader& j);
  // `variants_key`: "variants" (schema 2), "configs" (schema 1).
  absl::StatusOr<ExperimentResult> Experiment(const JsonReader& j,
                                              const std::string& variants_key = "variants");

 private:
  int64_t placeholders_left_ = kMaxPlaceholders;
};

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_RESULTS_RESULT_JSON_H_
