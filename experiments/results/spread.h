// The median and range of one figure over repeated runs (--repeats), and how many digits a
// figure or a ratio of two figures deserves given that range.
//
// Timings on a shared machine move 10-20% from run to run; a ratio printed as 1.0734x from one
// run of each claims a precision it does not have. Example:
//   Spread s = Spread::Of({12.1, 12.9, 12.4});    // median 12.4, min 12.1, max 12.9
//   FormatSeconds(s)                               // "12.4000s (12.1000-12.9000)"
//   FormatRatio(Spread::Of({10}), s)               // "0.8x": a 6% spread leaves one decimal
#ifndef TRAINLAB_EXPERIMENTS_RESULTS_SPREAD_H_
#define TRAINLAB_EXPERIMENTS_RESULTS_SPREAD_H_

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"

namespace trainlab::experiments {

struct Spread {
  double median = 0, min = 0, max = 0;
  int n = 0;

  static Spread Of(std::vector<double> values) {
    Spread s;
    s.n = static_cast<int>(values.size());
    if (values.empty()) return s;
    std::sort(values.begin(), values.end());
    const size_t m = values.size() / 2;
    s.median = values.size() % 2 ? values[m] : (values[m - 1] + values[m]) / 2;
    s.min = values.front();
    s.max = values.back();
    return s;
  }
  // (max - min) / median; 0 for a single value.
  double relative() const { return n > 1 && median != 0 ? (max - min) / std::fabs(median) : 0.0; }
};

// "1.2345s", or "1.2345s (1.2000-1.3000)" when there was more than one run.
inline std::string FormatSeconds(double s) { return absl::StrFormat("%.4fs", s); }
inline std::string FormatSeconds(const Spread& s) {
  if (s.n <= 1) return FormatSeconds(s.median);
  return absl::StrFormat("%.4fs (%.4f-%.4f)", s.median, s.min, s.max);
}

// A figure with `decimals` digits, and its range when the runs differed: "2.3456",
// "2.3456 (2.3000-2.4000)"; `unit` follows the median ("12.50%").
inline std::string FormatValue(const Spread& s, int decimals, const char* unit = "") {
  if (s.n <= 1 || s.min == s.max) return absl::StrFormat("%.*f%s", decimals, s.median, unit);
  return absl::StrFormat("%.*f%s (%.*f-%.*f)", decimals, s.median, unit, decimals, s.min, decimals,
                         s.max);
}

// Decimals a ratio of `a` and `b` deserves: two for single runs (no spread known) or a spread
// under 1%, one under 10%... i.e. ceil(-log10(relative spread)), between 0 and 2.
inline int RatioDecimals(const Spread& a, const Spread& b) {
  const double rel = std::max(a.relative(), b.relative());
  if (rel <= 0) return 2;
  return std::clamp(static_cast<int>(std::ceil(-std::log10(rel))), 0, 2);
}

// "a / b" as "1.23x", with the digits the two spreads allow; "n/a" when b is 0.
inline std::string FormatRatio(const Spread& a, const Spread& b) {
  if (b.median == 0) return "n/a";
  return absl::StrFormat("%.*fx", RatioDecimals(a, b), a.median / b.median);
}

}  // namespace trainlab::experiments

#endif  // TRAINLAB_EXPERIMENTS_RESULTS_SPREAD_H_
