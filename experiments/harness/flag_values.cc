// FlagValues: the parsed command line, typed reads with range checks, and "a,b,c" lists.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "experiments/harness/options.h"

namespace trainlab::experiments {

absl::Status FlagError(const std::string& flag, const std::string& value, const std::string& want) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": ", want));
}

FlagValues FlagValues::Current(const std::vector<std::string>& names) {
  FlagValues v;
  for (const std::string& name : names) {
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) continue;
    v.values_[name] = Value{info.current_value, info.type, !info.is_default};
  }
  return v;
}

void FlagValues::ApplyDefaults(const std::vector<FlagDefault>& defaults, bool on_cpu,
                               bool from_preset) {
  for (const FlagDefault& d : defaults) {
    auto it = values_.find(d.flag);
    if (it == values_.end() || it->second.given || (d.cpu_only && !on_cpu)) continue;
    it->second.text = d.value;
    it->second.from_preset = from_preset;
  }
}

void FlagValues::Set(const std::string& flag, const std::string& text) {
  Value& v = values_.at(flag);
  v.text = text;
  v.given = true;
}

const FlagValues::Value& FlagValues::at(const std::string& flag) const {
  auto it = values_.find(flag);
  CHECK(it != values_.end()) << "--" << flag << " is not a flag of this binary";
  return it->second;
}

absl::StatusOr<int64_t> FlagValues::Int(const std::string& flag) const {
  int64_t n = 0;
  if (!absl::SimpleAtoi(at(flag).text, &n)) {
    return FlagError(flag, at(flag).text, absl::StrCat("not a valid ", at(flag).type));
  }
  return n;
}

absl::StatusOr<int64_t> FlagValues::IntIn(const std::string& flag, int64_t min, int64_t max,
                                          const std::string& want) const {
  TRAINLAB_ASSIGN_OR_RETURN(const int64_t n, Int(flag));
  if (n < min)
    return FlagError(flag, at(flag).text, want.empty() ? absl::StrCat("must be >= ", min) : want);
  if (n > max) return FlagError(flag, at(flag).text, absl::StrCat("must be <= ", max));
  return n;
}

absl::StatusOr<uint64_t> FlagValues::Uint(const std::string& flag) const {
  uint64_t n = 0;
  if (!absl::SimpleAtoi(at(flag).text, &n)) {
    return FlagError(flag, at(flag).text, absl::StrCat("not a valid ", at(flag).type));
  }
  return n;
}

absl::StatusOr<double> FlagValues::Double(const std::string& flag) const {
  double d = 0;
  if (!absl::SimpleAtod(at(flag).text, &d)) {
    return FlagError(flag, at(flag).text, absl::StrCat("not a valid ", at(flag).type));
  }
  return d;
}

absl::StatusOr<std::vector<std::string>> FlagValues::List(const std::string& flag) const {
  return SplitList(flag, at(flag).text);
}

absl::StatusOr<std::vector<int64_t>> FlagValues::IntList(const std::string& flag, int64_t min,
                                                         int64_t max,
                                                         const std::string& what) const {
  const std::string& text = at(flag).text;
  TRAINLAB_ASSIGN_OR_RETURN(const std::vector<std::string> items, SplitList(flag, text));
  std::vector<int64_t> out;
  for (const std::string& item : items) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(item, &n) || n < min || n > max) {
      return FlagError(flag, text,
                       absl::StrCat("'", item, "' is not ", what, " (", min, " to ", max, ")"));
    }
    out.push_back(n);
  }
  return out;
}

nlohmann::json FlagValues::Typed(const std::string& flag) const {
  const Value& v = at(flag);
  if (v.type == "bool") return v.text == "true";
  if (v.type == "int32" || v.type == "int64") {
    int64_t n = 0;
    if (absl::SimpleAtoi(v.text, &n)) return n;
  }
  if (v.type == "uint64" || v.type == "uint32") {
    uint64_t n = 0;
    if (absl::SimpleAtoi(v.text, &n)) return n;
  }
  if (v.type == "double") {
    double d = 0;
    if (absl::SimpleAtod(v.text, &d) && std::isfinite(d)) return d;
  }
  return v.text;
}

absl::StatusOr<std::vector<std::string>> SplitList(const std::string& flag,
                                                   const std::string& value) {
  std::vector<std::string> out;
  for (const std::string& item : std::vector<std::string>(absl::StrSplit(value, ','))) {
    if (item.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=", value, ": empty item in the list"));
    }
    if (std::find(out.begin(), out.end(), item) != out.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", value, ": '", item,
                                                     "' is listed twice (each runs once; --repeats "
                                                     "runs each again)"));
    }
    out.push_back(item);
  }
  return out;
}

}  // namespace trainlab::experiments
