#include "experiments/results/result_json.h"

#include <utility>

#include "core/status_macros.h"

namespace trainlab::experiments {
namespace {

using json = nlohmann::json;

constexpr int64_t kMaxCount = int64_t{1} << 40;  // samples, images: beyond any real run
// Batches of one epoch (CIFAR-10 at batch 1: 50,000): a results file without per-batch records
// still holds this many placeholders, so the bound also bounds what a hostile file allocates.
constexpr int64_t kMaxBatchesPerEpoch = int64_t{1} << 24;

json DivergenceJson(const Divergence& d) {
  return {{"epoch", d.epoch}, {"batch", d.batch}, {"loss", JsonNumber(d.loss)}};
}

absl::StatusOr<Divergence> DivergenceFromJson(const JsonReader& j) {
  Divergence d;
  TRAINLAB_ASSIGN_OR_RETURN(d.epoch, j.Int("epoch", 0, kMaxCount));
  TRAINLAB_ASSIGN_OR_RETURN(d.batch, j.Int("batch", 0, kMaxCount));
  TRAINLAB_ASSIGN_OR_RETURN(d.loss, j.Number("loss"));
  return d;
}

json StagesJson(const LoaderStageTimes& t) {
  return {{"read_s", t.read_s},         {"crop_s", t.crop_s},
          {"flip_s", t.flip_s},         {"normalize_s", t.normalize_s},
          {"assemble_s", t.assemble_s}, {"batches", t.batches},
          {"images", t.images}};
}

absl::StatusOr<LoaderStageTimes> StagesFromJson(const JsonReader& j) {
  LoaderStageTimes t;
  TRAINLAB_ASSIGN_OR_RETURN(t.read_s, j.Number("read_s"));
  TRAINLAB_ASSIGN_OR_RETURN(t.crop_s, j.Number("crop_s"));
  TRAINLAB_ASSIGN_OR_RETURN(t.flip_s, j.Number("flip_s"));
  TRAINLAB_ASSIGN_OR_RETURN(t.normalize_s, j.Number("normalize_s"));
  TRAINLAB_ASSIGN_OR_RETURN(t.assemble_s, j.Number("assemble_s"));
  TRAINLAB_ASSIGN_OR_RETURN(t.batches, j.Int("batches", 0, kMaxCount));
  TRAINLAB_ASSIGN_OR_RETURN(t.images, j.Int("images", 0, kMaxCount));
  return t;
}

absl::StatusOr<BatchRecord> BatchFromJson(const JsonReader& j) {
  BatchRecord b;
  TRAINLAB_ASSIGN_OR_RETURN(b.index, j.IntAt(0, 0, kMaxCount));
  TRAINLAB_ASSIGN_OR_RETURN(b.size, j.IntAt(1, 0, kMaxCount));
  TRAINLAB_ASSIGN_OR_RETURN(b.wait_s, j.NumberAt(2));
  TRAINLAB_ASSIGN_OR_RETURN(b.copy_s, j.NumberAt(3));
  TRAINLAB_ASSIGN_OR_RETURN(b.train_s, j.NumberAt(4));
  TRAINLAB_ASSIGN_OR_RETURN(b.loss, j.NumberAt(5));
  TRAINLAB_ASSIGN_OR_RETURN(b.correct, j.IntAt(6, 0, kMaxCount));
  if (j.json().size() > 7) {  // the learning rate, since schedules (older files: none)
    TRAINLAB_ASSIGN_OR_RETURN(b.lr, j.NumberAt(7));
  }
  return b;
}

}  // namespace

json ToJson(const EpochStats& e, const LoaderStageTimes* stages, const EvalStats* test,
            CodecOptions options) {
  json j = {{"epoch", e.epoch},           {"loss", JsonNumber(e.loss)},
            {"top1", JsonNumber(e.top1)}, {"load_s", e.load_s},
            {"copy_s", e.copy_s},         {"train_s", e.train_s},
            {"epoch_s", e.epoch_s},       {"avg_train_per_batch_s", e.avg_train_per_batch_s()},
            {"samples", e.samples},       {"batches", e.batches.size()}};
  if (stages != nullptr) j["loader_stages"] = StagesJson(*stages);
  if (test != nullptr) {
    j["test"] = {{"loss", JsonNumber(test->loss)},
                 {"top1", JsonNumber(test->top1)},
                 {"samples", test->samples},
                 {"seconds", test->seconds}};
  }
  if (e.diverged) j["diverged"] = DivergenceJson(*e.diverged);
  if (options.batch_records) {
    json records = json::array();
    for (const BatchRecord& b : e.batches) {
      records.push_back(
          {b.index, b.size, b.wait_s, b.copy_s, b.train_s, JsonNumber(b.loss), b.correct, b.lr});
    }
    j["batch_records"] = std::move(records);
  }
  return j;
}

json ToJson(const RunResult& r, CodecOptions options) {
  json epochs = json::array();
  for (size_t i = 0; i < r.epochs.size(); ++i) {
    epochs.push_back(ToJson(r.epochs[i], i < r.loader_stages.size() ? &r.loader_stages[i] : nullptr,
                            i < r.test.size() ? &r.test[i] : nullptr, options));
  }
  json j = {{"repeat", r.repeat}, {"total_s", r.total_s}, {"epochs", std::move(epochs)}};
  if (r.diverged) j["diverged"] = DivergenceJson(*r.diverged);
  if (r.target) {
    j["target"] = {{"top1", r.target->target},
                   {"epoch", r.target->epoch},
                   {"batches", r.target->batches},
                   {"train_s", r.target->train_s},
                   {"wall_s", r.target->wall_s}};
  }
  return j;
}

json ToJson(const VariantResult& v, CodecOptions options) {
  json runs = json::array();
  for (const RunResult& r : v.repeats) runs.push_back(ToJson(r, options));
  json j = {{"label", v.label},
            {"params", v.params},
            {"optimizer", v.setup.optimizer},
            {"strategy", v.setup.strategy},
            {"num_workers", v.setup.num_workers},
            {"model", v.setup.model},
            {"device", v.setup.device},
            {"runs", std::move(runs)}};
  if (!v.skipped.empty()) j["skipped"] = v.skipped;
  return j;
}

json ToJson(const ExperimentResult& r, CodecOptions options) {
  json variants = json::array();
  for (const VariantResult& v : r.variants) variants.push_back(ToJson(v, options));
  return {{"variants", std::move(variants)}, {"summary", r.summary}, {"notes", r.notes}};
}

absl::StatusOr<EpochRecord> ResultDecoder::Epoch(const JsonReader& j) {
  EpochRecord out;
  EpochStats& e = out.stats;
  TRAINLAB_ASSIGN_OR_RETURN(e.epoch, j.Int("epoch", 0, kMaxCount));
  TRAINLAB_ASSIGN_OR_RETURN(e.loss, j.Number("loss"));
  TRAINLAB_ASSIGN_OR_RETURN(e.top1, j.Number("top1"));
  TRAINLAB_ASSIGN_OR_RETURN(e.load_s, j.Number("load_s"));
  TRAINLAB_ASSIGN_OR_RETURN(e.copy_s, j.Number("copy_s"));
  TRAINLAB_ASSIGN_OR_RETURN(e.train_s, j.Number("train_s"));
  TRAINLAB_ASSIGN_OR_RETURN(e.epoch_s, j.Number("epoch_s"));
  TRAINLAB_ASSIGN_OR_RETURN(e.samples, j.Int("samples", 0, kMaxCount));
  TRAINLAB_ASSIGN_OR_RETURN(const int64_t batches, j.Int("batches", 0, kMaxBatchesPerEpoch));
  if (j.Has("batch_records")) {
    TRAINLAB_ASSIGN_OR_RETURN(std::vector<JsonReader> records, j.Array("batch_records"));
    if (static_cast<int64_t>(records.size()) != batches) {
      return absl::InvalidArgumentError(absl::StrCat(j.path(), ".batch_records: ", records.size(),
                                                     " records for ", batches, " batches"));
    }
    for (const JsonReader& b : records) {
      TRAINLAB_ASSIGN_OR_RETURN(BatchRecord rec, BatchFromJson(b));
      e.batches.push_back(rec);
    }
  } else {
    // Without records the count still holds (avg_train_per_batch_s divides by it).
    if (batches > placeholders_left_) {
      return absl::InvalidArgumentError(
          absl::StrCat(j.path(), ".batches: more batches in all than any results file holds (",
                       kMaxPlaceholders, ")"));
    }
    placeholders_left_ -= batches;
    e.batches.resize(static_cast<size_t>(batches));
  }
  if (j.Has("loader_stages")) {
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader s, j.Object("loader_stages"));
    TRAINLAB_ASSIGN_OR_RETURN(out.stages, StagesFromJson(s));
  }
  if (j.Has("test")) {
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader t, j.Object("test"));
    EvalStats test;
    TRAINLAB_ASSIGN_OR_RETURN(test.loss, t.Number("loss"));
    TRAINLAB_ASSIGN_OR_RETURN(test.top1, t.Number("top1"));
    TRAINLAB_ASSIGN_OR_RETURN(test.samples, t.Int("samples", 0, kMaxCount));
    if (t.Has("seconds")) {  // since --target_accuracy
      TRAINLAB_ASSIGN_OR_RETURN(test.seconds, t.Number("seconds"));
    }
    out.test = test;
  }
  if (j.Has("diverged")) {
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader d, j.Object("diverged"));
    TRAINLAB_ASSIGN_OR_RETURN(e.diverged, DivergenceFromJson(d));
  }
  return out;
}

