// Runs another program (git, gnuplot) from an argument vector: no shell, so nothing in an
// argument (a path, an environment variable's value) is ever interpreted as a command. Its
// stdin is /dev/null, its stdout and stderr come back as one string, and it is killed after a
// deadline.
//
// Example:
//   absl::StatusOr<ProcessResult> r = RunProcess({"git", "-C", dir, "rev-parse", "HEAD"});
//   if (r.ok() && r->exit_code == 0) commit = r->output;
#ifndef TRAINLAB_CORE_SUBPROCESS_H_
#define TRAINLAB_CORE_SUBPROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace trainlab {

struct ProcessResult {
  int exit_code = -1;  // the program's, or 128 + the signal that ended it
  std::string output;  // stdout and stderr, interleaved
};

// Whether `program` is an executable file in a folder of $PATH (or a path to one).
inline bool OnPath(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
    if (::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// Runs argv[0] (looked up in $PATH) with `argv`; errors only when it cannot be started. Output
// beyond `max_output` bytes is dropped; after `timeout` the program is killed (SIGKILL) and its
// exit code reads 128 + 9.
inline absl::StatusOr<ProcessResult> RunProcess(
    const std::vector<std::string>& argv,
    std::chrono::milliseconds timeout = std::chrono::seconds(60), size_t max_output = 1 << 20) {
  if (argv.empty()) return absl::InvalidArgumentError("RunProcess: no program");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot run ", argv[0], ": pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    return absl::NotFoundError(absl::StrCat("cannot run ", argv[0], ": ", std::strerror(rc)));
  }
  ProcessResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool killed = false;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // every writer closed: the program is done (or closed its outputs)
    if (result.output.size() < max_output) {
      result.output.append(
          buf, std::min<size_t>(static_cast<size_t>(n), max_output - result.output.size()));
    }
  }
  ::close(pipe_fds[0]);
  int status = 0;
  for (;;) {  // the program may outlive its outputs: wait for it, up to the deadline
    const pid_t done = ::waitpid(pid, &status, killed ? 0 : WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) break;
    if (done == 0 && std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      killed = true;
    } else if (done == 0) {
      ::usleep(10000);
    }
  }
  if (killed || WIFSIGNALED(status)) {
    result.exit_code = 128 + (killed ? SIGKILL : WTERMSIG(status));
  } else {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_SUBPROCESS_H_
