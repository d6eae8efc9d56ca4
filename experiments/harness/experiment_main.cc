#include "experiments/harness/experiment_main.h"

#include <glog/logging.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "experiments/harness/environment.h"
#include "experiments/harness/error_boundary.h"
#include "experiments/harness/experiment.h"
#include "experiments/harness/stop.h"
#include "experiments/reporting/experiment_report.h"
#include "experiments/reporting/markdown.h"
#include "experiments/reporting/plot.h"
#include "experiments/results/json_reader.h"
#include "experiments/results/results_file.h"

namespace trainlab::experiments {

std::string ShellQuote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                            "0123456789_@%+=:,./-") == std::string::npos) {
    return arg;
  }
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

namespace {

// The section's plots as PNG images in the experiment's TensorBoard run ("plot/c2_times"), drawn
// by gnuplot into a scratch file. Without gnuplot (or when one fails) the charts are left out:
// the text and scalars are there, and REPORT.md says how to get the plots.
void BoardPlots(const Section& section, ExperimentBoard& board) {
  if (!GnuplotAvailable()) return;
  for (const Block& b : section.blocks) {
    if (b.kind != Block::Kind::kPlot) continue;
    const std::string stem = std::filesystem::path(b.plot.file).stem().string();
    const std::string path = (std::filesystem::temp_directory_path() /
                              absl::StrCat("trainlab_", getpid(), "_", stem, ".png"))
                                 .string();
    const absl::Status drawn = DrawPng(path, b.plot);
    absl::StatusOr<std::string> png =
        drawn.ok() ? ReadRegularFile(path, /*max_bytes=*/uint64_t{64} << 20, "plot")
                   : absl::StatusOr<std::string>(drawn);
    std::error_code ec;
    std::filesystem::remove(path, ec);
    absl::Status st = png.ok() ? board.Image(absl::StrCat("plot/", stem), *png) : png.status();
    if (!st.ok()) {
      std::fprintf(stderr, "%s: warning: --tensorboard_dir: plot %s left out: %s\n",
                   board.experiment().c_str(), stem.c_str(), std::string(st.message()).c_str());
    }
  }
}

}  // namespace

absl::StatusOr<ExperimentResult> RunAndWrite(const std::string& name, Session& session) {
  TRAINLAB_ASSIGN_OR_RETURN(const Experiment* experiment, ExperimentRegistry::Global().Find(name));
  TRAINLAB_ASSIGN_OR_RETURN(const ExperimentReport* report, ReportRegistry::Global().Find(name));
  TRAINLAB_ASSIGN_OR_RETURN(ExperimentResult result, experiment->run(session));
  result.experiment = name;
  if (report->summarize) {
    const nlohmann::json figures = report->summarize(result);
    for (auto it = figures.begin(); it != figures.end(); ++it) result.summary[it.key()] = *it;
  }
  if (report->in_terminal || session.board) {
    const Section section = report->section(result);
    if (report->in_terminal) std::fputs(RenderSectionText(report->title, section).c_str(), stdout);
    if (session.board) {  // its tables and answer as TensorBoard text (Markdown; no plots)
      MarkdownWriter md(/*dir=*/"", /*draw_plots=*/false);
      md.Line(absl::StrCat("## ", report->title));
      md.Line();
      md.AddSection(section);
      session.board->Text(board_tags::kSection, md.text());
      BoardPlots(section, *session.board);
    }
  }
  if (session.writes() && !session.options.results_dir.empty()) {
    const std::string dir = session.ResultsDir();
    ResultsFile file;
    file.experiment = name;
    file.command_line = ValidUtf8(session.options.command_line);
    file.settings = session.options.settings;
    file.environment = EnvironmentJson(session);
    file.result = result;
    TRAINLAB_RETURN_IF_ERROR(WriteResultsFiles(dir, file));
    std::printf(
        "Results written to %s%s\n", ResultsJsonPath(dir, name).c_str(),
        result.variants.empty() ? "" : absl::StrCat(" and ", BatchesCsvPath(dir, name)).c_str());
  }
  std::fflush(stdout);
  return result;
}

int ExitCode(const std::string& program, const absl::Status& status, const Session* session) {
  if (status.ok()) return 0;
  const int signal = StopSignal();
  if (!absl::IsCancelled(status) || signal == 0) return ReportError(program, status);
  std::fflush(stdout);
  std::string how;
  if (session != nullptr && session->checkpointer &&
      !session->checkpointer->LastPosition().empty()) {
    std::string command;
    for (const std::string& a : session->options.command_line) {
      if (a != "--resume" && a.rfind("--resume=", 0) != 0)
        absl::StrAppend(&command, ShellQuote(EscapeInvalidUtf8(a)), " ");
    }
    how = absl::StrCat("checkpoint written ", session->checkpointer->writes() ? "" : "by rank 0 ",
                       "to ", session->checkpointer->path(), " (",
                       session->checkpointer->LastPosition(), "); resume with: ", command,
                       "--resume");
  } else if (session != nullptr && session->checkpointer) {
    how = "no checkpoint written yet (it stopped before the first one)";
  } else {
    how = "nothing saved (no --checkpoint_dir)";
  }
  std::fprintf(stderr, "%s: stopped by %s: %s\n", program.c_str(), SignalName(signal).c_str(),
               how.c_str());
  return 128 + signal;
}

int ExperimentMain(int argc, char** argv, const std::string& name) {
  const std::string program = std::filesystem::path(argv[0]).filename().string();
  InstallStopHandlers();
  absl::StatusOr<const Experiment*> experiment = ExperimentRegistry::Global().Find(name);
  if (!experiment.ok()) return ReportError(program, experiment.status());
  const Experiment& e = **experiment;
  absl::StatusOr<std::optional<ExperimentOptions>> options = ReadOptions(argc, argv, name, e.cli);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (!options.ok()) return ReportError(program, options.status());
  if (!*options) return 0;  // --help
  std::optional<Session> session;
  const absl::Status status = Guarded([&]() -> absl::Status {
    absl::StatusOr<Session> started =
        e.cli.trains ? Session::Start(**options) : Session::Bare(**options);
    TRAINLAB_RETURN_IF_ERROR(started.status());
    session.emplace(std::move(*started));
    TRAINLAB_RETURN_IF_ERROR(RunAndWrite(name, *session).status());
    return session->WriteTrace();
  });
  std::fflush(stdout);
  return ExitCode(program, status, session ? &*session : nullptr);
}

}  // namespace trainlab::experiments
