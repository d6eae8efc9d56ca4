#include "experiments/results.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <fcntl.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"

namespace trainlab::experiments {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos)
        return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return "unknown";
}

// The output of `cmd`, first line, or "" when it fails.
std::string FirstLineOf(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  char buf[256] = {0};
  std::string out;
  if (std::fgets(buf, sizeof buf, p) != nullptr) out = buf;
  const int rc = pclose(p);
  if (rc != 0) return "";
  return std::string(absl::StripTrailingAsciiWhitespace(out));
}

// The workspace's commit: `bazel run` says where the workspace is; a binary run by hand from a
// checkout finds it from the current directory.
nlohmann::json GitCommit() {
  std::string dir = ".";
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY"); ws != nullptr && *ws != '\0')
    dir = ws;
  const std::string q = absl::StrCat("git -C '", dir, "' ");
  const std::string commit = FirstLineOf(q + "rev-parse HEAD 2>/dev/null");
  if (commit.empty()) return nullptr;
  const std::string dirty =
      FirstLineOf(q + "status --porcelain --untracked-files=no 2>/dev/null | head -1");
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

nlohmann::json EpochJson(const EpochStats& e, const data::LoaderStageTimes* stages,
                         const EvalStats* test) {
  nlohmann::json j = {{"epoch", e.epoch},     {"loss", e.loss},
                      {"top1", e.top1},       {"load_s", e.load_s},
                      {"copy_s", e.copy_s},   {"train_s", e.train_s},
                      {"epoch_s", e.epoch_s}, {"avg_train_per_batch_s", e.avg_train_per_batch_s()},
                      {"samples", e.samples}, {"batches", e.batches.size()}};
  if (stages != nullptr) {
    j["loader_stages"] = {{"read_s", stages->read_s},         {"crop_s", stages->crop_s},
                          {"flip_s", stages->flip_s},         {"normalize_s", stages->normalize_s},
                          {"assemble_s", stages->assemble_s}, {"batches", stages->batches},
                          {"images", stages->images}};
  }
  if (test != nullptr)
    j["test"] = {{"loss", test->loss}, {"top1", test->top1}, {"samples", test->samples}};
  if (e.diverged)
    j["diverged"] = {
        {"epoch", e.diverged->epoch}, {"batch", e.diverged->batch}, {"loss", e.diverged->loss}};
  return j;
}

}  // namespace

