#include "experiments/reporting/report.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "experiments/reporting/experiment_report.h"
#include "experiments/reporting/lab_order.h"
#include "experiments/reporting/markdown.h"
#include "experiments/reporting/plot.h"
#include "experiments/results/json_reader.h"

namespace trainlab::experiments {
namespace {

using json = nlohmann::json;

// The environment's figures, and the settings of the first experiment, as a two-column table.
void EnvironmentSection(MarkdownWriter& w, const ResultsFile& first) {
  const json& env = first.environment;
  w.Line("## Environment");
  w.Line();
  Table t{.header = {"", ""}};
  auto row = [&](const char* what, const char* key) {
    if (!env.contains(key) || env[key].is_null()) return;
    const json& v = env[key];
    t.rows.push_back({what, v.is_string() ? v.get<std::string>() : v.dump()});
  };
  row("CPU", "cpu_model");
  row("cores", "cores");
  row("intra-op threads", "intra_op_threads");
  row("allocator", "allocator");
  if (env.contains("kernels") && env["kernels"].is_object()) {  // schema 2
    const json& k = env["kernels"];
    auto str = [&k](const char* key) {
      return k.contains(key) && k[key].is_string() ? k[key].get<std::string>() : "?";
    };
    const bool portable = k.contains("portable") && k["portable"].is_boolean() && k["portable"];
    t.rows.push_back({"CPU kernels", absl::StrCat("ATen ", str("aten"), ", oneDNN ", str("onednn"),
                                                  portable ? " (--portable_kernels)" : "",
                                                  "; BLAS ", str("blas"))});
  }
  row("LibTorch", "libtorch_version");
  row("device", "device");
  row("GPUs", "gpus");
  row("CUDA / cuDNN", "cuda_config");
  row("dataset", "dataset");
  row("git commit", "git_commit");
  row("date", "date");
  std::vector<std::string> parts;
  for (const char* k : {"batch_size", "epochs", "max_batches_per_epoch", "lr", "weight_decay",
                        "momentum", "seed", "repeats"}) {
    if (first.settings.contains(k)) parts.push_back(absl::StrCat(k, "=", first.settings[k].dump()));
  }
  if (!parts.empty()) {
    t.rows.push_back(
        {absl::StrCat("settings (", first.experiment, ")"), absl::StrJoin(parts, ", ")});
  }
  w.AddTable(t);
  w.Line(
      "Timings are wall-clock seconds on this machine; compare them only within one run of the "
      "report. On a CPU the loader and the model share the cores, and a CPU step is ~100x an "
      "L4's.");
  w.Line();
}

}  // namespace

absl::StatusOr<std::map<std::string, ResultsFile>> ReadResultSets(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat(dir, ": no such directory"));
  }
  std::map<std::string, ResultsFile> out;
  for (const std::string& name : LabOrder()) {
    TRAINLAB_ASSIGN_OR_RETURN(std::optional<ResultsFile> file, ReadResultsFile(dir, name));
    if (!file) continue;
    absl::StatusOr<const ExperimentReport*> report = ReportRegistry::Global().Find(name);
    if (report.ok() && (*report)->check_summary) {
      const JsonReader summary(file->result.summary, "summary");
      if (absl::Status st = (*report)->check_summary(summary); !st.ok()) {
        return absl::DataLossError(absl::StrCat(ResultsJsonPath(dir, name), ": ", st.message()));
      }
    }
    out[name] = std::move(*file);
  }
  if (out.empty()) {
    return absl::NotFoundError(absl::StrCat(
        dir, ": no results file (c2.json ... q1_q4.json); run an experiment with --results_dir=",
        dir, " or `bazel run //experiments:all`"));
  }
  return out;
}

absl::StatusOr<ReportFiles> RenderReport(const std::string& dir) {
  TRAINLAB_ASSIGN_OR_RETURN(auto results, ReadResultSets(dir));
  MarkdownWriter w(dir, GnuplotAvailable());
  w.Line("# trainlab: ResNet-18 on CIFAR-10, where the time goes");
  w.Line();
  w.Line(absl::StrCat("Rendered by `bazel run //experiments:report -- ", dir,
                      "` from the results files in this folder (one JSON per experiment, "
                      "per-batch CSVs beside them)."));
  w.Line();
  for (const std::string& name : LabOrder()) {
    if (results.count(name)) {
      EnvironmentSection(w, results[name]);
      break;
    }
  }
  for (const std::string& name : LabOrder()) {
    absl::StatusOr<const ExperimentReport*> report = ReportRegistry::Global().Find(name);
    if (!report.ok()) continue;  // not linked into this binary
    w.Line(absl::StrCat("## ", (*report)->title));
    w.Line();
    w.Line(absl::StrCat("*", (*report)->question, "*"));
    w.Line();
    auto it = results.find(name);
    if (it == results.end()) {
      w.Line(absl::StrCat("*Not run: no `", name, ".json` in this folder.*"));
      w.Line();
      continue;
    }
    w.AddSection((*report)->section(it->second.result));
  }
  w.Line("## Q5: compile strategies in C++");
  w.Line();
  w.Line(
      "What each strategy does, why torch.compile's modes map to these levers in C++, and what "
      "they give on a GPU: see `docs/compile_strategies.md` in the repository.");
  w.Line();
  if (!w.plot_problem().empty()) {
    w.Line(absl::StrCat("*Plots: ", w.plot_problem(), "*"));
    w.Line();
  }
  ReportFiles files;
  files.report = dir + "/REPORT.md";
  files.plots = w.plots();
  files.plot_problem = w.plot_problem();
  TRAINLAB_RETURN_IF_ERROR(WriteFileAtomically(files.report, w.text()));
  return files;
}

}  // namespace trainlab::experiments
