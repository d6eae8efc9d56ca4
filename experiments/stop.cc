#include "experiments/stop.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace trainlab::experiments {
namespace {

std::atomic<int> stop_signal{0};
std::atomic<bool> graceful{false};

void Say(const char* message, size_t n) { (void)!write(STDERR_FILENO, message, n); }

void OnSignal(int sig) {
  const int saved_errno = errno;  // the interrupted code may be about to read it
  if (!graceful.load()) {
    static const char kMessage[] = "\nstopped before training started: nothing to save\n";
    Say(kMessage, sizeof kMessage - 1);
    _exit(128 + sig);
  }
  int expected = 0;
  if (!stop_signal.compare_exchange_strong(expected, sig)) {
    // The second signal: no more waiting for the batch to finish.
    static const char kMessage[] = "\nsecond signal: exiting now, without a checkpoint\n";
    Say(kMessage, sizeof kMessage - 1);
    _exit(128 + sig);
  }
  static const char kMessage[] = "\nstopping after this batch (a second Ctrl-C exits at once)...\n";
  Say(kMessage, sizeof kMessage - 1);
  errno = saved_errno;
}

}  // namespace

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void StopsAreGraceful() { graceful.store(true); }

int StopSignal() { return stop_signal.load(); }

std::string SignalName(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

}  // namespace trainlab::experiments