absl::StatusOr<RunResult> ResultDecoder::Run(const JsonReader& j) {
  RunResult r;
  TRAINLAB_ASSIGN_OR_RETURN(const int64_t repeat, j.Int("repeat", 1, 1 << 20));
  r.repeat = static_cast<int>(repeat);
  TRAINLAB_ASSIGN_OR_RETURN(r.total_s, j.Number("total_s"));
  TRAINLAB_ASSIGN_OR_RETURN(std::vector<JsonReader> epochs, j.Array("epochs"));
  for (const JsonReader& e : epochs) {
    TRAINLAB_ASSIGN_OR_RETURN(EpochRecord rec, Epoch(e));
    // Stages and test results are per epoch from the first on; a gap would misalign them.
    if (rec.stages) {
      if (r.loader_stages.size() != r.epochs.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat(e.path(), ".loader_stages: present here but not in an earlier epoch"));
      }
      r.loader_stages.push_back(*rec.stages);
    }
    if (rec.test) {
      if (r.test.size() != r.epochs.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat(e.path(), ".test: present here but not in an earlier epoch"));
      }
      r.test.push_back(*rec.test);
    }
    r.epochs.push_back(std::move(rec.stats));
  }
  if (j.Has("target")) {
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader t, j.Object("target"));
    TargetReached reached;
    TRAINLAB_ASSIGN_OR_RETURN(reached.target, t.Number("top1"));
    TRAINLAB_ASSIGN_OR_RETURN(reached.epoch, t.Int("epoch", 1, kMaxCount));
    TRAINLAB_ASSIGN_OR_RETURN(reached.batches, t.Int("batches", 0, kMaxCount));
    TRAINLAB_ASSIGN_OR_RETURN(reached.train_s, t.Number("train_s"));
    TRAINLAB_ASSIGN_OR_RETURN(reached.wall_s, t.Number("wall_s"));
    r.target = reached;
  }
  if (j.Has("diverged")) {
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader d, j.Object("diverged"));
    TRAINLAB_ASSIGN_OR_RETURN(r.diverged, DivergenceFromJson(d));
  }
  return r;
}

