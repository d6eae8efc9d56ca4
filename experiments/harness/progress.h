// The progress line on stderr while an epoch runs:
//   c6 adam  epoch 2/5  batch 120/391  412 img/s  loss 1.2345  0:37 elapsed, ETA 1:05
// On a terminal it is redrawn in place (carriage return) at most 4 times a second and erased at
// the end of the epoch, so stdout's blocks stay as they are; with --progress=on and stderr not a
// terminal it prints a plain line every 10 seconds instead.
#ifndef TRAINLAB_EXPERIMENTS_HARNESS_PROGRESS_H_
#define TRAINLAB_EXPERIMENTS_HARNESS_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "core/stats.h"

namespace trainlab::experiments {

class ProgressLine {
 public:
  // `enabled` false: every call does nothing.
  ProgressLine(bool enabled, std::string label, int epochs);
  ~ProgressLine();
  void Update(const EpochProgress& p);
  // Erases the line (terminal) at the end of an epoch.
  void Clear();

 private:
  bool enabled_;
  bool terminal_;
  std::string label_;
  int epochs_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_;
};

// "1:05", "12:03:09".
std::string FormatDuration(double seconds);

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_HARNESS_PROGRESS_H_
