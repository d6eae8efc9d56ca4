// Files that trainlab reads and writes for a user (datasets, results, checkpoints, saved weights),
// with the guarantees the README states:
//   - a read takes only a regular file, bounded in size: a FIFO, a device (`/dev/zero`), a
//     directory or a file larger than the bound is an error naming the path, never a hang or an
//     unbounded allocation (a FIFO is opened without blocking, then refused);
//   - a write is atomic and durable: a temporary file in the same folder, fsync, rename over the
//     old file, fsync of the folder; readers see the old file or the new one, and after a power
//     loss the rename is on disk;
//   - errors are values (absl::Status) whose message starts with the path.
//
// Example:
//   TRAINLAB_ASSIGN_OR_RETURN(std::string bytes, ReadRegularFile(path, kMaxCheckpointBytes));
//   TRAINLAB_RETURN_IF_ERROR(WriteFileAtomically(path, bytes));
#ifndef TRAINLAB_CORE_FILES_H_
#define TRAINLAB_CORE_FILES_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace trainlab {

namespace files_internal {

inline std::string Errno() { return std::strerror(errno); }

inline const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// "1.5 GiB", "300 MiB", "12 KiB", "17 bytes".
inline std::string Bytes(uint64_t n) {
  constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrCat(n, " bytes");
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.1f %s" : "%.0f %s", v, kUnits[u]);
  return buf;
}

}  // namespace files_internal

// The whole of `path`, which must be a regular file (symbolic links are followed to one) of at
// most `max_bytes`. Errors: "PATH: no such file", "PATH: a FIFO, not a regular file",
// "PATH: 3.2 GiB, more than the 2.0 GiB a <what> may be", "PATH: cannot read: <errno>".
inline absl::StatusOr<std::string> ReadRegularFile(const std::string& path, uint64_t max_bytes,
                                                   const std::string& what = "file") {
  using files_internal::Errno;
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    if (errno == EACCES) {
      return absl::PermissionDeniedError(absl::StrCat(path, ": cannot read: permission denied"));
    }
    return absl::FailedPreconditionError(absl::StrCat(path, ": cannot open: ", Errno()));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": cannot stat: ", Errno()));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": ", files_internal::KindOf(st.st_mode), ", not a regular file"));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": ", size, " bytes, more than the ",
                                                      files_internal::Bytes(max_bytes), " a ", what,
                                                      " may be"));
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  std::string out(size, '\0');
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, out.data() + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::DataLossError(absl::StrCat(path, ": cannot read: ", Errno()));
    }
    if (n == 0) break;  // shrank while read: what is there
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

// fsync of a folder: makes a rename or a new file in it durable.
inline absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat(dir, ": cannot open the folder to sync it: ", files_internal::Errno()));
  }
  const int rc = ::fsync(fd);
  const std::string why = rc != 0 ? files_internal::Errno() : "";
  ::close(fd);
  // Some file systems (tmpfs on old kernels) refuse fsync on a folder: nothing to make durable.
  if (rc != 0 && why != std::strerror(EINVAL)) {
    return absl::InternalError(absl::StrCat(dir, ": cannot sync the folder: ", why));
  }
  return absl::OkStatus();
}

// The name of the temporary file WriteFileAtomically uses for `path` in process `pid`:
// "PATH.tmp-PID". (A process killed mid-write leaves one; RemoveStaleTemporaries cleans them.)
inline std::string TemporaryFileFor(const std::string& path, int pid) {
  return absl::StrCat(path, ".tmp-", pid);
}

// Writes `contents` to `path` whole or not at all, durably (see the file comment).
inline absl::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  using files_internal::Errno;
  const std::string tmp = TemporaryFileFor(path, static_cast<int>(::getpid()));
  auto fail = [&](const char* what) {
    const std::string why = Errno();
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot ", what, ": ", why));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("create a temporary file");
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("flush to disk");
  }
  if (::close(fd) != 0) return fail("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename the temporary file into place");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return SyncDirectory(parent.empty() ? "." : parent.string());
}

// Removes DIR's files named "<name>.tmp-PID" whose process PID is gone (SIGKILL mid-write):
// each can be as large as a checkpoint. Returns how many it removed.
inline int RemoveStaleTemporaries(const std::string& dir, const std::string& name) {
  int removed = 0;
  std::error_code ec;
  const std::string prefix = name + ".tmp-";
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(prefix, 0) != 0) continue;
    const std::string pid_text = file.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    const bool alive = pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
    if (!alive && std::filesystem::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

// Creates `dir` if needed and proves it writable (a probe file is written and removed). `flag`
// names it in errors: "--results_dir=DIR: cannot write there: Permission denied".
inline absl::Status PrepareWritableDir(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat(flag, "=", dir, ": cannot create it: ", ec.message()));
  }
  if (!std::filesystem::is_directory(dir)) {
    return absl::FailedPreconditionError(absl::StrCat(flag, "=", dir, ": not a directory"));
  }
  const std::string probe = absl::StrCat(dir, "/.trainlab-write-probe-", ::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(flag, "=", dir, ": cannot write there: ", files_internal::Errno()));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return absl::OkStatus();
}

// A file the run will write at the end (--save_model, --trace): refused before any training when
// it is a directory or something else than a regular file, or its folder is missing or not
// writable. `flag` names it in errors.
inline absl::Status CheckOutputFile(const std::string& path, const std::string& flag) {
  std::error_code ec;
  const std::filesystem::path p = std::filesystem::absolute(path, ec);
  const std::filesystem::file_status st = std::filesystem::status(p, ec);
  if (std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "=", path, ": ",
                     std::filesystem::is_directory(st) ? "is a directory" : "is not a regular file",
                     " (give a file name)"));
  }
  const std::filesystem::path dir = p.parent_path();
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat(flag, "=", path, ": folder ", dir.string(), " does not exist"));
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(flag, "=", path, ": cannot write in ",
                                                    dir.string(), ": ", files_internal::Errno()));
  }
  return absl::OkStatus();
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_FILES_H_
