// Typed reads out of JSON that came from a file (a results file, a checkpoint's metadata), where
// every error names the field by its path and says what was expected and what was there:
//   summary.best_workers_total: expected an integer, got the string "4"
//   configs[2].runs[0].epochs[1].loss: expected a number, got null
//   summary.best_workers_total: 100000 is out of range (0 to 1024)
// The caller puts the file in front ("/tmp/r/c3.json: ..."). Nothing here throws.
//
// Example:
//   JsonReader r(doc);
//   TRAINLAB_ASSIGN_OR_RETURN(int64_t n, r.Int("best_workers_total", 0, 1024));
//   TRAINLAB_ASSIGN_OR_RETURN(std::vector<JsonReader> runs, r.Array("runs"));
#ifndef TRAINLAB_EXPERIMENTS_RESULTS_JSON_READER_H_
#define TRAINLAB_EXPERIMENTS_RESULTS_JSON_READER_H_

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace trainlab::experiments {

// JSON has no NaN or infinity: such a double is written as the string "nan", "inf" or "-inf".
inline nlohmann::json JsonNumber(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
}

class JsonReader {
 public:
  explicit JsonReader(const nlohmann::json& j, std::string path = "")
      : j_(&j), path_(std::move(path)) {}

  const nlohmann::json& json() const { return *j_; }
  const std::string& path() const { return path_; }
  bool Has(std::string_view key) const { return j_->is_object() && j_->contains(std::string(key)); }

  // This value as an object (an error when it is not one).
  absl::Status ExpectObject() const {
    return j_->is_object() ? absl::OkStatus() : Wrong(path_, "an object", *j_);
  }

  absl::StatusOr<JsonReader> Object(std::string_view key) const {
    const nlohmann::json* v;
    if (absl::Status st = Field(key, &v); !st.ok()) return st;
    if (!v->is_object()) return Wrong(Path(key), "an object", *v);
    return JsonReader(*v, Path(key));
  }

  // Each element of the array `key`.
  absl::StatusOr<std::vector<JsonReader>> Array(std::string_view key) const {
    const nlohmann::json* v;
    if (absl::Status st = Field(key, &v); !st.ok()) return st;
    return Elements(*v, Path(key));
  }
  // This value's elements (it must be an array).
  absl::StatusOr<std::vector<JsonReader>> Elements() const { return Elements(*j_, path_); }

  absl::StatusOr<int64_t> Int(std::string_view key,
                              int64_t min = std::numeric_limits<int64_t>::min(),
                              int64_t max = std::numeric_limits<int64_t>::max()) const {
    const nlohmann::json* v;
    if (absl::Status st = Field(key, &v); !st.ok()) return st;
    return AsInt(*v, Path(key), min, max);
  }
  // A number, or one of JsonNumber's strings for NaN and infinities.
  absl::StatusOr<double> Number(std::string_view key) const {
    const nlohmann::json* v;
    if (absl::Status st = Field(key, &v); !st.ok()) return st;
    return AsNumber(*v, Path(key));
  }
  absl::StatusOr<std::string> String(std::string_view key) const {
    const nlohmann::json* v;
    if (absl::Status st = Field(key, &v); !st.ok()) return st;
    if (!v->is_string()) return Wrong(Path(key), "a string", *v);
    return v->get<std::string>();
  }
  absl::StatusOr<bool> Bool(std::string_view key) const {
    const nlohmann::json* v;
    if (absl::Status st = Field(key, &v); !st.ok()) return st;
    if (!v->is_boolean()) return Wrong(Path(key), "true or false", *v);
    return v->get<bool>();
  }

  // Elements of an array of scalars, by index.
  absl::StatusOr<int64_t> IntAt(size_t i, int64_t min = std::numeric_limits<int64_t>::min(),
                                int64_t max = std::numeric_limits<int64_t>::max()) const {
    const nlohmann::json* v;
    if (absl::Status st = At(i, &v); !st.ok()) return st;
    return AsInt(*v, Index(i), min, max);
  }
  absl::StatusOr<double> NumberAt(size_t i) const {
    const nlohmann::json* v;
    if (absl::Status st = At(i, &v); !st.ok()) return st;
    return AsNumber(*v, Index(i));
  }

 private:
  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", std::string(key));
  }
  std::string Index(size_t i) const { return absl::StrCat(path_, "[", i, "]"); }

  static std::string Describe(const nlohmann::json& v) {
    switch (v.type()) {
      case nlohmann::json::value_t::null:
        return "null";
      case nlohmann::json::value_t::boolean:
        return absl::StrCat("the boolean ", v.dump());
      case nlohmann::json::value_t::string: {
        std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (s.size() > 40) s = s.substr(0, 37) + "...";
        return absl::StrCat("the string ", s);
      }
      case nlohmann::json::value_t::array:
        return "an array";
      case nlohmann::json::value_t::object:
        return "an object";
      case nlohmann::json::value_t::number_float:
        return absl::StrCat("the number ", v.dump());
      default:
        return absl::StrCat("the number ", v.dump());
    }
  }
  static absl::Status Wrong(const std::string& path, const char* want, const nlohmann::json& v) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected ", want, ", got ", Describe(v)));
  }

  absl::Status Field(std::string_view key, const nlohmann::json** out) const {
    if (!j_->is_object()) return Wrong(path_.empty() ? "the document" : path_, "an object", *j_);
    auto it = j_->find(std::string(key));
    if (it == j_->end()) return absl::InvalidArgumentError(absl::StrCat(Path(key), ": missing"));
    *out = &*it;
    return absl::OkStatus();
  }
  absl::Status At(size_t i, const nlohmann::json** out) const {
    if (!j_->is_array()) return Wrong(path_, "an array", *j_);
    if (i >= j_->size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": expected at least ", i + 1, " elements, got ", j_->size()));
    }
    *out = &(*j_)[i];
    return absl::OkStatus();
  }
  static absl::StatusOr<std::vector<JsonReader>> Elements(const nlohmann::json& v,
                                                          const std::string& path) {
    if (!v.is_array()) return Wrong(path, "an array", v);
    std::vector<JsonReader> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) out.emplace_back(v[i], absl::StrCat(path, "[", i, "]"));
    return out;
  }
  static absl::StatusOr<int64_t> AsInt(const nlohmann::json& v, const std::string& path,
                                       int64_t min, int64_t max) {
    int64_t n = 0;
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() &&
          v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": ", v.dump(), " is too large"));
      }
      n = v.get<int64_t>();
    } else {
      return Wrong(path, "an integer", v);
    }
    if (n < min || n > max) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", n, " is out of range (", min, " to ", max, ")"));
    }
    return n;
  }
  static absl::StatusOr<double> AsNumber(const nlohmann::json& v, const std::string& path) {
    if (v.is_number()) return v.get<double>();
    if (v.is_string()) {
      const std::string s = v.get<std::string>();
      if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
      if (s == "inf") return std::numeric_limits<double>::infinity();
      if (s == "-inf") return -std::numeric_limits<double>::infinity();
    }
    return Wrong(path, "a number", v);
  }

  const nlohmann::json* j_;
  std::string path_;
};

