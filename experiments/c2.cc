// C2: train ResNet-18 and print, per epoch, the lab's block: loss, top-1 accuracy, time waiting
// for data, training time (forward, loss, backward, optimizer step, synchronized), average
// training time per batch and total epoch time.
//
//   bazel run //experiments:c2 -- --max_batches_per_epoch=20 --epochs=3
#include <cstdio>

#include "experiments/common.h"

int main(int argc, char** argv) {
  using namespace trainlab::experiments;
  return RunMain(argc, argv,
                 "C2: trains ResNet-18 and prints the lab's per-epoch summary.\n"
                 "  c2 [--dataset=auto|cifar10|fashion_mnist|synthetic] [--data_dir=DIR] "
                 "[--epochs=5] [--num_workers=2] [--max_batches_per_epoch=N] ...",
                 [] {
                   TRAINLAB_ASSIGN_OR_RETURN(Setup setup, Setup::FromFlags());
                   TRAINLAB_ASSIGN_OR_RETURN(RunResult r, RunTraining(setup, setup.DefaultRun()));
                   std::printf("Recap: %zu epochs, mean epoch %s, mean data loading %s (%.2f%% of the epoch)\n",
                               r.epochs.size(), FormatSeconds(r.mean(&trainlab::EpochStats::epoch_s)).c_str(),
                               FormatSeconds(r.mean(&trainlab::EpochStats::load_s)).c_str(),
                               100.0 * r.total(&trainlab::EpochStats::load_s) /
                                   r.total(&trainlab::EpochStats::epoch_s));
                   return setup.Finish();
                 });
}
