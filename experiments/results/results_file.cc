#include "experiments/results/results_file.h"

#include <filesystem>
#include <map>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "experiments/results/json_reader.h"
#include "experiments/results/result_json.h"

namespace trainlab::experiments {
namespace {

using json = nlohmann::json;

constexpr const char* kCsvHeader =
    "variant,repeat,epoch,batch,size,wait_s,copy_s,train_s,loss,correct,lr";
constexpr const char* kCsvHeaderNoRate =  // before schedules
    "variant,repeat,epoch,batch,size,wait_s,copy_s,train_s,loss,correct";
constexpr const char* kCsvHeaderV1 =
    "config,repeat,epoch,batch,size,wait_s,copy_s,train_s,loss,correct";

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// One CSV line into fields (quotes as CsvField writes them); false when a quote is unclosed.
bool SplitCsvLine(const std::string& line, std::vector<std::string>& out) {
  out.clear();
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::move(field));
      field.clear();
    } else {
      field += c;
    }
  }
  out.push_back(std::move(field));
  return !quoted;
}

absl::Status Bad(const std::string& path, const std::string& what) {
  return absl::DataLossError(absl::StrCat(path, ": ", what));
}

}  // namespace

std::string ResultsJsonPath(const std::string& dir, const std::string& experiment) {
  return absl::StrCat(dir, "/", experiment, ".json");
}

std::string BatchesCsvPath(const std::string& dir, const std::string& experiment) {
  return absl::StrCat(dir, "/", experiment, "_batches.csv");
}

json ResultsJson(const ResultsFile& file) {
  json doc = {{"schema_version", file.schema_version},
              {"experiment", file.experiment},
              {"command_line", file.command_line},
              {"settings", file.settings},
              {"environment", file.environment}};
  const json result = ToJson(file.result, {.batch_records = false});
  for (auto it = result.begin(); it != result.end(); ++it) doc[it.key()] = *it;
  return ValidUtf8(doc);
}

absl::StatusOr<ResultsFile> ParseResultsJson(const std::string& text, const std::string& path) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Bad(path, "not valid JSON");
  if (!doc.is_object()) return Bad(path, "not a JSON object");
  const JsonReader r(doc);
  auto named = [&path](const absl::Status& st) {
    return absl::DataLossError(absl::StrCat(path, ": ", st.message()));
  };
  ResultsFile file;
  absl::StatusOr<int64_t> version = r.Int("schema_version");
  if (!version.ok()) return named(version.status());
  if (*version != 1 && *version != kResultsSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": schema_version ", *version, ", this build reads 1 and ", kResultsSchemaVersion));
  }
  file.schema_version = static_cast<int>(*version);
  absl::StatusOr<std::string> experiment = r.String("experiment");
  if (!experiment.ok()) return named(experiment.status());
  file.experiment = *experiment;
  for (auto [key, out, array] : {std::tuple{"command_line", &file.command_line, true},
                                 std::tuple{"settings", &file.settings, false},
                                 std::tuple{"environment", &file.environment, false}}) {
    if (!r.Has(key)) continue;
    const json& v = doc[key];
    if (array ? !v.is_array() : !v.is_object()) {
      return named(absl::InvalidArgumentError(
          absl::StrCat(key, ": expected ", array ? "an array" : "an object")));
    }
    *out = v;
  }
  absl::StatusOr<ExperimentResult> result =
      ResultDecoder().Experiment(r, file.schema_version == 1 ? "configs" : "variants");
  if (!result.ok()) return named(result.status());
  file.result = std::move(*result);
  file.result.experiment = file.experiment;
  return file;
}

std::string BatchesCsv(const ExperimentResult& result) {
  std::string out = absl::StrCat(kCsvHeader, "\n");
  for (const VariantResult& v : result.variants) {
    const std::string label = CsvField(v.label);
    for (const RunResult& r : v.repeats) {
      for (const EpochStats& e : r.epochs) {
        for (const BatchRecord& b : e.batches) {
          absl::StrAppendFormat(&out, "%s,%d,%d,%d,%d,%.6f,%.6f,%.6f,%.6g,%d,%.9g\n", label,
                                r.repeat, e.epoch, b.index, b.size, b.wait_s, b.copy_s, b.train_s,
                                b.loss, b.correct, b.lr);
        }
      }
    }
  }
  return out;
}

