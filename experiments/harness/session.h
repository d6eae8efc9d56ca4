// A Session is what an experiment runs in: the data, the device, the process settings (CPU
// kernels, threads, glibc's allocator), the trace recorder, the checkpoint and, data-parallel,
// the process group, set up once from the options before any training.
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(Session session, Session::Start(options));
//   RunConfig run = session.DefaultRun();
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_SESSION_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_SESSION_H_

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/kernels.h"
#include "core/trace.h"
#include "experiments/checkpoint/checkpointer.h"
#include "experiments/harness/options.h"
#include "experiments/harness/run_config.h"
#include "experiments/tensorboard/board.h"
#include "plugins/data/dataset.h"
#include "plugins/distributed/communicator.h"

namespace trainlab::experiments {

// The training and test sets chosen by --dataset / --data_dir, and why.
struct ChosenData {
  data::ImageDataset train, test;
  std::string note;  // "auto chose CIFAR-10 from DIR", ... (empty when --dataset named it)
};
absl::StatusOr<ChosenData> ChooseData(const ExperimentOptions& options);

// The form of Session::Fingerprint. 2: every recorded setting, derived (1, before 2026-12-07:
// a list kept by hand). A checkpoint of another form is refused with a line that says so.
inline constexpr int kFingerprintVersion = 2;

struct Session {
  ExperimentOptions options;
  std::shared_ptr<const data::ImageDataset> train, test;
  c10::Device device = c10::kCPU;
  std::string data_note;
  std::string allocator;                       // glibc's setting, as printed
  KernelSet kernels;                           // the CPU kernels in use, read back
  std::unique_ptr<TraceRecorder> trace;        // when --trace is set
  bool progress = false;                       // draw the progress line on stderr
  std::unique_ptr<Checkpointer> checkpointer;  // when --checkpoint_dir is set
  std::unique_ptr<ExperimentBoard> board;      // when --tensorboard_dir is set (rank 0 alone)
  // Data-parallel (WORLD_SIZE > 1, from torchrun or set by hand): the process group. Rank 0
  // alone prints, writes results and saves; the others train silently.
  std::shared_ptr<distributed::Communicator> comm;

  // Pins the CPU kernels (--portable_kernels) before any tensor operation, checks every output
  // path (results folder, trace, saved weights) and the model before any training, resolves the
  // device, applies threads and allocator settings, loads the data, opens the checkpoint and
  // prints the "Settings:" paragraph (and writes it to TensorBoard, --tensorboard_dir).
  static absl::StatusOr<Session> Start(ExperimentOptions options);
  // A session without data, on the CPU, for what only counts (q1_q4): prints nothing.
  static absl::StatusOr<Session> Bare(ExperimentOptions options);
  // A session for another experiment over the same data and process settings (the `all` driver):
  // no data is read again and nothing is printed.
  absl::StatusOr<Session> With(ExperimentOptions other) const;

  // The run the flags describe, on this session's device.
  RunConfig DefaultRun() const;
  // The settings a checkpoint must have been made with to be resumed by this session: every
  // recorded setting but those that cannot change the result (session.cc: NotInFingerprint),
  // with the device, the world size and the data's digest.
  nlohmann::json Fingerprint() const;
  // The results folder resolved against the user's directory ("" when not set).
  std::string ResultsDir() const;
  // Writes the trace file when --trace was given (call once, at the end).
  absl::Status WriteTrace() const;
  // This process writes results, traces and checkpoints (rank 0, or no data-parallel run).
  bool writes() const;
  // A worker torchrun restarted after a failure (TORCHELASTIC_RESTART_COUNT > 0).
  bool restarted() const;
  // Decisions that decide how many collectives follow, taken once: rank 0's `value` on every
  // rank (without data-parallel, `value`).
  absl::StatusOr<int64_t> FromRank0(int64_t value) const;
  // The stop asked for on any rank (SIGINT/SIGTERM), or 0, the same on every rank.
  absl::StatusOr<int> AgreedStopSignal() const;
};

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_SESSION_H_
