// C6: the lab's optimizer comparison. Trains ResNet-18 with each optimizer in turn (the lab's
// settings: lr 0.1, weight decay 5e-4, momentum 0.9 where it applies), prints each run's
// per-epoch blocks, then the recap: average training time per epoch, average loss and average
// top-1, and a ranking by each. A run whose loss becomes NaN or infinite is reported as
// diverged at that epoch and batch, and the next optimizer runs.
//
//   bazel run //experiments:c6 -- --max_batches_per_epoch=10 --epochs=2 --optimizers=sgd,adam
#include <cstdio>

#include "experiments/common.h"

DEFINE_string(optimizers, "sgd,sgd_nesterov,adagrad,adadelta,adam", "Optimizers to compare, in order.");

int main(int argc, char** argv) {
  using namespace trainlab::experiments;
  return RunMain(argc, argv, "C6: compares optimizers on ResNet-18.", [] {
    TRAINLAB_ASSIGN_OR_RETURN(std::vector<std::string> names, SplitList("optimizers", FLAGS_optimizers));
    TRAINLAB_ASSIGN_OR_RETURN(Setup setup, Setup::FromFlags());
    std::vector<RunResult> runs;
    for (const std::string& name : names) {
      RunConfig c = setup.DefaultRun();
      c.label = name;
      c.optimizer = name;
      std::printf("\n##### Optimizer: %s #####\n", name.c_str());
      TRAINLAB_ASSIGN_OR_RETURN(RunResult r, RunTraining(setup, c));
      runs.push_back(std::move(r));
    }
    PrintRecap(runs);
    return setup.Finish();
  });
}
