// Command-line parsing for every trainlab binary: gflags, with a `--help` that shows the
// binary's own flags first, grouped, on one screen, instead of the ~250 flags LibTorch, glog
// and gflags define (those stay one `--helpfull` away).
//
// Example:
//   absl::StatusOr<trainlab::Parsed> p = trainlab::ParseFlags(&argc, &argv, "c2: trains ...",
//       {{"Data", {"dataset", "data_dir"}}, {"Training", {"epochs", "lr"}}});
//   if (!p.ok()) return ReportError(p.status());   // "--lr=abc: not a valid double"
//   if (*p == trainlab::Parsed::kHelpShown) return 0;
#ifndef TRAINLAB_CORE_CLI_H_
#define TRAINLAB_CORE_CLI_H_

#include <gflags/gflags.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace trainlab {

// A titled group of flags, listed in this order by --help. A compact group is one paragraph of
// `--name=default` (its flags' descriptions are one `--helpfull` away), for settings most runs
// leave alone, so that --help stays on one screen.
struct FlagGroup {
  std::string title;
  std::vector<std::string> flags;
  bool compact = false;
};

// `--name=default` as --help shows it.
inline std::string FlagWithDefault(const gflags::CommandLineFlagInfo& info) {
  std::string head = "--" + info.name;
  if (info.type == "string") return head + "=\"" + info.default_value + "\"";
  if (info.type == "double") {
    char shortest[32];
    std::snprintf(shortest, sizeof shortest, "%g",
                  std::strtod(info.default_value.c_str(), nullptr));
    return head + "=" + shortest;
  }
  return head + "=" + info.default_value;
}

// `--name=default  help`, the help wrapped at 100 columns under a 30-column name field.
inline std::string FormatFlagHelp(const gflags::CommandLineFlagInfo& info) {
  const std::string head = "  " + FlagWithDefault(info);
  constexpr size_t kNameWidth = 30, kWidth = 100;
  std::string out = head;
  size_t column = head.size();
  if (column + 2 > kNameWidth) {
    out += "\n";
    column = 0;
  }
  const std::string indent(kNameWidth, ' ');
  out += std::string(kNameWidth - column, ' ');
  column = kNameWidth;
  std::string_view text = info.description;
  while (!text.empty()) {
    size_t end = text.find(' ');
    std::string_view word = text.substr(0, end);
    if (column > kNameWidth && column + 1 + word.size() > kWidth) {
      out += "\n" + indent;
      column = kNameWidth;
    } else if (column > kNameWidth) {
      out += " ";
      ++column;
    }
    out += word;
    column += word.size();
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
  }
  return out + "\n";
}

// The text `--help` prints: usage, then each group's flags (unknown names are skipped), then
// `epilogue` (if any), then one line pointing to --helpfull.
inline std::string FormatHelp(const std::string& usage, const std::vector<FlagGroup>& groups,
                              const std::string& epilogue = "") {
  std::string out = usage;
  if (!out.empty() && out.back() != '\n') out += '\n';
  for (const FlagGroup& g : groups) {
    std::string body;
    size_t column = 0;
    for (const std::string& name : g.flags) {
      gflags::CommandLineFlagInfo info;
      if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) continue;
      if (!g.compact) {
        body += FormatFlagHelp(info);
        continue;
      }
      const std::string item = FlagWithDefault(info);  // "  --a=1 --b=2", wrapped at 100
      if (column > 0 && column + 1 + item.size() > 100) {
        body += "\n";
        column = 0;
      }
      body += column == 0 ? "  " + item : " " + item;
      column += (column == 0 ? 2 : 1) + item.size();
    }
    if (g.compact && !body.empty()) body += "\n";
    if (!body.empty()) out += "\n" + g.title + ":\n" + body;
  }
  if (!epilogue.empty()) out += "\n" + epilogue;
  out += "\n--helpfull lists every flag, LibTorch's, glog's and gflags' included.\n";
  return out;
}

// What ParseFlags did: parsed the flags for a run, or printed --help (the binary then exits 0).
enum class Parsed { kRun, kHelpShown };

// Parses argv into gflags' flags. --help (or -h) prints FormatHelp(usage, groups, epilogue) and
// returns kHelpShown; --helpfull, --helpon=FILE and --version do what gflags makes them do (they
// exit, as gflags does). Unlike gflags::ParseCommandLineFlags, a bad flag does not exit: the
// error comes back as one line ("unknown flag --x", "--lr=abc: not a valid double") for the
// caller to report. Arguments that are not flags (and everything after "--") are left in argv
// after the program name.
inline absl::StatusOr<Parsed> ParseFlags(int* argc, char*** argv, const std::string& usage,
                                         const std::vector<FlagGroup>& groups,
                                         const std::string& epilogue = "") {
  gflags::SetUsageMessage(usage);
  std::vector<char*> positional = {(*argv)[0]};
  std::string error;
  for (int i = 1; i < *argc; ++i) {
    const std::string arg = (*argv)[i];
    if (arg == "--") {
      for (++i; i < *argc; ++i) positional.push_back((*argv)[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back((*argv)[i]);
      continue;
    }
    const std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    const size_t eq = body.find('=');
    std::string name = body.substr(0, eq);
    if (name == "help" || name == "h") {
      std::fputs(FormatHelp(usage, groups, epilogue).c_str(), stdout);
      std::fflush(stdout);
      return Parsed::kHelpShown;
    }
    gflags::CommandLineFlagInfo info;
    std::string value;
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      // --noFLAG for a bool FLAG.
      if (eq == std::string::npos && name.rfind("no", 0) == 0 &&
          gflags::GetCommandLineFlagInfo(name.substr(2).c_str(), &info) && info.type == "bool") {
        name = name.substr(2);
        value = "false";
      } else {
        if (error.empty()) error = "unknown flag --" + name + " (--help lists the flags)";
        continue;
      }
    } else if (eq != std::string::npos) {
      value = body.substr(eq + 1);
    } else if (info.type == "bool") {
      value = "true";
    } else if (i + 1 < *argc) {
      value = (*argv)[++i];  // --flag value
    } else {
      if (error.empty()) error = "--" + name + " needs a value (--" + name + "=VALUE)";
      continue;
    }
    if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty() && error.empty()) {
      error = "--" + name + "=" + value + ": not a valid " + info.type +
              (info.type == "bool" ? " (true or false)" : "");
    }
  }
  *argc = static_cast<int>(positional.size());
  for (size_t i = 0; i < positional.size(); ++i) (*argv)[i] = positional[i];
  if (!error.empty()) return absl::InvalidArgumentError(error);
  gflags::HandleCommandLineHelpFlags();  // --helpfull, --version, ...
  return Parsed::kRun;
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_CLI_H_
