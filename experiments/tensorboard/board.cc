#include "experiments/tensorboard/board.h"

#include <chrono>
#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/status_macros.h"

namespace trainlab::experiments {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string RunFolderName(const std::string& label) {
  std::string out = label.empty() ? std::string("run") : label;
  for (char& c : out) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '+' || c == '-';
    if (!keep) c = '_';
  }
  if (out == "." || out == "..") out = "_";
  return out;
}

void RunBoard::Batch(const BatchRecord& b, int64_t step) {
  namespace t = board_tags;
  const double size = static_cast<double>(b.size);
  const double seconds = b.wait_s + b.copy_s + b.train_s;
  writer_->Scalars({{t::kBatchLoss, b.loss},
                    {t::kBatchTop1, size > 0 ? 100.0 * static_cast<double>(b.correct) / size : 0},
                    {t::kBatchLr, b.lr},
                    {t::kBatchWait, b.wait_s},
                    {t::kBatchCopy, b.copy_s},
                    {t::kBatchTrain, b.train_s},
                    {t::kBatchImagesPerS, seconds > 0 ? size / seconds : 0}},
                   step);
}

void RunBoard::Epoch(const EpochStats& e, const EvalStats* test, const LoaderStageTimes& stages,
                     int64_t step) {
  namespace t = board_tags;
  std::vector<std::pair<std::string, double>> values = {
      {t::kEpochLoss, e.loss},
      {t::kEpochTop1, e.top1},
      {t::kEpochDataLoading, e.load_s},
      {t::kEpochTraining, e.train_s},
      {t::kEpochAvgPerBatch, e.avg_train_per_batch_s()},
      {t::kEpochTime, e.epoch_s},
      {t::kEpochNumber, static_cast<double>(e.epoch)},
      {t::kLoaderRead, stages.read_s},
      {t::kLoaderCrop, stages.crop_s},
      {t::kLoaderFlip, stages.flip_s},
      {t::kLoaderNormalize, stages.normalize_s},
      {t::kLoaderAssemble, stages.assemble_s}};
  if (test != nullptr) {
    values.push_back({t::kTestLoss, test->loss});
    values.push_back({t::kTestTop1, test->top1});
  }
  writer_->Scalars(values, step);
  (void)writer_->Flush();  // a failure has been said once, as a warning; training goes on
}

void RunBoard::End(bool diverged) {
  writer_->HParamsEnd(
      diverged ? tensorboard::proto::STATUS_FAILURE : tensorboard::proto::STATUS_SUCCESS, Now());
  (void)writer_->Flush();
}

void RunBoard::Text(const std::string& tag, const std::string& markdown) {
  writer_->Text(tag, markdown, 0);
  (void)writer_->Flush();
}

absl::StatusOr<std::unique_ptr<ExperimentBoard>> ExperimentBoard::Open(
    const std::string& dir, const std::string& experiment, int repeats) {
  TRAINLAB_RETURN_IF_ERROR(PrepareWritableDir(dir, "--tensorboard_dir"));
  const std::string own_dir = absl::StrCat(dir, "/", RunFolderName(experiment));
  absl::StatusOr<std::unique_ptr<tensorboard::EventWriter>> own =
      tensorboard::EventWriter::Open(own_dir);
  if (!own.ok()) {
    return absl::Status(own.status().code(),
                        absl::StrCat("--tensorboard_dir=", dir, ": ", own.status().message()));
  }
  // Each session's texts open with a restart mark at step 0: TensorBoard's server then shows
  // this session's Settings paragraph and section, not an earlier one's beside them.
  (*own)->Purge(0);
  return std::unique_ptr<ExperimentBoard>(
      new ExperimentBoard(dir, experiment, repeats, std::move(*own)));
}

std::string ExperimentBoard::RunFolder(const std::string& label, int repeat) const {
  std::string folder =
      absl::StrCat(dir_, "/", RunFolderName(experiment_), "/", RunFolderName(label));
  if (repeats_ > 1) absl::StrAppend(&folder, "/repeat-", repeat);
  return folder;
}

std::unique_ptr<RunBoard> ExperimentBoard::OpenRun(
    const std::string& label, int repeat,
    const std::map<std::string, tensorboard::HParamValue>& hparams, int64_t first_step) {
  const std::string folder = RunFolder(label, repeat);
  absl::StatusOr<std::unique_ptr<tensorboard::EventWriter>> writer =
      tensorboard::EventWriter::Open(folder);
  if (!writer.ok()) {
    std::fprintf(
        stderr, "%s: warning: --tensorboard_dir: %s; run '%s' trains on without its charts\n",
        experiment_.c_str(), std::string(writer.status().message()).c_str(), label.c_str());
    return nullptr;
  }
  // Every event file opens with a restart mark (SessionLog START, as SummaryWriter's purge_step
  // writes it) at the first step it trains: a resumed run's drops what a killed run wrote at and
  // past it (no doubled or backwards segment), a fresh run's drops an earlier run's events in the
  // same folder from the dashboard (the files stay). TensorBoard's server takes a run's first
  // START for the session's beginning and only later ones for restarts: so every file has one.
  (*writer)->Purge(first_step);
  (*writer)->HParamsStart(hparams, absl::StrCat(experiment_, "/", label), Now());
  (void)(*writer)->Flush();
  return std::make_unique<RunBoard>(std::move(*writer));
}

std::optional<PngShape> ReadPngShape(const std::string& bytes) {
  // The 8-byte signature, then the IHDR chunk: length (13), "IHDR", width and height (big-endian
  // uint32), bit depth, colour type (PNG specification, 11.2.2).
  static constexpr char kSignature[] = "\x89PNG\r\n\x1a\n";
  if (bytes.size() < 33 || bytes.compare(0, 8, kSignature, 8) != 0 ||
      bytes.compare(12, 4, "IHDR") != 0) {
    return std::nullopt;
  }
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  int channels = 0;
  switch (static_cast<unsigned char>(bytes[25])) {
    case 0:
      channels = 1;
      break;  // greyscale
    case 2:
      channels = 3;
      break;  // RGB
    case 3:
      channels = 3;
      break;  // palette (shown as RGB)
    case 4:
      channels = 2;
      break;  // greyscale + alpha
    case 6:
      channels = 4;
      break;  // RGBA
    default:
      return std::nullopt;
  }
  const uint32_t width = u32(16), height = u32(20);
  if (width == 0 || height == 0 || width > (1u << 24) || height > (1u << 24)) return std::nullopt;
  return PngShape{static_cast<int>(width), static_cast<int>(height), channels};
}

absl::Status ExperimentBoard::Image(const std::string& tag, const std::string& png) {
  const std::optional<PngShape> shape = ReadPngShape(png);
  if (!shape) return absl::InvalidArgumentError(absl::StrCat(tag, ": not a PNG image"));
  own_->Image(tag, png, shape->height, shape->width, shape->channels, 0);
  (void)own_->Flush();
  return absl::OkStatus();
}

void ExperimentBoard::Text(const std::string& tag, const std::string& markdown) {
  own_->Text(tag, markdown, 0);
  (void)own_->Flush();
}

}  // namespace trainlab::experiments