// Every string in `j` (keys included) made valid UTF-8, bytes that are not written as "\xFF":
// a path or argument with such bytes is kept, readable, instead of failing the whole write.
inline nlohmann::json ValidUtf8(const nlohmann::json& j);

namespace json_internal {

inline bool ValidUtf8At(const std::string& s, size_t i, size_t* len) {
  const auto c = static_cast<unsigned char>(s[i]);
  int n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return false;
  uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
  for (int k = 1; k < n; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d >> 6) != 0x2) return false;
    cp = (cp << 6) | (d & 0x3f);
  }
  // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
    return false;
  }
  *len = static_cast<size_t>(n);
  return true;
}

}  // namespace json_internal

// `s` with each byte that is not part of valid UTF-8 written as "\xHH".
inline std::string EscapeInvalidUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    if (json_internal::ValidUtf8At(s, i, &len)) {
      out.append(s, i, len);
      i += len;
    } else {
      static const char kHex[] = "0123456789ABCDEF";
      const auto b = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
      ++i;
    }
  }
  return out;
}

inline nlohmann::json ValidUtf8(const nlohmann::json& j) {
  if (j.is_string()) return EscapeInvalidUtf8(j.get<std::string>());
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const nlohmann::json& e : j) out.push_back(ValidUtf8(e));
    return out;
  }
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = j.begin(); it != j.end(); ++it)
      out[EscapeInvalidUtf8(it.key())] = ValidUtf8(*it);
    return out;
  }
  return j;
}

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_RESULTS_JSON_READER_H_