nlohmann::json JsonNumber(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

double NumberFromJson(const nlohmann::json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.is_string() ? j.get<std::string>() : "nan";
  if (s == "inf") return std::numeric_limits<double>::infinity();
  if (s == "-inf") return -std::numeric_limits<double>::infinity();
  return std::numeric_limits<double>::quiet_NaN();
}

absl::Status PrepareResultsDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::PermissionDeniedError(
        absl::StrCat("--results_dir=", dir, ": cannot create it: ", ec.message()));
  if (!std::filesystem::is_directory(dir)) {
    return absl::FailedPreconditionError(absl::StrCat("--results_dir=", dir, ": not a directory"));
  }
  const std::string probe = absl::StrCat(dir, "/.trainlab-write-probe-", getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("--results_dir=", dir, ": cannot write there: ", std::strerror(errno)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = absl::StrCat(path, ".tmp-", getpid());
  auto fail = [&](const char* what) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot ", what, ": ", why));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
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
  return absl::OkStatus();
}

nlohmann::json Environment(const Session& session) {
  nlohmann::json env = {
      {"cpu_model", CpuModel()},
      {"cores", std::thread::hardware_concurrency()},
      {"intra_op_threads", at::get_num_threads()},
      {"allocator", session.allocator},
      {"kernels",
       {{"portable", session.config.portable_kernels},
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

nlohmann::json ResultsJson(const Session& session, const ExperimentResult& result) {
  nlohmann::json configs = nlohmann::json::array();
  for (const ConfigResult& c : result.configs) {
    nlohmann::json runs = nlohmann::json::array();
    for (const RunResult& r : c.repeats) {
      nlohmann::json epochs = nlohmann::json::array();
      for (size_t i = 0; i < r.epochs.size(); ++i) {
        nlohmann::json e =
            EpochJson(r.epochs[i], i < r.loader_stages.size() ? &r.loader_stages[i] : nullptr,
                      i < r.test.size() ? &r.test[i] : nullptr);
        e["loss"] = JsonNumber(r.epochs[i].loss);
        if (e.contains("diverged")) e["diverged"]["loss"] = JsonNumber(r.epochs[i].diverged->loss);
        epochs.push_back(std::move(e));
      }
      nlohmann::json run = {
          {"repeat", r.repeat}, {"total_s", r.total_s}, {"epochs", std::move(epochs)}};
      if (r.diverged) {
        run["diverged"] = {{"epoch", r.diverged->epoch},
                           {"batch", r.diverged->batch},
                           {"loss", JsonNumber(r.diverged->loss)}};
      }
      runs.push_back(std::move(run));
    }
    nlohmann::json cj = {{"label", c.label},
                         {"params", c.params},
                         {"optimizer", c.config.optimizer},
                         {"strategy", c.config.strategy},
                         {"num_workers", c.config.num_workers},
                         {"model", c.config.model},
                         {"device", c.config.device.str()},
                         {"runs", std::move(runs)}};
    if (!c.skipped.empty()) cj["skipped"] = c.skipped;
    configs.push_back(std::move(cj));
  }
  return {{"schema_version", kResultsSchemaVersion},
          {"experiment", session.config.experiment},
          {"command_line", session.config.command_line},
          {"settings", session.config.settings},
          {"environment", Environment(session)},
          {"configs", std::move(configs)},
          {"summary", result.summary},
          {"notes", result.notes}};
}

std::string BatchesCsv(const ExperimentResult& result) {
  std::string out = "config,repeat,epoch,batch,size,wait_s,copy_s,train_s,loss,correct\n";
  for (const ConfigResult& c : result.configs) {
    std::string label = c.label;
    if (label.find_first_of(",\"") != std::string::npos) {
      std::string quoted = "\"";
      for (char ch : label) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      label = quoted + "\"";
    }
    for (const RunResult& r : c.repeats) {
      for (const EpochStats& e : r.epochs) {
        for (const BatchRecord& b : e.batches) {
          absl::StrAppendFormat(&out, "%s,%d,%d,%d,%d,%.6f,%.6f,%.6f,%.6g,%d\n", label, r.repeat,
                                e.epoch, b.index, b.size, b.wait_s, b.copy_s, b.train_s, b.loss,
                                b.correct);
        }
      }
    }
  }
  return out;
}

absl::Status WriteResults(const Session& session, const ExperimentResult& result) {
  if (session.config.results_dir.empty()) return absl::OkStatus();
  const std::string dir = session.ResultsDir();
  const std::string base = absl::StrCat(dir, "/", session.config.experiment);
  TRAINLAB_RETURN_IF_ERROR(
      WriteFileAtomically(base + ".json", ResultsJson(session, result).dump(2) + "\n"));
  if (!result.configs.empty())
    TRAINLAB_RETURN_IF_ERROR(WriteFileAtomically(base + "_batches.csv", BatchesCsv(result)));
  std::printf("Results written to %s.json%s\n", base.c_str(),
              result.configs.empty() ? "" : absl::StrCat(" and ", base, "_batches.csv").c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<nlohmann::json>> ReadResults(const std::string& dir,
                                                          const std::string& experiment) {
  const std::string path = absl::StrCat(dir, "/", experiment, ".json");
  if (!std::filesystem::exists(path)) return std::optional<nlohmann::json>();
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return absl::DataLossError(absl::StrCat(path, ": not a JSON object"));
  if (j.value("schema_version", 0) != kResultsSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": schema_version ", j.value("schema_version", 0), ", this build reads ",
                     kResultsSchemaVersion));
  }
  return std::optional<nlohmann::json>(std::move(j));
}

}  // namespace trainlab::experiments
