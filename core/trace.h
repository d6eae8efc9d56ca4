// A Chrome trace recorder: spans on named thread tracks, written as Trace Event JSON that opens
// in Perfetto (ui.perfetto.dev) or chrome://tracing.
//
// Thread-safe; loader worker threads and the training thread record into one recorder. Each
// thread that records gets its own track (tid), named with `NameThisThread`. Spans are complete
// events ("ph":"X") with microsecond timestamps relative to the recorder's creation.
//
// Example:
//   trainlab::TraceRecorder trace;
//   trace.NameThisThread("trainer");
//   auto t0 = trainlab::Clock::now();
//   Forward();
//   trace.Span("forward", "train", t0, trainlab::Clock::now());
//   absl::Status s = trace.WriteJson("out.json");
#ifndef TRAINLAB_CORE_TRACE_H_
#define TRAINLAB_CORE_TRACE_H_

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/timer.h"

namespace trainlab {

class TraceRecorder {
 public:
  struct Event {
    std::string name;
    std::string category;
    int tid;
    double ts_us;
    double dur_us;
  };

  TraceRecorder() : origin_(Clock::now()) {}

  // Names the calling thread's track ("trainer", "loader worker 0", ...).
  void NameThisThread(std::string name) {
    std::lock_guard<std::mutex> lock(mu_);
    names_[TidLocked()] = std::move(name);
  }

  // Records a span [start, end) on the calling thread's track.
  void Span(std::string_view name, std::string_view category, Clock::time_point start,
            Clock::time_point end) {
    const double ts = std::chrono::duration<double, std::micro>(start - origin_).count();
    const double dur = std::chrono::duration<double, std::micro>(end - start).count();
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back({std::string(name), std::string(category), TidLocked(), ts, dur});
  }

  std::vector<Event> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

  // Writes {"traceEvents": [...], "displayTimeUnit": "ms"} to `path`.
  absl::Status WriteJson(const std::string& path) const {
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot write trace file ", path));
    std::lock_guard<std::mutex> lock(mu_);
    std::fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", f);
    bool first = true;
    auto sep = [&] {
      if (!first) std::fputs(",\n", f);
      first = false;
    };
    for (const auto& [tid, name] : names_) {
      sep();
      std::fprintf(f,
                   "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":%d,"
                   "\"args\":{\"name\":\"%s\"}}",
                   tid, Escape(name).c_str());
      sep();
      std::fprintf(f,
                   "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":1,\"tid\":%d,"
                   "\"args\":{\"sort_index\":%d}}",
                   tid, tid);
    }
    for (const Event& e : events_) {
      sep();
      std::fprintf(f,
                   "{\"ph\":\"X\",\"name\":\"%s\",\"cat\":\"%s\",\"pid\":1,\"tid\":%d,"
                   "\"ts\":%.3f,\"dur\":%.3f}",
                   Escape(e.name).c_str(), Escape(e.category).c_str(), e.tid, e.ts_us, e.dur_us);
    }
    std::fputs("\n]}\n", f);
    const bool ok = std::fflush(f) == 0;
    std::fclose(f);
    if (!ok) return absl::DataLossError(absl::StrCat("could not finish writing trace file ", path));
    return absl::OkStatus();
  }

 private:
  int TidLocked() {
    auto [it, inserted] =
        tids_.emplace(std::this_thread::get_id(), static_cast<int>(tids_.size()) + 1);
    if (inserted) names_.emplace(it->second, absl::StrCat("thread ", it->second));
    return it->second;
  }

  static std::string Escape(std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c == '"' || c == '\\') out.push_back('\\');
      if (static_cast<unsigned char>(c) >= 0x20) out.push_back(c);
    }
    return out;
  }

  const Clock::time_point origin_;
  mutable std::mutex mu_;
  std::map<std::thread::id, int> tids_;
  std::map<int, std::string> names_;
  std::vector<Event> events_;
};

// Records a span from construction to destruction when `trace` is not null.
class ScopedSpan {
 public:
  ScopedSpan(TraceRecorder* trace, std::string_view name, std::string_view category)
      : trace_(trace), name_(name), category_(category), start_(Clock::now()) {}
  ~ScopedSpan() {
    if (trace_ != nullptr) trace_->Span(name_, category_, start_, Clock::now());
  }
  ScopedSpan(const ScopedSpan&) = delete;
  ScopedSpan& operator=(const ScopedSpan&) = delete;

 private:
  TraceRecorder* trace_;
  std::string_view name_;
  std::string_view category_;
  Clock::time_point start_;
};

}  // namespace trainlab

#endif  // TRAINLAB_CORE_TRACE_H_
