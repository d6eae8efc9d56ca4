// C5: the same training on every device this process can use (CPU, and CUDA when available),
// the average epoch time on each, and the ratio (c5_report.cc). Without CUDA it runs the CPU,
// says plainly that no GPU was found, and exits 0. The worker count is C3's best when
// --results_dir holds C3's results, else --num_workers; it says which.
//
// The GPU path: the loader fills pinned batches, copies go with non_blocking, loader threads
// never call CUDA, and the device is synchronised before every clock read that ends a
// training span.
//
//   bazel run //experiments:c5 -- --max_batches_per_epoch=5 --epochs=1
#include <cstdio>

#include "core/device.h"
#include "core/status_macros.h"
#include "experiments/harness/experiment.h"
#include "experiments/training/run.h"
#include "experiments/training/workers.h"

namespace trainlab::experiments {
namespace {

absl::StatusOr<ExperimentResult> RunC5(Session& session) {
  WorkerChoice workers;
  TRAINLAB_ASSIGN_OR_RETURN(const RunConfig base, RunWithChosenWorkers(session, &workers));
  const std::vector<c10::Device> devices = AvailableDevices(session.options.disable_cuda);
  ExperimentResult result;
  if (devices.size() == 1) {
    std::printf("No GPU found: CUDA is not available to this process%s; running the CPU only.\n",
                session.options.disable_cuda ? " (--disable_cuda)" : "");
    result.notes.push_back("No GPU here: only the CPU ran.");
  }
  for (const c10::Device& d : devices) {
    Variant v{.label = d.str(), .config = base, .params = {{"device", d.str()}}};
    v.config.device = d;
    TRAINLAB_ASSIGN_OR_RETURN(VariantResult r, RunVariant(session, v));
    result.variants.push_back(std::move(r));
  }
  result.summary = {{"num_workers", workers.workers}, {"num_workers_source", workers.source}};
  return result;
}

const bool kRegistered = RegisterExperiment(
    "c5",
    {.usage = "c5: the same training on the CPU and, when there is one, the GPU (C5); "
              "mean epoch\n"
              "time per device and the ratio."},
    RunC5);

}  // namespace
}  // namespace trainlab::experiments
