#include "experiments/harness/session.h"

#include <ATen/Parallel.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/device.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/host.h"
#include "core/model.h"
#include "core/nvtx.h"
#include "core/status_macros.h"
#include "experiments/harness/session_steps.h"
#include "experiments/harness/stop.h"
#include "experiments/harness/user_path.h"
#include "experiments/results/json_reader.h"
#include "plugins/data/dataset_registry.h"

namespace trainlab::experiments {
namespace {

// The device to train on (core/device.h); data-parallel on CUDA, this rank's GPU.
absl::StatusOr<c10::Device> ChooseDevice(const ExperimentOptions& c, int local_rank = 0) {
  return trainlab::ChooseDevice(c.device, c.disable_cuda, local_rank);
}

int LocalRank(const Session& s) { return s.comm ? s.comm->env().local_rank : 0; }

// The elastic job this process runs in: torchrun's rendezvous id (TORCHELASTIC_RUN_ID), or ""
// outside one, or when it is torchrun's default "none" (every job started without --rdzv_id
// shares that name, so it cannot tell one job's checkpoint from another's).
std::string ElasticJob() {
  const char* id = std::getenv("TORCHELASTIC_RUN_ID");
  if (id == nullptr || std::string_view(id).empty() || std::string_view(id) == "none") return "";
  return id;
}

// Opens the session's checkpoint file when --checkpoint_dir is set. Data-parallel, rank 0 and
// each node's first rank keep a copy, the newest copy is resumed on every rank (checkpointer.h). A
// worker that torchrun restarted (TORCHELASTIC_RESTART_COUNT > 0) continues the checkpoint when
// there is one (--resume=auto).
absl::Status OpenCheckpointer(Session& s) {
  if (s.options.checkpoint_dir.empty()) return absl::OkStatus();
  std::string holder = absl::StrJoin(s.options.command_line, " ");
  absl::StrAppend(&holder, " (pid ", getpid(), ")");
  Checkpointer::Options o{.dir = UserPath(s.options.checkpoint_dir),
                          .experiment = s.options.experiment,
                          .fingerprint = s.Fingerprint(),
                          .resume = s.options.resume,
                          .resume_if_present = s.options.resume_auto || s.restarted(),
                          .job = ElasticJob(),
                          .holder = EscapeInvalidUtf8(holder)};
  // A schedule over the whole run (cosine, onecycle) depends on the total epochs: a longer run is
  // another schedule, not the same one extended.
  const std::string& schedule = s.options.run.lr_schedule;
  if (schedule == "cosine" || schedule == "onecycle") o.extendable.erase("epochs");
  if (s.comm) {
    // A copy on every node: rank 0 and each node's first rank keep one (checkpointer.h).
    o.ranks = Checkpointer::Options::Ranks{
        .rank = s.comm->rank(),
        .world_size = s.comm->world_size(),
        .node_copy = s.comm->env().local_rank == 0,
        .broadcast = [comm = s.comm](
                         int root,
                         const std::string& bytes) { return comm->BroadcastBytes(bytes, root); },
        .all_gather =
            [comm = s.comm](const std::string& bytes) {
              return comm->AllGatherBytes(bytes, "agreeing on the checkpoint");
            }};
  }
  TRAINLAB_ASSIGN_OR_RETURN(s.checkpointer, Checkpointer::Open(std::move(o)));
  return absl::OkStatus();
}

// Every file the run writes at the end is checked before the first batch: hours of training
// are not lost to a typo in an output path.
absl::Status CheckOutputPaths(const ExperimentOptions& c) {
  if (!c.results_dir.empty()) {
    TRAINLAB_RETURN_IF_ERROR(PrepareWritableDir(UserPath(c.results_dir), "--results_dir"));
  }
  if (!c.trace.empty()) TRAINLAB_RETURN_IF_ERROR(CheckOutputFile(UserPath(c.trace), "--trace"));
  if (!c.tensorboard_dir.empty()) {
    TRAINLAB_RETURN_IF_ERROR(PrepareWritableDir(UserPath(c.tensorboard_dir), "--tensorboard_dir"));
  }
  if (!c.run.save_model.empty()) {
    TRAINLAB_RETURN_IF_ERROR(CheckOutputFile(c.run.save_model, "--save_model"));
  }
  return absl::OkStatus();
}

absl::Status CheckBatchSize(const Session& s) {
  if (s.train && s.options.run.batch_size > s.train->size) {
    return absl::InvalidArgumentError(absl::StrCat("--batch_size=", s.options.run.batch_size,
                                                   ": larger than the training set (",
                                                   s.train->size, " images)"));
  }
  return absl::OkStatus();
}

bool WantProgress(const std::string& mode) {
  if (mode == "on") return true;
  if (mode == "off") return false;
  return isatty(STDERR_FILENO) == 1;
}

}  // namespace

namespace {

// The model can be made (a TorchScript file loads and gives 10 logits).
absl::Status CheckModel(const RunConfig& r) {
  return MakeModel(r.model, {.path = r.model_path}).status();
}

// What ranks other than 0 of a data-parallel job write: nothing (no results, trace, progress
// or saved model). Their checkpointer holds rank 0's state and writes nothing either.
void ApplyRankRules(ExperimentOptions& c) {
  c.results_dir.clear();
  c.tensorboard_dir.clear();
  c.trace.clear();
  c.progress = "off";
  c.run.save_model.clear();
}

absl::Status SilenceStdout() {
  if (std::freopen("/dev/null", "w", stdout) == nullptr) {
    return absl::InternalError("cannot silence stdout on a rank other than 0");
  }
  return absl::OkStatus();
}

// Under torchrun (or RANK/WORLD_SIZE/MASTER_* set by hand) picks this rank's device and joins the
// process group. Ranks other than 0 then write nothing: no stdout, results, trace, progress or
// saved model.
absl::Status JoinDataParallel(Session& s) {
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<distributed::DistEnv> env, distributed::ReadDistEnv());
  ExperimentOptions& c = s.options;
  TRAINLAB_ASSIGN_OR_RETURN(s.device, ChooseDevice(c, env ? env->local_rank : 0));
  if (!env) return absl::OkStatus();
  TRAINLAB_ASSIGN_OR_RETURN(const distributed::Backend backend,
                            distributed::ChooseBackend(c.dist_backend, s.device));
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<distributed::Communicator> comm,
                            distributed::Communicator::Connect(
                                *env, std::chrono::seconds(c.dist_timeout_s), backend, s.device));
  s.comm = std::move(comm);
  if (env->rank != 0) {
    ApplyRankRules(c);
    TRAINLAB_RETURN_IF_ERROR(SilenceStdout());
  }
  return absl::OkStatus();
}

