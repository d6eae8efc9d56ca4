// C4: one loader worker against the best count, side by side per epoch (data loading,
// training, epoch time), and a measured breakdown of the loader's stages (read, crop, flip,
// normalise, batch assembly) next to the time the trainer waited, so that "why is one worker
// slower" has a measured answer. --trace=FILE.json writes a Chrome trace of both runs.
//
// The best count: --best_workers when given, else C3's best for total runtime from
// --results_dir/c3.json, else a one-epoch sweep of 0, 2, 4, 8 workers.
//
//   bazel run //experiments:c4 -- --max_batches_per_epoch=10 --epochs=2 --best_workers=2
//   --trace=c4.json
#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experiments/experiment.h"

namespace trainlab::experiments {
namespace {

absl::StatusOr<int> SweepForBest(const Session& session) {
  std::printf("Finding the best worker count (one epoch each of 0, 2, 4, 8 workers)...\n");
  int best = 0;
  double best_load = 0;
  for (int n : {0, 2, 4, 8}) {
    RunConfig c = session.DefaultRun();
    c.label = absl::StrCat(n, " workers (sweep)");
    c.num_workers = n;
    c.epochs = 1;
    c.print_blocks = false;
    c.evaluate = false;
    c.record_trace = false;
    TRAINLAB_ASSIGN_OR_RETURN(RunResult r, RunTraining(session, c));
    const double load = r.total(&EpochStats::load_s);
    std::printf("  %d workers: data loading %s\n", n, FormatSeconds(load).c_str());
    if (n == 0 || load < best_load) {
      best = n;
      best_load = load;
    }
  }
  return best;
}

absl::StatusOr<std::pair<int, std::string>> BestWorkers(const Session& session) {
  const ExperimentConfig& c = session.config;
  if (c.best_workers >= 0)
    return std::make_pair(c.best_workers, std::string("from --best_workers"));
  TRAINLAB_ASSIGN_OR_RETURN(std::optional<int> c3_best, C3BestWorkers(session));
  if (c3_best) {
    return std::make_pair(*c3_best, absl::StrCat("C3's best for total runtime, from ",
                                                 session.ResultsDir(), "/c3.json"));
  }
  TRAINLAB_ASSIGN_OR_RETURN(int best, SweepForBest(session));
  return std::make_pair(best, std::string("from a one-epoch sweep of 0, 2, 4, 8 workers"));
}

void PrintStages(const ConfigResult& c) {
  data::LoaderStageTimes t;
  for (const auto& e : c.repeats.front().loader_stages) {
    t.read_s += e.read_s;
    t.crop_s += e.crop_s;
    t.flip_s += e.flip_s;
    t.normalize_s += e.normalize_s;
    t.assemble_s += e.assemble_s;
    t.images += e.images;
  }
  const double wait = c.repeats.front().total(&EpochStats::load_s);
  std::printf(
      "%-12s read %s | crop %s | flip %s | normalise %s | assemble %s | loader work %s "
      "(%.0f images/s per thread) | trainer waited %s\n",
      c.label.c_str(), FormatSeconds(t.read_s).c_str(), FormatSeconds(t.crop_s).c_str(),
      FormatSeconds(t.flip_s).c_str(), FormatSeconds(t.normalize_s).c_str(),
      FormatSeconds(t.assemble_s).c_str(), FormatSeconds(t.total_s()).c_str(),
      t.total_s() > 0 ? t.images / t.total_s() : 0.0, FormatSeconds(wait).c_str());
}

absl::StatusOr<ExperimentResult> RunC4(Session& session) {
  TRAINLAB_ASSIGN_OR_RETURN(auto best_and_source, BestWorkers(session));
  const auto& [best, source] = best_and_source;
  std::printf("Best worker count: %d (%s)\n", best, source.c_str());
  ExperimentResult result;
  for (int n : {1, best}) {
    Variant v{.label = absl::StrCat(n, n == 1 ? " worker" : " workers"),
              .config = session.DefaultRun(),
              .params = {{"num_workers", n}}};
    v.config.num_workers = n;
    TRAINLAB_ASSIGN_OR_RETURN(ConfigResult r, RunVariant(session, v));
    result.configs.push_back(std::move(r));
  }
  const ConfigResult& one = result.configs[0];
  const ConfigResult& many = result.configs[1];
  std::printf("\n===== C4: 1 worker against %d, per epoch =====\n", best);
  std::printf("%6s | %-36s | %-36s\n", "epoch", one.label.c_str(), many.label.c_str());
  std::printf("%6s | %11s %11s %11s | %11s %11s %11s\n", "", "loading", "training", "epoch",
              "loading", "training", "epoch");
  const RunResult& a = one.repeats.front();
  const RunResult& b = many.repeats.front();
  for (size_t e = 0; e < std::min(a.epochs.size(), b.epochs.size()); ++e) {
    const EpochStats& x = a.epochs[e];
    const EpochStats& y = b.epochs[e];
    std::printf("%6zu | %11s %11s %11s | %11s %11s %11s\n", e + 1, FormatSeconds(x.load_s).c_str(),
                FormatSeconds(x.train_s).c_str(), FormatSeconds(x.epoch_s).c_str(),
                FormatSeconds(y.load_s).c_str(), FormatSeconds(y.train_s).c_str(),
                FormatSeconds(y.epoch_s).c_str());
  }
  const Spread one_total = one.Of([](const RunResult& r) { return r.total_s; });
  const Spread many_total = many.Of([](const RunResult& r) { return r.total_s; });
  std::printf("Total: 1 worker %s, %d workers %s: %s\n", FormatSeconds(one_total).c_str(), best,
              FormatSeconds(many_total).c_str(), FormatRatio(one_total, many_total).c_str());
  std::printf("\nLoader stages, summed over the loader threads and epochs:\n");
  for (const ConfigResult& c : result.configs) PrintStages(c);
  std::printf(
      "With one worker the trainer waits whenever a batch takes longer to make than a step\n"
      "takes to train; more workers overlap that work. On a CPU the workers also compete with\n"
      "the training threads for the same cores.\n");
  result.summary = {{"best_workers", best}, {"best_workers_source", source}};
  return result;
}

const bool kRegistered = ExperimentRegistry::Global().Register(
    "c4",
    {.usage = "c4: one loader worker against the best count (C4), per epoch, with the loader's\n"
              "stage breakdown; --trace=FILE.json for a timeline.",
     .flags = {"best_workers"},
     .run = RunC4});

}  // namespace
}  // namespace trainlab::experiments
