// A clean stop on Ctrl-C (SIGINT) or SIGTERM. Before training has started there is nothing to
// save, and a signal ends the process at once (128 + the signal), whatever it is waiting for.
// Once training has started, the first signal asks the training loop to stop after the batch it
// is on (it writes a checkpoint when --checkpoint_dir is set, and the binary exits with 128 + the
// signal: 130 or 143); a second one, more than a second later, exits at once. Signals within a
// second of the first are the same request delivered twice (a terminal's Ctrl-C reaches torchrun
// and its workers, and torchrun forwards it) and are ignored.
//
// Example:
//   InstallStopHandlers();
//   ...
//   StopsAreGraceful();   // the first batch is about to run
//   ... after each batch: if (StopSignal() != 0) return absl::CancelledError("stopped");
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_STOP_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_STOP_H_

#include <string>

namespace trainlab::experiments {

// Installs the SIGINT and SIGTERM handlers (once per process).
void InstallStopHandlers();
// From now on the first signal asks for a stop instead of ending the process.
void StopsAreGraceful();
// The signal that asked for a stop (SIGINT or SIGTERM), or 0.
int StopSignal();
// Records a stop that another rank of a data-parallel job was asked for, as if this process had
// received `signal` (no message; a stop already recorded stays). This rank then stops after the
// same batch and exits with the same code. It does not count as a received signal: the next
// one this process receives (torchrun's SIGTERM to every worker) still asks for the same stop.
void RequestStop(int signal);
// "SIGINT", "SIGTERM".
std::string SignalName(int signal);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_STOP_H_
