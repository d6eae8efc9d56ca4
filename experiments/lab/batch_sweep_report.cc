// batch_sweep's section: per batch size, the training time per image, images per second, the
// mean epoch time, the last epoch's loss and top-1 (test top-1 when evaluated); the batch that
// trains fastest per image and what it costs in accuracy against the most accurate; both curves
// against the batch size as a plot.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "experiments/reporting/experiment_report.h"

namespace trainlab::experiments {
namespace {

// Training time (forward, loss, backward, optimizer step, synchronised) per image over the run.
double SecondsPerImage(const RunResult& r) {
  double train = 0, images = 0;
  for (const EpochStats& e : r.epochs) {
    train += e.train_s;
    images += static_cast<double>(e.samples);
  }
  return images > 0 ? train / images : 0;
}

// The last epoch's test top-1 when the run was evaluated, else its training top-1.
double FinalTop1(const RunResult& r) {
  if (!r.test.empty()) return r.test.back().top1;
  return r.epochs.empty() ? 0 : r.epochs.back().top1;
}

struct Row {
  const VariantResult* v;
  int64_t batch;
  Spread per_image, top1;
};

std::vector<Row> Rows(const ExperimentResult& result) {
  std::vector<Row> rows;
  for (const VariantResult& v : result.variants) {
    if (v.repeats.empty()) continue;
    rows.push_back({.v = &v,
                    .batch = v.params.value("batch_size", int64_t{0}),
                    .per_image = v.Of(SecondsPerImage),
                    .top1 = v.Of(FinalTop1)});
  }
  return rows;
}

Section BatchSweepSection(const ExperimentResult& result) {
  Section s;
  const std::vector<Row> rows = Rows(result);
  if (rows.empty()) return s;
  const bool tested = !rows.front().v->repeats.front().test.empty();
  const std::string top1_name = tested ? "test top-1 %" : "train top-1 %";
  Table t{.header = {"batch", "lr", "time per image", "images/s", "epoch time (mean)",
                     "loss (last epoch)", top1_name}};
  Series time{"training time per image, ms (left axis)", {}};
  Series top1{top1_name + " (right axis)", {}, true};
  for (const Row& r : rows) {
    const Spread ms{r.per_image.median * 1e3, r.per_image.min * 1e3, r.per_image.max * 1e3,
                    r.per_image.n};
    t.rows.push_back(
        {std::to_string(r.batch), absl::StrFormat("%g", r.v->params.value("lr", 0.0)),
         FormatValue(ms, 3, " ms"),
         absl::StrFormat("%.1f", r.per_image.median > 0 ? 1 / r.per_image.median : 0.0),
         FormatSeconds(r.v->MeanOf(&EpochStats::epoch_s)),
         FormatValue(r.v->LastOf(&EpochStats::loss), 4), FormatValue(r.top1, 2)});
    time.points.emplace_back(static_cast<double>(r.batch), ms.median);
    top1.points.emplace_back(static_cast<double>(r.batch), r.top1.median);
  }
  s.AddTable(std::move(t));
  // The first of equals wins: the smaller batch, when it is as good.
  const Row* fastest = &rows.front();
  const Row* best = &rows.front();
  for (const Row& r : rows) {
    if (r.per_image.median < fastest->per_image.median) fastest = &r;
    if (r.top1.median > best->top1.median) best = &r;
  }
  const int epochs = static_cast<int>(fastest->v->repeats.front().epochs.size());
  std::string answer = absl::StrFormat(
      "batch **%d** trains fastest per image (%.3f ms, %s the time per image of batch %d)",
      fastest->batch, fastest->per_image.median * 1e3,
      FormatRatio(fastest->per_image, rows.front().per_image), rows.front().batch);
  if (fastest == best || fastest->top1.median >= best->top1.median) {
    absl::StrAppend(&answer, absl::StrFormat(", and reaches the best %s after %d epochs (%.2f%%): "
                                             "it costs nothing in accuracy here.",
                                             top1_name, epochs, fastest->top1.median));
  } else {
    absl::StrAppend(
        &answer,
        absl::StrFormat("; after %d epochs its %s is %.2f%% against %.2f%% at batch %d: it "
                        "costs **%.2f points**.",
                        epochs, top1_name, fastest->top1.median, best->top1.median, best->batch,
                        best->top1.median - fastest->top1.median));
  }
  s.AddAnswer(answer);
  for (const VariantResult& v : result.variants) {
    if (!v.skipped.empty()) s.AddText(absl::StrCat("Skipped: ", v.label, ": ", v.skipped, "."));
  }
  s.AddText(
      "The rate is scaled linearly with the batch and warmed up (the run's settings in the "
      "results file); time per image is the training time (forward, loss, backward, optimizer "
      "step, synchronised) over the images trained.");
  s.AddPlot({.file = "batch_sweep.svg",
             .title = "Batch sweep: time per image and top-1 against the batch size",
             .xlabel = "batch size",
             .ylabel = "training time per image, ms",
             .series = {std::move(time), std::move(top1)},
             .y2label = top1_name,
             .from_zero = true,
             .log_x = true});
  return s;
}

const bool kRegistered = ReportRegistry::Global().Register(
    "batch_sweep",
    {.title = "Batch sweep: speed and accuracy against the batch size",
     .question = "Which batch size trains fastest per image, and what does it cost in accuracy?",
     .section = BatchSweepSection});

}  // namespace
}  // namespace trainlab::experiments
