// EnvironmentJson (environment.h): what a results file records of the machine and the session.
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <ctime>
#include <fstream>
#include <thread>

#include "absl/strings/strip.h"
#include "core/host.h"
#include "core/kernels.h"
#include "core/subprocess.h"
#include "experiments/harness/environment.h"

namespace trainlab::experiments {
namespace {

std::string CpuModel() { return CpuInfoField("model name").value_or("unknown"); }

// The first line git prints for `args` run in `dir`, or "" when it fails (no git, no checkout).
// git runs from an argument vector: nothing in `dir` is ever read as a command.
std::string Git(const std::string& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {"git", "-C", dir});
  absl::StatusOr<ProcessResult> r = RunProcess(args, std::chrono::seconds(10));
  if (!r.ok() || r->exit_code != 0) return "";
  return std::string(absl::StripTrailingAsciiWhitespace(r->output.substr(0, r->output.find('\n'))));
}

// The workspace's commit: `bazel run` says where the workspace is; a binary run by hand from a
// checkout finds it from the current directory.
nlohmann::json GitCommit() {
  std::string dir = ".";
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY"); ws != nullptr && *ws != '\0') {
    dir = ws;
  }
  const std::string commit = Git(dir, {"rev-parse", "HEAD"});
  if (commit.empty()) return nullptr;
  const std::string dirty = Git(dir, {"status", "--porcelain", "--untracked-files=no"});
  return dirty.empty() ? commit : commit + " (with uncommitted changes)";
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

nlohmann::json EnvironmentJson(const Session& session) {
  nlohmann::json env = {
      {"cpu_model", CpuModel()},
      {"cores", std::thread::hardware_concurrency()},
      {"intra_op_threads", at::get_num_threads()},
      {"allocator", session.allocator},
      {"kernels",
       {{"portable", session.options.portable_kernels},
        {"aten", session.kernels.aten},
        {"onednn", session.kernels.onednn},
        {"blas", LoadedBlas()}}},
      {"libtorch_version", TORCH_VERSION},
      {"device", session.device.str()},
      {"cuda_available", torch::cuda::is_available()},
      {"gpus", torch::cuda::device_count()},
      {"git_commit", GitCommit()},
      {"date", UtcNow()},
  };
  if (at::globalContext().hasCUDA()) {
    // showConfig() names the CUDA runtime and cuDNN versions LibTorch was built with.
    env["cuda_config"] = at::detail::getCUDAHooks().showConfig();
    if (at::globalContext().hasCuDNN())
      env["cudnn_version"] = at::detail::getCUDAHooks().versionCuDNN();
  }
  env["dataset"] = session.train ? session.train->name : "";
  env["test_dataset"] = session.test ? session.test->name : "";
  env["data_note"] = session.data_note;
  return env;
}

}  // namespace trainlab::experiments
