// C5: the same training on every device this process can use (CPU, and CUDA when available),
// the average epoch time on each, and the ratio. Without CUDA it runs the CPU, says plainly
// that no GPU was found, and exits 0.
//
// The GPU path: the loader fills pinned batches, copies go with non_blocking, loader threads
// never call CUDA, and the device is synchronised before every clock read that ends a
// training span.
//
//   bazel run //experiments:c5 -- --max_batches_per_epoch=5 --epochs=1
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "experiments/common.h"

int main(int argc, char** argv) {
  using namespace trainlab::experiments;
  using trainlab::EpochStats;
  return RunMain(argc, argv, "C5: GPU against CPU.", [] {
    TRAINLAB_ASSIGN_OR_RETURN(Setup setup, Setup::FromFlags());
    const std::vector<c10::Device> devices = AvailableDevices();
    if (devices.size() == 1) {
      std::printf("No GPU found: CUDA is not available to this process%s; running the CPU only.\n",
                  FLAGS_disable_cuda ? " (--disable_cuda)" : "");
    }
    std::vector<RunResult> runs;
    for (const c10::Device& d : devices) {
      RunConfig c = setup.DefaultRun();
      c.device = d;
      c.label = d.str();
      std::printf("\n##### Device: %s #####\n", d.str().c_str());
      TRAINLAB_ASSIGN_OR_RETURN(RunResult r, RunTraining(setup, c));
      runs.push_back(std::move(r));
    }
    std::printf("\n===== C5: average epoch time per device =====\n");
    for (const RunResult& r : runs) {
      std::printf("%-8s %s per epoch (training %s, data loading %s)\n", r.label.c_str(),
                  FormatSeconds(r.mean(&EpochStats::epoch_s)).c_str(),
                  FormatSeconds(r.mean(&EpochStats::train_s)).c_str(),
                  FormatSeconds(r.mean(&EpochStats::load_s)).c_str());
    }
    if (runs.size() > 1) {
      std::printf("CPU / GPU epoch time ratio: %.2fx\n",
                  runs[0].mean(&EpochStats::epoch_s) / runs[1].mean(&EpochStats::epoch_s));
    }
    return setup.Finish();
  });
}