// --portable_kernels pins ATen's and oneDNN's kernels; either way, reads back those in use. Runs
// before the first tensor operation of the process (kernels are chosen there, once).
absl::Status ChooseKernels(Session& s) {
  if (s.options.portable_kernels) {
    if (absl::Status st = PinKernels(kPortableKernels); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("--portable_kernels: ", st.message()));
    }
  }
  s.kernels = KernelsInUse();
  return absl::OkStatus();
}

// The process settings the options ask for: intra-op threads, glibc's allocator, the progress
// line.
void SetUpProcess(Session& s) {
  const ExperimentOptions& c = s.options;
  at::set_num_threads(c.threads > 0 ? c.threads : AllCores());
  s.allocator = "glibc defaults (--nomalloc_tuning)";
  if (c.malloc_tuning) {
    KeepFreedHeapMemory();
    s.allocator = absl::StrCat(kKeepFreedHeapMemory, " (--malloc_tuning)");
  }
  s.progress = WantProgress(c.progress);
  if (!c.trace.empty()) s.trace = std::make_unique<TraceRecorder>();
  nvtx::SetLevel(nvtx::ParseLevel(c.nvtx).value_or(nvtx::Level::kOff));  // checked with the flags
}

// --tensorboard_dir: the experiment's own run, with the Settings paragraph as its first text.
absl::Status OpenBoard(Session& s, const std::string& settings) {
  if (s.options.tensorboard_dir.empty()) return absl::OkStatus();
  TRAINLAB_ASSIGN_OR_RETURN(
      s.board, ExperimentBoard::Open(UserPath(s.options.tensorboard_dir), s.options.experiment,
                                     s.options.repeats));
  s.board->Text(board_tags::kSettings, settings);
  return absl::OkStatus();
}

// The training and test sets, shared by every run of the session.
absl::Status LoadData(Session& s) {
  TRAINLAB_ASSIGN_OR_RETURN(ChosenData chosen, ChooseData(s.options));
  s.data_note = chosen.note;
  s.train = std::make_shared<const data::ImageDataset>(std::move(chosen.train));
  s.test = std::make_shared<const data::ImageDataset>(std::move(chosen.test));
  return CheckBatchSize(s);
}

}  // namespace

