// Checks a Chrome trace written by --trace: valid JSON, every track named, spans of a track
// properly nested (a span that starts inside another ends inside it), and the spans the
// trainer and the loader promise are there. Prints one line per problem; exit 1 if any.
//
//   check_trace FILE.json
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: check_trace FILE.json\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "check_trace: cannot open %s\n", argv[1]);
    return 1;
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "check_trace: %s is not valid JSON: %s\n", argv[1], e.what());
    return 1;
  }
  int problems = 0;
  auto problem = [&](const std::string& what) {
    std::fprintf(stderr, "check_trace: %s\n", what.c_str());
    ++problems;
  };
  struct Span {
    double ts, end;
    std::string name;
  };
  std::map<int, std::string> track_names;
  std::map<int, std::vector<Span>> spans;
  std::set<std::string> names;
  for (const auto& e : doc.at("traceEvents")) {
    const std::string ph = e.at("ph");
    const int tid = e.at("tid");
    if (ph == "M" && e.at("name") == "thread_name") track_names[tid] = e.at("args").at("name");
    if (ph == "X") {
      const double ts = e.at("ts"), dur = e.at("dur");
      if (dur < 0) problem("negative duration in " + e.dump());
      spans[tid].push_back({ts, ts + dur, e.at("name")});
      names.insert(e.at("name").get<std::string>());
    }
  }
  for (auto& [tid, list] : spans) {
    if (!track_names.count(tid)) problem("track " + std::to_string(tid) + " has no thread_name");
    // Sort by start, longest first; then every span must end before its enclosing one does.
    std::sort(list.begin(), list.end(), [](const Span& a, const Span& b) {
      return a.ts != b.ts ? a.ts < b.ts : a.end > b.end;
    });
    std::vector<const Span*> open;
    const double slack = 0.002;  // timestamps are printed with 3 decimals (ns)
    for (const Span& s : list) {
      while (!open.empty() && open.back()->end <= s.ts + slack) open.pop_back();
      if (!open.empty() && s.end > open.back()->end + slack) {
        problem("span '" + s.name + "' overlaps '" + open.back()->name +
                "' without nesting on track " + track_names[tid]);
      }
      open.push_back(&s);
    }
  }
  for (const char* want : {"wait for batch", "host to device", "forward", "backward",
                           "optimizer step", "train step", "read", "crop", "flip", "normalize"}) {
    if (!names.count(want)) problem(std::string("no span named '") + want + "'");
  }
  bool loader_track = false, trainer_track = false;
  for (const auto& [tid, name] : track_names) {
    loader_track |= name.rfind("loader worker", 0) == 0;
    trainer_track |= name == "trainer";
  }
  if (!loader_track) problem("no 'loader worker N' track");
  if (!trainer_track) problem("no 'trainer' track");
  if (problems == 0) {
    size_t n = 0;
    for (const auto& [tid, list] : spans) n += list.size();
    std::printf("check_trace: %s OK: %zu spans on %zu tracks\n", argv[1], n, spans.size());
  }
  return problems == 0 ? 0 : 1;
}
