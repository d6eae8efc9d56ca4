#include "plugins/tensorboard/event_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "plugins/tensorboard/crc32c.h"
#include "plugins/tensorboard/event.pb.h"
#include "plugins/tensorboard/record.h"

namespace trainlab::tensorboard {
namespace {

// The longest flush period accepted: one day (a longer one is surely a unit mistake).
constexpr double kMaxFlushEverySeconds = 24 * 60 * 60;

// The plugins' names and content versions (tensorboard/plugins/text/metadata.py PLUGIN_NAME and
// PROTO_VERSION; tensorboard/plugins/hparams/metadata.py PLUGIN_NAME and PLUGIN_DATA_VERSION).
constexpr char kTextPluginName[] = "text";
constexpr char kHParamsPluginName[] = "hparams";
constexpr int kHParamsPluginDataVersion = 0;

// Files opened by this process: the name's last field (PyTorch's _global_uid, TensorFlow's
// per-process file counter).
std::atomic<int> files_opened{0};

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// Writes all of `bytes` (partial writes continued, EINTR retried): 0, or the errno that stopped it.
int WriteFully(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

std::string ErrnoText(int error) { return std::strerror(error); }

// `message` with the absl code closest to `error` (an errno value).
absl::Status ErrnoStatus(int error, const std::string& message) {
  switch (error) {
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case EEXIST:
      return absl::AlreadyExistsError(message);
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    default:
      return absl::FailedPreconditionError(message);
  }
}

proto::Event NewEvent(int64_t step, std::optional<double> wall_time = std::nullopt) {
  proto::Event event;
  event.set_wall_time(wall_time.has_value() ? *wall_time : Now());
  event.set_step(step);
  return event;
}

// The hparams plugin's value at `tag`: plugin data in the metadata and, as summary.py's
// _TF_NULL_TENSOR, metadata.NULL_TENSOR: an empty DT_FLOAT tensor of shape (0,).
proto::Event HParamsEvent(const std::string& tag, const proto::HParamsPluginData& data) {
  proto::Event event = NewEvent(0);
  proto::Summary::Value* value = event.mutable_summary()->add_value();
  value->set_tag(tag);
  proto::SummaryMetadata::PluginData* plugin = value->mutable_metadata()->mutable_plugin_data();
  plugin->set_plugin_name(kHParamsPluginName);
  plugin->set_content(data.SerializeAsString());
  proto::TensorProto* tensor = value->mutable_tensor();
  tensor->set_dtype(proto::DT_FLOAT);
  tensor->mutable_tensor_shape()->add_dim()->set_size(0);
  return event;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventWriter>> EventWriter::Open(const std::string& dir,
                                                               EventWriterOptions options) {
  if (!Crc32cSupported()) {
    return absl::FailedPreconditionError(
        "tensorboard: this CPU lacks SSE4.2's crc32 instruction, which event files' CRCs use");
  }
  if (!(options.flush_every_s > 0 && options.flush_every_s <= kMaxFlushEverySeconds)) {
    return absl::InvalidArgumentError(absl::StrCat("tensorboard: flush_every_s is ",
                                                   options.flush_every_s,
                                                   ": it must be above 0 and at most a day"));
  }
  if (dir.empty()) return absl::InvalidArgumentError("tensorboard: no log folder given");
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::exists(dir, error) && !fs::is_directory(dir, error)) {
    return absl::FailedPreconditionError(absl::StrCat("tensorboard: ", dir, " is not a directory"));
  }
  fs::create_directories(dir, error);
  if (error) {
    return ErrnoStatus(error.value(),
                       absl::StrCat("tensorboard: cannot create ", dir, ": ", error.message()));
  }

  char stamp[32];
  std::snprintf(stamp, sizeof(stamp), "%010lld", static_cast<long long>(std::time(nullptr)));
  const std::string path =
      absl::StrCat(dir, "/events.out.tfevents.", std::string(stamp), ".", HostName(), ".",
                   static_cast<long long>(getpid()), ".", files_opened.fetch_add(1));
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int open_error = errno;
    return ErrnoStatus(
        open_error, absl::StrCat("tensorboard: cannot create ", path, ": ", ErrnoText(open_error)));
  }

  proto::Event first = NewEvent(0);
  first.set_file_version(kFileVersion);
  if (const int write_error = WriteFully(fd, FrameRecord(first.SerializeAsString()));
      write_error != 0) {
    close(fd);
    unlink(path.c_str());
    return ErrnoStatus(write_error, absl::StrCat("tensorboard: cannot write ", path, ": ",
                                                 ErrnoText(write_error)));
  }
  return std::unique_ptr<EventWriter>(new EventWriter(path, fd, options));
}

EventWriter::EventWriter(std::string path, int fd, EventWriterOptions options)
    : path_(std::move(path)), fd_(fd), options_(options) {
  flusher_ = std::thread([this] { FlushLoop(); });
}

EventWriter::~EventWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  flusher_.join();
  WriteBuffered();
  close(fd_);
}

void EventWriter::FlushLoop() {
  const auto period = std::chrono::duration<double>(options_.flush_every_s);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, period, [this] { return stop_; });
    if (stop_) break;  // the destructor writes the rest
    lock.unlock();
    WriteBuffered();
    lock.lock();
  }
}

