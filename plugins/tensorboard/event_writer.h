// A TensorBoard event-file writer: the files PyTorch's torch.utils.tensorboard.SummaryWriter
// writes (TFRecord-framed Event protos), read by an unmodified TensorBoard. Scalars, text (the
// text plugin), PNG images, the hparams plugin's session start and end, and SummaryWriter's
// purge_step for resumed runs.
//
// No I/O happens on the caller's thread: each call serializes one Event into a buffer, and a
// background thread writes the buffer every flush_every_s (Flush() and the destructor write it
// at once). A write error (disk full, file too large, I/O error) is printed once on stderr, kept
// in status(), and every later event is dropped: a full disk stops the charts, never training.
// Every method may be called from any thread.
//
// Example:
//   absl::StatusOr<std::unique_ptr<EventWriter>> tb = EventWriter::Open("runs/resnet18_lr0.1");
//   if (!tb.ok()) return tb.status();   // "tensorboard: cannot create runs/...: Permission denied"
//   (*tb)->HParamsStart({{"lr", 0.1}, {"optimizer", "sgd"}, {"amp", true}}, "", start_secs);
//   (*tb)->Scalars({{"loss/train", loss}, {"accuracy/train", accuracy}}, step);
//   (*tb)->Text("notes", "**resumed** from epoch 3", step);
//   (*tb)->HParamsEnd(proto::STATUS_SUCCESS, end_secs);
//   absl::Status written = (*tb)->Flush();
#ifndef TRAINLAB_PLUGINS_TENSORBOARD_EVENT_WRITER_H_
#define TRAINLAB_PLUGINS_TENSORBOARD_EVENT_WRITER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plugins/tensorboard/hparams.pb.h"

namespace trainlab::tensorboard {

namespace proto {
class Event;
}  // namespace proto

struct EventWriterOptions {
  // The background thread writes what is buffered this often (seconds, > 0; at most a day).
  double flush_every_s = 2.0;
};

// One hyperparameter's value: a number, a string or a bool (the hparams plugin's three types).
// Numbers are doubles: write 128.0 or double(batch_size), an int converts to no alternative.
using HParamValue = std::variant<double, std::string, bool>;

// The first event of every file, and of Purge() (TensorFlow's event file version 2).
inline constexpr char kFileVersion[] = "brain.Event:2";

// The hparams plugin's tags (tensorboard/plugins/hparams/metadata.py).
inline constexpr char kSessionStartInfoTag[] = "_hparams_/session_start_info";
inline constexpr char kSessionEndInfoTag[] = "_hparams_/session_end_info";

class EventWriter {
 public:
  // Creates `dir` (and its parents) when missing and opens a new file in it,
  // dir/events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n> (n counts the files this process
  // opened, from 0, as TensorFlow and PyTorch name them: two writers of one process never
  // collide), never overwriting an existing file. Writes the file's first event (step 0,
  // file_version "brain.Event:2") before returning. Errors name the path and the system's reason.
  static absl::StatusOr<std::unique_ptr<EventWriter>> Open(const std::string& dir,
                                                           EventWriterOptions options = {});

  // Writes what is buffered, stops the background thread, closes the file.
  ~EventWriter();

  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // One scalar (Summary.Value.simple_value, a float), as SummaryWriter.add_scalar writes it.
  // wall_time: seconds since the Unix epoch, now by default.
  void Scalar(const std::string& tag, double value, int64_t step,
              std::optional<double> wall_time = std::nullopt);

  // Several scalars in one event (one Summary, one Value each): cheaper per batch than Scalar()
  // for each. Nothing is written for an empty list.
  void Scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step,
               std::optional<double> wall_time = std::nullopt);

  // Markdown for the text plugin, as tensorboard.plugins.text.summary_v2.text_pb writes it (a
  // scalar DT_STRING tensor under plugin "text").
  void Text(const std::string& tag, const std::string& markdown, int64_t step);

  // An encoded PNG (Summary.Image); channels is its colorspace: 1 grayscale, 3 RGB, 4 RGBA.
  void Image(const std::string& tag, const std::string& png, int height, int width, int channels,
             int64_t step);

  // SummaryWriter(purge_step=step): an event with file_version "brain.Event:2" and one with
  // session_log START, both at `step`. TensorBoard then drops every event of this run with
  // step >= `step` that it read before them, so a run resumed from a checkpoint does not draw its
  // steps twice.
  void Purge(int64_t step);

  // The hparams plugin, as tensorboard.plugins.hparams.summary's session_start_pb and
  // session_end_pb write it: the run's settings at its start and its status at its end, both at
  // step 0. group_name may be empty (TensorBoard then groups sessions by their hparams).
  void HParamsStart(const std::map<std::string, HParamValue>& hparams,
                    const std::string& group_name, double start_time_secs);
  void HParamsEnd(proto::Status status, double end_time_secs);

  // Writes everything buffered (write(2), no fsync) and returns status().
  absl::Status Flush();

  // OK, or the first write error. After one, the writer printed one line on stderr,
  // "tensorboard: <path>: <reason>: the charts stop here; training goes on", and drops every
  // later event.
  absl::Status status() const;

  // The event file's path.
  const std::string& path() const { return path_; }

 private:
  EventWriter(std::string path, int fd, EventWriterOptions options);

  void Add(const proto::Event& event);  // serializes and buffers one event
  void WriteBuffered();                 // writes the buffer (under write_mu_)
  void FlushLoop();                     // the background thread

  const std::string path_;
  const int fd_;
  const EventWriterOptions options_;

  mutable std::mutex mu_;  // guards buffer_, status_, stop_
  std::condition_variable wake_;
  std::string buffer_;  // framed records not yet written
  absl::Status status_;
  bool stop_ = false;
  std::atomic<bool> failed_{false};  // status_ is an error: drop events without serializing

  std::mutex write_mu_;  // one writer to fd_ at a time, in buffer order; guards write_buffer_
  std::string write_buffer_;

  std::thread flusher_;
};

}  // namespace trainlab::tensorboard

#endif  // TRAINLAB_PLUGINS_TENSORBOARD_EVENT_WRITER_H_