absl::StatusOr<Session> Session::Start(ExperimentOptions options) {
  Session s;
  s.options = std::move(options);
  TRAINLAB_RETURN_IF_ERROR(ChooseKernels(s));     // before the first tensor operation
  TRAINLAB_RETURN_IF_ERROR(JoinDataParallel(s));  // the device; under torchrun, the group
  // Fail before an hour of training, not after it.
  TRAINLAB_RETURN_IF_ERROR(CheckOutputPaths(s.options));
  TRAINLAB_RETURN_IF_ERROR(CheckModel(s.options.run));
  SetUpProcess(s);
  TRAINLAB_RETURN_IF_ERROR(LoadData(s));
  if (s.comm)
    TRAINLAB_RETURN_IF_ERROR(internal::AgreeOnSettings(s));  // every rank the same, or stop
  TRAINLAB_RETURN_IF_ERROR(OpenCheckpointer(s));
  const std::string settings = internal::SettingsParagraph(s);
  std::fputs(settings.c_str(), stdout);
  std::fflush(stdout);
  TRAINLAB_RETURN_IF_ERROR(OpenBoard(s, settings));
  return s;
}

absl::StatusOr<Session> Session::Bare(ExperimentOptions options) {
  Session s;
  s.options = std::move(options);
  // Nothing is exchanged, but under torchrun rank 0 alone prints and writes.
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<distributed::DistEnv> env, distributed::ReadDistEnv());
  if (env && env->rank != 0) {
    ApplyRankRules(s.options);
    TRAINLAB_RETURN_IF_ERROR(SilenceStdout());
  }
  TRAINLAB_RETURN_IF_ERROR(CheckOutputPaths(s.options));
  s.allocator = "not set (nothing trains)";
  s.kernels = KernelsInUse();
  return s;
}

absl::StatusOr<Session> Session::With(ExperimentOptions other) const {
  Session s;
  s.options = std::move(other);
  if (!writes()) ApplyRankRules(s.options);
  TRAINLAB_RETURN_IF_ERROR(CheckOutputPaths(s.options));
  TRAINLAB_ASSIGN_OR_RETURN(s.device, ChooseDevice(s.options, LocalRank(*this)));
  s.train = train;
  s.test = test;
  s.comm = comm;
  s.data_note = data_note;
  s.allocator = allocator;
  s.kernels = kernels;
  s.progress = progress;
  if (!s.options.trace.empty()) s.trace = std::make_unique<TraceRecorder>();
  TRAINLAB_RETURN_IF_ERROR(CheckBatchSize(s));
  TRAINLAB_RETURN_IF_ERROR(OpenCheckpointer(s));
  TRAINLAB_RETURN_IF_ERROR(OpenBoard(s, internal::SettingsParagraph(s)));
  return s;
}

RunConfig Session::DefaultRun() const {
  RunConfig r = options.run;
  r.device = device;
  return r;
}

std::string Session::ResultsDir() const { return UserPath(options.results_dir); }

bool Session::writes() const { return !comm || comm->rank() == 0; }

bool Session::restarted() const { return comm && comm->env().restart_count > 0; }

absl::StatusOr<int64_t> Session::FromRank0(int64_t value) const {
  if (!comm) return value;
  TRAINLAB_ASSIGN_OR_RETURN(const std::string got, comm->BroadcastBytes(absl::StrCat(value)));
  int64_t out = 0;
  if (!absl::SimpleAtoi(got, &out)) return absl::InternalError("a garbled decision from rank 0");
  return out;
}

absl::StatusOr<int> Session::AgreedStopSignal() const {
  const int mine = StopSignal();
  if (!comm) return mine;
  TRAINLAB_ASSIGN_OR_RETURN(const std::vector<double> max,
                            comm->MaxOverRanks({static_cast<double>(mine)}));
  const int agreed = static_cast<int>(max[0]);
  if (agreed != 0) RequestStop(agreed);
  return agreed;
}

absl::Status Session::WriteTrace() const {
  if (!trace) return absl::OkStatus();
  const std::string path = UserPath(options.trace);
  TRAINLAB_RETURN_IF_ERROR(trace->WriteJson(path));
  std::printf("Trace written to %s (open in ui.perfetto.dev or chrome://tracing)\n", path.c_str());
  return absl::OkStatus();
}

}  // namespace trainlab::experiments
