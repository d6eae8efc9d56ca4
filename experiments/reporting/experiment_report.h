// What an experiment says in the write-up, registered by name like the plugins: its title, its
// question, and the function from its result to its section. The report binary links every
// experiment's report part and nothing that trains; an experiment binary links its own.
//
// Example (c7_report.cc):
//   const bool kRegistered = ReportRegistry::Global().Register("c7", {
//       .title = "C7: without batch norm",
//       .question = "What does batch norm do to training time, loss and accuracy?",
//       .section = C7Section});
#ifndef TRAINLAB_EXPERIMENTS_REPORTING_EXPERIMENT_REPORT_H_
#define TRAINLAB_EXPERIMENTS_REPORTING_EXPERIMENT_REPORT_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/registry.h"
#include "experiments/reporting/section.h"
#include "experiments/results/json_reader.h"
#include "experiments/results/result.h"

namespace trainlab::experiments {

struct ExperimentReport {
  static constexpr std::string_view kKind = "experiment report";
  std::string title;     // "C3: loader workers"
  std::string question;  // the lab's question, one sentence
  std::function<Section(const ExperimentResult&)> section;
  // The figures the results file keeps in "summary" for other experiments and tools to read
  // (C3's best worker counts), computed from the result by the same functions as the section.
  std::function<nlohmann::json(const ExperimentResult&)> summarize;
  // Checks the summary of a results file read back: the fields the section uses, their types
  // and ranges; errors name the field (JsonReader's paths start at "summary").
  std::function<absl::Status(const JsonReader& summary)> check_summary;
  bool in_terminal = true;  // q1_q4 prints its answers as it counts, so its section is REPORT.md's
};
using ReportRegistry = Registry<ExperimentReport>;

// A summary's field, or `fallback` when it is missing or of another type (a summary read back
// has passed check_summary; this keeps a section from throwing on one that has not).
inline int64_t SummaryInt(const nlohmann::json& summary, const char* key, int64_t fallback) {
  if (!summary.is_object() || !summary.contains(key) || !summary[key].is_number_integer())
    return fallback;
  return summary[key].get<int64_t>();
}
inline std::string SummaryString(const nlohmann::json& summary, const char* key) {
  if (!summary.is_object() || !summary.contains(key) || !summary[key].is_string()) return "";
  return summary[key].get<std::string>();
}
inline nlohmann::json SummaryObject(const nlohmann::json& summary, const char* key) {
  if (!summary.is_object() || !summary.contains(key) || !summary[key].is_object())
    return nlohmann::json::object();
  return summary[key];
}

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_REPORTING_EXPERIMENT_REPORT_H_
