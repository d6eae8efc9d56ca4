#include "experiments/reporting/recap.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace trainlab::experiments {
namespace {

struct Row {
  std::string label;
  double train, loss, top1;
};

// Labels sorted by `key`, stable; "(no run finished)" when there is none.
template <class Key>
std::string Ranking(std::vector<Row> rows, Key key, bool ascending) {
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    return ascending ? key(a) < key(b) : key(a) > key(b);
  });
  std::vector<std::string> names;
  for (const Row& r : rows) names.push_back(r.label);
  return names.empty() ? std::string("(no run finished)") : absl::StrJoin(names, ", ");
}

}  // namespace

Section RecapSection(const ExperimentResult& result, const std::string& name,
                     const std::string& what) {
  Section s;
  Table t{.header = {what, "train s/epoch", "loss (mean over epochs)", "top-1 % (mean)", "note"}};
  std::vector<Row> finished;  // the variants that did not diverge: they are ranked
  std::vector<Series> loss, top1;
  for (const VariantResult& v : result.variants) {
    const Spread train = v.MeanOf(&EpochStats::train_s), l = v.MeanOf(&EpochStats::loss),
                 acc = v.MeanOf(&EpochStats::top1);
    std::string note;
    if (const std::optional<Divergence>& d = v.first_divergence()) {
      note = absl::StrCat("diverged at epoch ", d->epoch, ", batch ", d->batch);
    } else if (!v.repeats.empty()) {
      finished.push_back({v.label, train.median, l.median, acc.median});
    }
    if (!v.skipped.empty()) note = absl::StrCat("skipped: ", v.skipped);
    t.rows.push_back({v.label, FormatSeconds(train), FormatValue(l, 4), FormatValue(acc, 2), note});
    Series ls{v.label, {}}, ts{v.label, {}};
    if (!v.repeats.empty()) {
      for (const EpochStats& e : v.repeats.front().epochs) {
        ls.points.emplace_back(e.epoch, e.loss);
        ts.points.emplace_back(e.epoch, e.top1);
      }
    }
    loss.push_back(std::move(ls));
    top1.push_back(std::move(ts));
  }
  s.AddTable(std::move(t));
  s.AddAnswer(absl::StrCat("by training time, fastest first: ",
                           Ranking(
                               finished, [](const Row& r) { return r.train; }, true),
                           ". By loss, lowest first: ",
                           Ranking(
                               finished, [](const Row& r) { return r.loss; }, true),
                           ". By top-1, highest first: ",
                           Ranking(
                               finished, [](const Row& r) { return r.top1; }, false),
                           "."));
  const std::string upper = absl::AsciiStrToUpper(name);
  s.AddPlot({.file = name + "_loss.svg",
             .title = upper + ": training loss per epoch",
             .xlabel = "epoch",
             .ylabel = "loss (mean over the epoch's batches)",
             .series = std::move(loss)});
  s.AddPlot({.file = name + "_top1.svg",
             .title = upper + ": training top-1 per epoch",
             .xlabel = "epoch",
             .ylabel = "top-1 %",
             .series = std::move(top1),
             .from_zero = true});
  return s;
}

}  // namespace trainlab::experiments
