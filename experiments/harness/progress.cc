#include "experiments/harness/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "absl/strings/str_format.h"

namespace trainlab::experiments {

std::string FormatDuration(double seconds) {
  const int64_t s = std::isfinite(seconds) && seconds > 0 ? static_cast<int64_t>(seconds + 0.5) : 0;
  if (s >= 3600) return absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

ProgressLine::ProgressLine(bool enabled, std::string label, int epochs)
    : enabled_(enabled),
      terminal_(isatty(STDERR_FILENO) == 1),
      label_(std::move(label)),
      epochs_(epochs) {}

ProgressLine::~ProgressLine() { Clear(); }

void ProgressLine::Update(const EpochProgress& p) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool last = p.batches_done >= p.batches_total;
  const auto every = terminal_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10000);
  if (drawn_ && !last && now - last_ < every) return;
  if (!terminal_ && last) return;  // the block on stdout follows
  last_ = now;
  const double rate = p.elapsed_s > 0 ? static_cast<double>(p.samples) / p.elapsed_s : 0;
  const double eta = p.batches_done > 0 ? p.elapsed_s / static_cast<double>(p.batches_done) *
                                              static_cast<double>(p.batches_total - p.batches_done)
                                        : 0;
  const std::string line =
      absl::StrFormat("%s  epoch %d/%d  batch %d/%d  %.0f img/s  loss %.4f  %s elapsed, ETA %s",
                      label_, p.epoch, epochs_, p.batches_done, p.batches_total, rate,
                      p.running_loss, FormatDuration(p.elapsed_s), FormatDuration(eta));
  if (terminal_) {
    std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressLine::Clear() {
  if (!enabled_ || !drawn_) return;
  if (terminal_) {
    std::fputs("\r\x1b[K", stderr);
    std::fflush(stderr);
  }
  drawn_ = false;
}

}  // namespace trainlab::experiments
