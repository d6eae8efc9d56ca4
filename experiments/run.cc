#include "experiments/run.h"

#include <torch/optim/optimizer.h>
#include <torch/utils.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/optimizer.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "core/trainer.h"
#include "experiments/progress.h"
#include "plugins/models/resnet18.h"

namespace trainlab::experiments {

double RunResult::total(double EpochStats::*field) const {
  double sum = 0;
  for (const EpochStats& e : epochs) sum += e.*field;
  return sum;
}

double RunResult::mean(double EpochStats::*field) const {
  return epochs.empty() ? 0.0 : total(field) / static_cast<double>(epochs.size());
}

Spread ConfigResult::Of(const std::function<double(const RunResult&)>& metric) const {
  std::vector<double> values;
  for (const RunResult& r : repeats) values.push_back(metric(r));
  return Spread::Of(std::move(values));
}

Spread ConfigResult::MeanOf(double EpochStats::*field) const {
  return Of([field](const RunResult& r) { return r.mean(field); });
}

Spread ConfigResult::TotalOf(double EpochStats::*field) const {
  return Of([field](const RunResult& r) { return r.total(field); });
}

bool ConfigResult::diverged() const {
  return std::any_of(repeats.begin(), repeats.end(),
                     [](const RunResult& r) { return r.diverged.has_value(); });
}

absl::StatusOr<RunResult> RunTraining(const Session& session, const RunConfig& config, int repeat) {
  torch::manual_seed(config.seed);
  models::ResNet18 model(models::ResNet18Options().batch_norm(config.batch_norm));
  model->to(config.device);

  TRAINLAB_ASSIGN_OR_RETURN(const OptimizerEntry* entry,
                            OptimizerRegistry::Global().Find(config.optimizer));
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<torch::optim::Optimizer> optimizer,
                            entry->make(model->parameters(), config.optimizer_settings));
  TRAINLAB_ASSIGN_OR_RETURN(StepOptions step, ResolveStrategies(config.strategy, config.device));
  TraceRecorder* trace = config.record_trace ? session.trace.get() : nullptr;

  data::LoaderOptions lo;
  lo.batch_size = config.batch_size;
  lo.num_workers = config.num_workers;
  lo.seed = config.seed;
  lo.max_batches = config.max_batches_per_epoch;
  lo.pin_memory = config.device.is_cuda();
  lo.trace = trace;
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<data::BatchLoader> loader,
                            data::BatchLoader::Create(session.train, lo));
  std::unique_ptr<data::BatchLoader> test_loader;
  if (config.evaluate) {
    data::LoaderOptions to = lo;
    to.shuffle = false;
    to.augment = false;
    to.trace = nullptr;
    TRAINLAB_ASSIGN_OR_RETURN(test_loader, data::BatchLoader::Create(session.test, to));
  }

  ProgressLine progress(session.progress,
                        absl::StrCat(session.config.experiment, " ", config.label), config.epochs);
  TrainerOptions topts;
  topts.device = config.device;
  topts.step = step;
  topts.optimizer_capturable = entry->capturable;
  topts.trace = trace;
  topts.on_batch = [&progress](const EpochProgress& p) { progress.Update(p); };
  Trainer<models::ResNet18Impl, torch::optim::Optimizer, data::BatchLoader> trainer(
      *model, *optimizer, *loader, topts);
  RunResult result;
  result.repeat = repeat;
  for (int e = 0; e < config.epochs; ++e) {
    absl::StatusOr<EpochStats> epoch = trainer.TrainEpoch(e);
    progress.Clear();
    TRAINLAB_RETURN_IF_ERROR(epoch.status());
    EpochStats& stats = *epoch;
    result.loader_stages.push_back(loader->stage_times());
    result.total_s += stats.epoch_s;
    if (config.print_blocks) std::fputs(FormatLabBlock(stats).c_str(), stdout);
    if (stats.diverged) {
      result.diverged = stats.diverged;
      std::printf("Diverged: %s, epoch %" PRId64 ", batch %" PRId64 ": loss %g; run stopped.\n",
                  config.label.c_str(), stats.diverged->epoch, stats.diverged->batch,
                  stats.diverged->loss);
      result.epochs.push_back(std::move(stats));
      break;
    }
    result.epochs.push_back(std::move(stats));
    if (test_loader) {
      EvalStats t = trainer.Evaluate(*test_loader, e);
      result.test.push_back(t);
      if (config.print_blocks) {
        std::printf("- Test Loss: %.4f, Test Accuracy (Top-1): %.2f%% (%" PRId64 " images)\n",
                    t.loss, t.top1, t.samples);
      }
    }
    std::fflush(stdout);
  }
  return result;
}

