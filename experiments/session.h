// A Session is what an experiment runs in: the data, the device, the process settings (threads,
// glibc's allocator), the trace recorder and the results folder, set up once from the config.
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(Session session, Session::Start(config));
//   RunConfig run = session.DefaultRun();
#ifndef TRAINLAB_EXPERIMENTS_SESSION_H_
#define TRAINLAB_EXPERIMENTS_SESSION_H_

#include <c10/core/Device.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/kernels.h"
#include "core/trace.h"
#include "experiments/checkpoint.h"
#include "experiments/config.h"
#include "plugins/data/dataset.h"
#include "plugins/distributed/communicator.h"

namespace trainlab::experiments {

// The training and test sets chosen by --dataset / --data_dir, and why.
struct ChosenData {
  data::ImageDataset train, test;
  std::string note;  // "auto chose CIFAR-10 from DIR", ... (empty when --dataset named it)
};
absl::StatusOr<ChosenData> ChooseData(const ExperimentConfig& config);

// The devices this process can train on: CPU, and CUDA when available and not disabled.
std::vector<c10::Device> AvailableDevices(bool disable_cuda);

struct Session {
  ExperimentConfig config;
  std::shared_ptr<const data::ImageDataset> train, test;
  c10::Device device = c10::kCPU;
  std::string data_note;
  std::string allocator;                       // glibc's setting, as printed
  KernelSet kernels;                           // the CPU kernels in use, read back
  std::unique_ptr<TraceRecorder> trace;        // when --trace is set
  bool progress = false;                       // draw the progress line on stderr
  std::unique_ptr<Checkpointer> checkpointer;  // when --checkpoint_dir is set
  // Data-parallel (WORLD_SIZE > 1, from torchrun or set by hand): the process group. Rank 0
  // alone prints, writes results and saves; the others train silently.
  std::shared_ptr<distributed::Communicator> comm;

  // Checks that --results_dir can be written (before any training), resolves the device,
  // applies threads and allocator settings, loads the data and prints the "Settings:" paragraph.
  static absl::StatusOr<Session> Start(ExperimentConfig config);
  // A session without data, on the CPU, for what only counts (q1_q4): prints nothing.
  static absl::StatusOr<Session> Bare(ExperimentConfig config);
  // A session for another experiment over the same data and process settings (the `all` driver):
  // no data is read again and nothing is printed.
  absl::StatusOr<Session> With(ExperimentConfig other) const;

  // The run the flags describe, on this session's device.
  RunConfig DefaultRun() const;
  // The settings a checkpoint must have been made with to be resumed by this session.
  nlohmann::json Fingerprint() const;
  // The results folder resolved against the user's directory ("" when not set).
  std::string ResultsDir() const;
  // Writes the trace file when --trace was given (call once, at the end).
  absl::Status WriteTrace() const;
};

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_SESSION_H_
