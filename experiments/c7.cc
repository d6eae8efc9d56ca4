// C7: SGD on ResNet-18 with and without batch norm, each run's per-epoch blocks, then the
// same recap as C6.
//
//   bazel run //experiments:c7 -- --max_batches_per_epoch=10 --epochs=2
#include <cstdio>

#include "absl/strings/str_cat.h"

#include "experiments/common.h"

int main(int argc, char** argv) {
  using namespace trainlab::experiments;
  return RunMain(argc, argv, "C7: ResNet-18 with and without batch norm (SGD).", [] {
    TRAINLAB_ASSIGN_OR_RETURN(Setup setup, Setup::FromFlags());
    std::vector<RunResult> runs;
    for (bool bn : {true, false}) {
      RunConfig c = setup.DefaultRun();
      c.batch_norm = bn;
      c.label = absl::StrCat(c.optimizer, bn ? " with BN" : " without BN");
      std::printf("\n##### %s #####\n", c.label.c_str());
      TRAINLAB_ASSIGN_OR_RETURN(RunResult r, RunTraining(setup, c));
      runs.push_back(std::move(r));
    }
    PrintRecap(runs);
    return setup.Finish();
  });
}