absl::Status ReadBatchesCsv(const std::string& text, const std::string& path,
                            ExperimentResult& result) {
  // (variant, repeat, epoch) -> the epoch's records.
  std::map<std::tuple<std::string, int64_t, int64_t>, std::vector<BatchRecord>*> epochs;
  for (VariantResult& v : result.variants) {
    for (RunResult& r : v.repeats) {
      for (EpochStats& e : r.epochs) epochs[{v.label, r.repeat, e.epoch}] = &e.batches;
    }
  }
  size_t line_no = 0, pos = 0;
  std::vector<std::string> f;
  size_t fields = 11;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no == 1) {
      if (line != kCsvHeader && line != kCsvHeaderNoRate && line != kCsvHeaderV1) {
        return Bad(path, absl::StrCat("line 1: not the header '", kCsvHeader, "'"));
      }
      if (line != kCsvHeader) fields = 10;  // no lr column
      continue;
    }
    if (line.empty()) continue;
    const std::string at = absl::StrCat("line ", line_no, ": ");
    if (!SplitCsvLine(line, f) || f.size() != fields) {
      return Bad(path, absl::StrCat(at, "expected ", fields, " comma-separated fields"));
    }
    int64_t repeat = 0, epoch = 0, index = 0, size = 0, correct = 0;
    double wait = 0, copy = 0, train = 0, loss = 0, lr = 0;
    if (!absl::SimpleAtoi(f[1], &repeat) || !absl::SimpleAtoi(f[2], &epoch) ||
        !absl::SimpleAtoi(f[3], &index) || !absl::SimpleAtoi(f[4], &size) ||
        !absl::SimpleAtod(f[5], &wait) || !absl::SimpleAtod(f[6], &copy) ||
        !absl::SimpleAtod(f[7], &train) || !absl::SimpleAtod(f[8], &loss) ||
        !absl::SimpleAtoi(f[9], &correct) || (fields == 11 && !absl::SimpleAtod(f[10], &lr))) {
      return Bad(path, absl::StrCat(at, "a field is not a number"));
    }
    auto it = epochs.find({f[0], repeat, epoch});
    if (it == epochs.end()) {
      return Bad(path, absl::StrCat(at, "variant '", f[0], "', repeat ", repeat, ", epoch ", epoch,
                                    " is not in the results file"));
    }
    std::vector<BatchRecord>& batches = *it->second;
    if (index < 0 || index >= static_cast<int64_t>(batches.size())) {
      return Bad(path, absl::StrCat(at, "batch ", index, " of an epoch of ", batches.size()));
    }
    batches[static_cast<size_t>(index)] =
        BatchRecord{index, size, wait, copy, train, loss, correct, std::nullopt, lr};
  }
  return absl::OkStatus();
}

absl::Status WriteResultsFiles(const std::string& dir, const ResultsFile& file) {
  TRAINLAB_RETURN_IF_ERROR(
      WriteFileAtomically(ResultsJsonPath(dir, file.experiment), ResultsJson(file).dump(2) + "\n"));
  if (!file.result.variants.empty()) {
    TRAINLAB_RETURN_IF_ERROR(
        WriteFileAtomically(BatchesCsvPath(dir, file.experiment), BatchesCsv(file.result)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<ResultsFile>> ReadResultsFile(const std::string& dir,
                                                           const std::string& experiment) {
  const std::string path = ResultsJsonPath(dir, experiment);
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
    return std::optional<ResultsFile>();
  }
  TRAINLAB_ASSIGN_OR_RETURN(const std::string text,
                            ReadRegularFile(path, kMaxResultsJsonBytes, "results file"));
  TRAINLAB_ASSIGN_OR_RETURN(ResultsFile file, ParseResultsJson(text, path));
  if (file.experiment != experiment) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": the results of ", file.experiment, ", not of ", experiment));
  }
  const std::string csv = BatchesCsvPath(dir, experiment);
  if (std::filesystem::exists(std::filesystem::symlink_status(csv, ec))) {
    TRAINLAB_ASSIGN_OR_RETURN(const std::string rows,
                              ReadRegularFile(csv, kMaxBatchesCsvBytes, "batches file"));
    TRAINLAB_RETURN_IF_ERROR(ReadBatchesCsv(rows, csv, file.result));
  }
  return std::optional<ResultsFile>(std::move(file));
}

}  // namespace trainlab::experiments
