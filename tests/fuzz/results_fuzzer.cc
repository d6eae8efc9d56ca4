// Fuzz target: a results file read back (results_file.h: the JSON's schema and every field, the
// per-batch CSV beside it), then each experiment's check of its summary and its section (the
// tables REPORT.md renders). Input: the JSON, a NUL byte, the CSV. Must return a Status, never
// crash, throw or allocate without bound.
#include <cstdint>
#include <string>

#include "experiments/reporting/experiment_report.h"
#include "experiments/reporting/lab_order.h"
#include "experiments/reporting/table.h"
#include "experiments/results/results_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace trainlab::experiments;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string json = input.substr(0, nul);
  absl::StatusOr<ResultsFile> file = ParseResultsJson(json, "fuzz.json");
  if (!file.ok()) return 0;
  if (nul != std::string::npos) {
    if (!ReadBatchesCsv(input.substr(nul + 1), "fuzz.csv", file->result).ok()) return 0;
  }
  for (const std::string& name : LabOrder()) {
    absl::StatusOr<const ExperimentReport*> report = ReportRegistry::Global().Find(name);
    if (!report.ok()) continue;
    if ((*report)->check_summary &&
        !(*report)->check_summary(JsonReader(file->result.summary, "summary")).ok()) {
      continue;
    }
    const Section section = (*report)->section(file->result);
    for (const Table* t : section.Tables()) {
      (void)RenderMarkdown(*t);
      (void)RenderText(*t);
    }
  }
  return 0;
}
