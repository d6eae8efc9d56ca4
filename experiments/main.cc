// main() of every experiment binary: the experiment's name comes from the BUILD rule
// (local_defines TRAINLAB_EXPERIMENT="c3"), its code from the linked experiment library.
#include "experiments/harness/experiment_main.h"

#ifndef TRAINLAB_EXPERIMENT
#error "build with local_defines = ['TRAINLAB_EXPERIMENT=\"c3\"'] (see experiments/BUILD.bazel)"
#endif

int main(int argc, char** argv) {
  return trainlab::experiments::ExperimentMain(argc, argv, TRAINLAB_EXPERIMENT);
}