absl::StatusOr<VariantResult> ResultDecoder::Variant(const JsonReader& j) {
  VariantResult v;
  TRAINLAB_ASSIGN_OR_RETURN(v.label, j.String("label"));
  if (j.Has("params")) {
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader p, j.Object("params"));
    v.params = p.json();
  }
  // The setup is recorded since schema 1's first files; a field missing there reads as empty.
  for (auto [key, out] :
       {std::pair{"optimizer", &v.setup.optimizer}, std::pair{"strategy", &v.setup.strategy},
        std::pair{"model", &v.setup.model}, std::pair{"device", &v.setup.device}}) {
    if (j.Has(key)) {
      TRAINLAB_ASSIGN_OR_RETURN(*out, j.String(key));
    }
  }
  if (j.Has("num_workers")) {
    TRAINLAB_ASSIGN_OR_RETURN(const int64_t workers, j.Int("num_workers", 0, 1 << 20));
    v.setup.num_workers = static_cast<int>(workers);
  }
  TRAINLAB_ASSIGN_OR_RETURN(std::vector<JsonReader> runs, j.Array("runs"));
  for (const JsonReader& r : runs) {
    TRAINLAB_ASSIGN_OR_RETURN(RunResult run, Run(r));
    v.repeats.push_back(std::move(run));
  }
  if (j.Has("skipped")) {
    TRAINLAB_ASSIGN_OR_RETURN(v.skipped, j.String("skipped"));
  }
  return v;
}

absl::StatusOr<ExperimentResult> ResultDecoder::Experiment(const JsonReader& j,
                                                           const std::string& variants_key) {
  ExperimentResult r;
  TRAINLAB_ASSIGN_OR_RETURN(std::vector<JsonReader> variants, j.Array(variants_key));
  for (const JsonReader& v : variants) {
    TRAINLAB_ASSIGN_OR_RETURN(VariantResult variant, Variant(v));
    r.variants.push_back(std::move(variant));
  }
  if (j.Has("summary")) {
    TRAINLAB_ASSIGN_OR_RETURN(JsonReader s, j.Object("summary"));
    r.summary = s.json();
  }
  if (j.Has("notes")) {
    TRAINLAB_ASSIGN_OR_RETURN(std::vector<JsonReader> notes, j.Array("notes"));
    for (const JsonReader& n : notes) {
      if (!n.json().is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(n.path(), ": expected a string"));
      }
      r.notes.push_back(n.json().get<std::string>());
    }
  }
  return r;
}

}  // namespace trainlab::experiments