void EventWriter::Add(const proto::Event& event) {
  if (failed_.load(std::memory_order_relaxed)) return;
  const std::string record = FrameRecord(event.SerializeAsString());
  std::lock_guard<std::mutex> lock(mu_);
  if (!status_.ok()) return;
  buffer_.append(record);
}

void EventWriter::WriteBuffered() {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  write_buffer_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!status_.ok()) return;
    write_buffer_.swap(buffer_);  // buffer_ keeps the spare's capacity
  }
  if (write_buffer_.empty()) return;
  const int error = WriteFully(fd_, write_buffer_);
  if (error == 0) return;
  const std::string reason = ErrnoText(error);
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = ErrnoStatus(error, absl::StrCat("tensorboard: ", path_, ": ", reason));
    buffer_.clear();
    buffer_.shrink_to_fit();
  }
  failed_.store(true, std::memory_order_relaxed);
  // Only here, once: status_ is no longer OK, so no later call reaches a write.
  std::fprintf(stderr, "tensorboard: %s: %s: the charts stop here; training goes on\n",
               path_.c_str(), reason.c_str());
}

absl::Status EventWriter::Flush() {
  WriteBuffered();
  return status();
}

absl::Status EventWriter::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void EventWriter::Scalar(const std::string& tag, double value, int64_t step,
                         std::optional<double> wall_time) {
  Scalars({{tag, value}}, step, wall_time);
}

void EventWriter::Scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step,
                          std::optional<double> wall_time) {
  if (values.empty() || failed_.load(std::memory_order_relaxed)) return;
  proto::Event event = NewEvent(step, wall_time);
  proto::Summary* summary = event.mutable_summary();
  for (const auto& [tag, value] : values) {
    proto::Summary::Value* summary_value = summary->add_value();
    summary_value->set_tag(tag);
    summary_value->set_simple_value(static_cast<float>(value));
  }
  Add(event);
}

void EventWriter::Text(const std::string& tag, const std::string& markdown, int64_t step) {
  if (failed_.load(std::memory_order_relaxed)) return;
  proto::Event event = NewEvent(step);
  proto::Summary::Value* value = event.mutable_summary()->add_value();
  value->set_tag(tag);
  // The content is TextPluginData{version: 0}, which serializes to no bytes.
  value->mutable_metadata()->mutable_plugin_data()->set_plugin_name(kTextPluginName);
  proto::TensorProto* tensor = value->mutable_tensor();
  tensor->set_dtype(proto::DT_STRING);
  tensor->mutable_tensor_shape();  // a scalar: a shape with no dimensions
  tensor->add_string_val(markdown);
  Add(event);
}

void EventWriter::Image(const std::string& tag, const std::string& png, int height, int width,
                        int channels, int64_t step) {
  if (failed_.load(std::memory_order_relaxed)) return;
  proto::Event event = NewEvent(step);
  proto::Summary::Value* value = event.mutable_summary()->add_value();
  value->set_tag(tag);
  proto::Summary::Image* image = value->mutable_image();
  image->set_height(height);
  image->set_width(width);
  image->set_colorspace(channels);
  image->set_encoded_image_string(png);
  Add(event);
}

void EventWriter::Purge(int64_t step) {
  proto::Event version = NewEvent(step);
  version.set_file_version(kFileVersion);
  Add(version);
  proto::Event start = NewEvent(step);
  start.mutable_session_log()->set_status(proto::SessionLog::START);
  Add(start);
}

void EventWriter::HParamsStart(const std::map<std::string, HParamValue>& hparams,
                               const std::string& group_name, double start_time_secs) {
  if (failed_.load(std::memory_order_relaxed)) return;
  proto::HParamsPluginData data;
  data.set_version(kHParamsPluginDataVersion);
  proto::SessionStartInfo* start = data.mutable_session_start_info();
  for (const auto& [name, value] : hparams) {
    google::protobuf::Value& out = (*start->mutable_hparams())[name];
    if (const double* number = std::get_if<double>(&value)) {
      out.set_number_value(*number);
    } else if (const std::string* text = std::get_if<std::string>(&value)) {
      out.set_string_value(*text);
    } else {
      out.set_bool_value(std::get<bool>(value));
    }
  }
  start->set_group_name(group_name);
  start->set_start_time_secs(start_time_secs);
  Add(HParamsEvent(kSessionStartInfoTag, data));
}

void EventWriter::HParamsEnd(proto::Status status, double end_time_secs) {
  if (failed_.load(std::memory_order_relaxed)) return;
  proto::HParamsPluginData data;
  data.set_version(kHParamsPluginDataVersion);
  proto::SessionEndInfo* end = data.mutable_session_end_info();
  end->set_status(status);
  end->set_end_time_secs(end_time_secs);
  Add(HParamsEvent(kSessionEndInfoTag, data));
}

}  // namespace trainlab::tensorboard
