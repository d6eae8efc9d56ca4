#include "experiments/experiment.h"

#include <c10/util/Exception.h>
#include <glog/logging.h>

#include <cstdio>
#include <exception>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experiments/results.h"
#include "experiments/stop.h"

namespace trainlab::experiments {

absl::Status Guarded(const std::function<absl::Status()>& body) {
  try {
    return body();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("LibTorch: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  } catch (...) {
    return absl::InternalError("unknown exception");
  }
}

int ReportError(const std::string& program, const absl::Status& status) {
  std::fflush(stdout);
  std::string message(status.message());
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "%s: error: %s\n", program.c_str(), message.c_str());
  return 1;
}

absl::StatusOr<ExperimentResult> RunAndWrite(const std::string& name, Session& session) {
  TRAINLAB_ASSIGN_OR_RETURN(const Experiment* experiment, ExperimentRegistry::Global().Find(name));
  TRAINLAB_ASSIGN_OR_RETURN(ExperimentResult result, experiment->run(session));
  TRAINLAB_RETURN_IF_ERROR(WriteResults(session, result));
  return result;
}

int ExitCode(const std::string& program, const absl::Status& status, const Session* session) {
  if (status.ok()) return 0;
  const int signal = StopSignal();
  if (!absl::IsCancelled(status) || signal == 0) return ReportError(program, status);
  std::fflush(stdout);
  std::string how;
  if (session != nullptr && session->checkpointer) {
    std::string command;
    for (const std::string& a : session->config.command_line) {
      if (a != "--resume") command += a + " ";
    }
    how = absl::StrCat("checkpoint written to ", session->checkpointer->path(), " (",
                       session->checkpointer->LastPosition(), "); resume with: ", command,
                       "--resume");
  } else {
    how = "nothing saved (no --checkpoint_dir)";
  }
  std::fprintf(stderr, "%s: stopped by %s: %s\n", program.c_str(), SignalName(signal).c_str(),
               how.c_str());
  return 128 + signal;
}

int ExperimentMain(int argc, char** argv, const std::string& name) {
  const std::string program = std::filesystem::path(argv[0]).filename().string();
  absl::StatusOr<const Experiment*> experiment = ExperimentRegistry::Global().Find(name);
  if (!experiment.ok()) return ReportError(program, experiment.status());
  const Experiment& e = **experiment;
  absl::StatusOr<ExperimentConfig> config =
      ReadConfig(argc, argv, name, e.usage, e.trains, e.flags, e.defaults);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (!config.ok()) return ReportError(program, config.status());
  InstallStopHandlers();
  std::optional<Session> session;
  const absl::Status status = Guarded([&]() -> absl::Status {
    absl::StatusOr<Session> started = e.trains ? Session::Start(*config) : Session::Bare(*config);
    TRAINLAB_RETURN_IF_ERROR(started.status());
    session.emplace(std::move(*started));
    TRAINLAB_ASSIGN_OR_RETURN(ExperimentResult result, e.run(*session));
    TRAINLAB_RETURN_IF_ERROR(WriteResults(*session, result));
    return session->WriteTrace();
  });
  std::fflush(stdout);
  return ExitCode(program, status, session ? &*session : nullptr);
}

absl::StatusOr<std::optional<int>> C3BestWorkers(const Session& session) {
  if (session.config.results_dir.empty()) return std::optional<int>();
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<nlohmann::json> c3,
                            ReadResults(session.ResultsDir(), "c3"));
  if (!c3 || !(*c3)["summary"].contains("best_workers_total")) return std::optional<int>();
  return std::optional<int>((*c3)["summary"]["best_workers_total"].get<int>());
}

absl::StatusOr<WorkerChoice> ChooseWorkers(const Session& session) {
  const ExperimentConfig& c = session.config;
  if (c.IsExplicit("num_workers")) return WorkerChoice{c.run.num_workers, "from --num_workers"};
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<int> best, C3BestWorkers(session));
  if (best) {
    return WorkerChoice{*best, absl::StrCat("C3's best for total runtime, from ",
                                            session.ResultsDir(), "/c3.json")};
  }
  return WorkerChoice{c.run.num_workers,
                      absl::StrCat("--num_workers' default (no C3 results",
                                   c.results_dir.empty() ? "" : " in --results_dir", ")")};
}

absl::StatusOr<RunConfig> RunWithChosenWorkers(const Session& session, WorkerChoice* chosen) {
  TRAINLAB_ASSIGN_OR_RETURN(WorkerChoice workers, ChooseWorkers(session));
  std::printf("Loader workers: %d (%s)\n", workers.workers, workers.source.c_str());
  RunConfig run = session.DefaultRun();
  run.num_workers = workers.workers;
  if (chosen != nullptr) *chosen = workers;
  return run;
}

}  // namespace trainlab::experiments
