// C4: one loader worker against the best count, side by side per epoch (data loading,
// training, epoch time), and a measured breakdown of the loader's stages (read, crop, flip,
// normalise, batch assembly) next to the time the trainer waited, so that "why is one worker
// slower" has a measured answer. --trace=FILE.json writes a Chrome trace of both runs.
//
//   bazel run //experiments:c4 -- --max_batches_per_epoch=10 --epochs=2 --best_workers=2 --trace=c4.json
#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "experiments/common.h"

DEFINE_int32(best_workers, -1, "The best worker count (from c3); -1: find it with a one-epoch sweep of 0, 2, 4, 8.");

namespace trainlab::experiments {
namespace {

absl::StatusOr<int> FindBestWorkers(const Setup& setup) {
  std::printf("Finding the best worker count (one epoch each of 0, 2, 4, 8 workers)...\n");
  int best = 0;
  double best_load = 0;
  for (int n : {0, 2, 4, 8}) {
    RunConfig c = setup.DefaultRun();
    c.num_workers = n;
    c.epochs = 1;
    c.print_blocks = false;
    c.evaluate = false;
    c.trace = nullptr;
    TRAINLAB_ASSIGN_OR_RETURN(RunResult r, RunTraining(setup, c));
    const double load = r.total(&EpochStats::load_s);
    std::printf("  %d workers: data loading %s\n", n, FormatSeconds(load).c_str());
    if (n == 0 || load < best_load) {
      best = n;
      best_load = load;
    }
  }
  return best;
}

void PrintStages(const RunResult& r) {
  data::LoaderStageTimes t;
  for (const auto& e : r.loader_stages) {
    t.read_s += e.read_s;
    t.crop_s += e.crop_s;
    t.flip_s += e.flip_s;
    t.normalize_s += e.normalize_s;
    t.assemble_s += e.assemble_s;
    t.images += e.images;
  }
  const double wait = r.total(&EpochStats::load_s);
  std::printf("%-12s read %s | crop %s | flip %s | normalise %s | assemble %s | loader work %s "
              "(%.0f images/s per thread) | trainer waited %s\n",
              r.label.c_str(), FormatSeconds(t.read_s).c_str(), FormatSeconds(t.crop_s).c_str(),
              FormatSeconds(t.flip_s).c_str(), FormatSeconds(t.normalize_s).c_str(),
              FormatSeconds(t.assemble_s).c_str(), FormatSeconds(t.total_s()).c_str(),
              t.total_s() > 0 ? t.images / t.total_s() : 0.0, FormatSeconds(wait).c_str());
}

absl::Status Run() {
  TRAINLAB_ASSIGN_OR_RETURN(Setup setup, Setup::FromFlags());
  int best = FLAGS_best_workers;
  if (best < 0) {
    TRAINLAB_ASSIGN_OR_RETURN(best, FindBestWorkers(setup));
  }
  std::vector<RunResult> runs;
  for (int n : {1, best}) {
    RunConfig c = setup.DefaultRun();
    c.num_workers = n;
    c.label = absl::StrCat(n, n == 1 ? " worker" : " workers");
    std::printf("\n##### %s #####\n", c.label.c_str());
    TRAINLAB_ASSIGN_OR_RETURN(RunResult r, RunTraining(setup, c));
    runs.push_back(std::move(r));
  }
  std::printf("\n===== C4: 1 worker against %d, per epoch =====\n", best);
  std::printf("%6s | %-36s | %-36s\n", "epoch", runs[0].label.c_str(), runs[1].label.c_str());
  std::printf("%6s | %11s %11s %11s | %11s %11s %11s\n", "", "loading", "training", "epoch", "loading",
              "training", "epoch");
  const size_t n = std::min(runs[0].epochs.size(), runs[1].epochs.size());
  for (size_t e = 0; e < n; ++e) {
    const EpochStats& a = runs[0].epochs[e];
    const EpochStats& b = runs[1].epochs[e];
    std::printf("%6zu | %11s %11s %11s | %11s %11s %11s\n", e + 1, FormatSeconds(a.load_s).c_str(),
                FormatSeconds(a.train_s).c_str(), FormatSeconds(a.epoch_s).c_str(),
                FormatSeconds(b.load_s).c_str(), FormatSeconds(b.train_s).c_str(),
                FormatSeconds(b.epoch_s).c_str());
  }
  std::printf("\nLoader stages, summed over the loader threads and epochs:\n");
  for (const RunResult& r : runs) PrintStages(r);
  std::printf("With one worker the trainer waits whenever a batch takes longer to make than a step\n"
              "takes to train; more workers overlap that work. On a CPU the workers also compete with\n"
              "the training threads for the same cores.\n");
  return setup.Finish();
}

}  // namespace
}  // namespace trainlab::experiments

int main(int argc, char** argv) {
  return trainlab::experiments::RunMain(argc, argv, "C4: one loader worker against the best count.",
                                        trainlab::experiments::Run);
}
