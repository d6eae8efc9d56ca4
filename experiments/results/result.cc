#include "experiments/results/result.h"

#include <algorithm>
#include <cmath>

namespace trainlab::experiments {

double RunResult::total(double EpochStats::*field) const {
  double sum = 0;
  for (const EpochStats& e : epochs) sum += e.*field;
  return sum;
}

double RunResult::mean(double EpochStats::*field) const {
  return epochs.empty() ? 0.0 : total(field) / static_cast<double>(epochs.size());
}

LoaderStageTimes RunResult::total_stages() const {
  LoaderStageTimes t;
  for (const LoaderStageTimes& s : loader_stages) t += s;
  return t;
}

Spread VariantResult::Of(const std::function<double(const RunResult&)>& metric) const {
  std::vector<double> values;
  for (const RunResult& r : repeats) values.push_back(metric(r));
  return Spread::Of(std::move(values));
}

Spread VariantResult::MeanOf(double EpochStats::*field) const {
  return Of([field](const RunResult& r) { return r.mean(field); });
}

Spread VariantResult::TotalOf(double EpochStats::*field) const {
  return Of([field](const RunResult& r) { return r.total(field); });
}

Spread VariantResult::LastOf(double EpochStats::*field) const {
  return Of([field](const RunResult& r) {
    return r.epochs.empty() ? std::nan("") : r.epochs.back().*field;
  });
}

Spread VariantResult::TotalTime() const {
  return Of([](const RunResult& r) { return r.total_s; });
}

bool VariantResult::diverged() const {
  return std::any_of(repeats.begin(), repeats.end(),
                     [](const RunResult& r) { return r.diverged.has_value(); });
}

const std::optional<Divergence>& VariantResult::first_divergence() const {
  static const std::optional<Divergence> kNone;
  for (const RunResult& r : repeats) {
    if (r.diverged) return r.diverged;
  }
  return kNone;
}

const VariantResult* ExperimentResult::Find(const std::string& label) const {
  for (const VariantResult& v : variants) {
    if (v.label == label && v.skipped.empty() && !v.repeats.empty()) return &v;
  }
  return nullptr;
}

}  // namespace trainlab::experiments
