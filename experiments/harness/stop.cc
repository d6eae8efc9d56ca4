#include "experiments/harness/stop.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace trainlab::experiments {
namespace {

std::atomic<int> stop_signal{0};
std::atomic<bool> graceful{false};
// When this process itself first received a signal (CLOCK_MONOTONIC nanoseconds; 0: never). A stop
// another rank asked for (RequestStop) does not count: torchrun's own SIGTERM that follows it
// must still be a first signal.
std::atomic<long long> first_received_ns{0};
// Signals this close to the first one are the same request arriving twice: a Ctrl-C reaches every
// process of the terminal's group, and torchrun then forwards it to its workers; GNU timeout
// signals the child and then its process group. A person pressing Ctrl-C again is slower.
constexpr long long kSameRequestNs = 1'000'000'000;

long long NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe (POSIX)
  return static_cast<long long>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void Say(const char* message, size_t n) { (void)!write(STDERR_FILENO, message, n); }

void OnSignal(int sig) {
  const int saved_errno = errno;  // the interrupted code may be about to read it
  if (!graceful.load()) {
    static const char kMessage[] = "\nstopped before training started: nothing to save\n";
    Say(kMessage, sizeof kMessage - 1);
    _exit(128 + sig);
  }
  const long long now = NowNs();
  long long first = 0;
  if (!first_received_ns.compare_exchange_strong(first, now)) {
    if (now - first < kSameRequestNs) {  // the same request, delivered twice
      errno = saved_errno;
      return;
    }
    // The second signal: no more waiting for the batch to finish.
    static const char kMessage[] = "\nsecond signal: exiting now, without a checkpoint\n";
    Say(kMessage, sizeof kMessage - 1);
    _exit(128 + sig);
  }
  int expected = 0;
  stop_signal.compare_exchange_strong(expected, sig);  // a stop another rank asked for stays
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

void RequestStop(int signal) {
  int expected = 0;
  stop_signal.compare_exchange_strong(expected, signal);
}

std::string SignalName(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

}  // namespace trainlab::experiments