absl::StatusOr<ConfigResult> RunVariant(const Session& session, const Variant& variant,
                                        bool skip_on_error) {
  ConfigResult out;
  out.label = variant.label;
  out.config = variant.config;
  out.config.label = variant.label;
  out.params = variant.params;
  const int n = session.config.repeats;
  const std::string& header = variant.header.empty() ? variant.label : variant.header;
  for (int i = 1; i <= n; ++i) {
    if (out.config.print_blocks && (variant.announce || n > 1)) {
      if (n > 1) {
        std::printf("\n##### %s (repeat %d/%d) #####\n", header.c_str(), i, n);
      } else {
        std::printf("\n##### %s #####\n", header.c_str());
      }
      std::fflush(stdout);
    }
    absl::StatusOr<RunResult> r = RunTraining(session, out.config, i);
    if (!r.ok()) {
      if (!skip_on_error) return r.status();
      out.skipped = std::string(r.status().message());
      out.repeats.clear();
      return out;
    }
    out.repeats.push_back(std::move(*r));
  }
  return out;
}

void PrintRecap(const std::vector<ConfigResult>& configs) {
  std::printf("\n===== Recap (averages over each run's epochs) =====\n");
  std::printf("%-22s %16s %10s %12s  %s\n", "run", "train s/epoch", "loss", "top-1 %", "note");
  struct Row {
    std::string label;
    double train, loss, top1;
  };
  std::vector<Row> ok;
  for (const ConfigResult& c : configs) {
    const Spread train = c.MeanOf(&EpochStats::train_s), loss = c.MeanOf(&EpochStats::loss),
                 top1 = c.MeanOf(&EpochStats::top1);
    std::string note;
    for (const RunResult& r : c.repeats) {
      if (r.diverged) {
        note = absl::StrFormat("diverged at epoch %d, batch %d (loss %g)", r.diverged->epoch,
                               r.diverged->batch, r.diverged->loss);
      }
    }
    if (note.empty()) ok.push_back({c.label, train.median, loss.median, top1.median});
    if (train.n > 1 && note.empty()) {
      note = absl::StrFormat("median of %d runs; train %.4f-%.4f", train.n, train.min, train.max);
    }
    std::printf("%-22s %16.4f %10.4f %12.2f  %s\n", c.label.c_str(), train.median, loss.median,
                top1.median, note.c_str());
  }
  auto rank = [&](const char* what, auto key, bool ascending) {
    std::vector<Row> sorted = ok;
    std::stable_sort(sorted.begin(), sorted.end(), [&](const Row& a, const Row& b) {
      return ascending ? key(a) < key(b) : key(a) > key(b);
    });
    std::printf("Ranking by %s:", what);
    for (size_t i = 0; i < sorted.size(); ++i)
      std::printf("%s %zu. %s", i ? "," : "", i + 1, sorted[i].label.c_str());
    std::printf("%s\n", sorted.empty() ? " (no run finished)" : "");
  };
  rank(
      "training time (fastest first)", [](const Row& r) { return r.train; }, true);
  rank(
      "loss (lowest first)", [](const Row& r) { return r.loss; }, true);
  rank(
      "top-1 accuracy (highest first)", [](const Row& r) { return r.top1; }, false);
}

}  // namespace trainlab::experiments
