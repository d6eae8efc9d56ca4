// The "Settings:" paragraph every training binary prints before its first batch: what was
// chosen (data, device, model, kernels, threads, allocator), the run's settings, and how the
// process takes part in a data-parallel job or a checkpoint.
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "experiments/harness/session.h"
#include "experiments/harness/session_steps.h"

namespace trainlab::experiments {
namespace {

std::string KernelsLine(const Session& s) {
  return absl::StrCat(
      s.kernels.str(),
      s.options.portable_kernels
          ? " (--portable_kernels: the same bits on any x86-64 CPU with AVX2)"
          : " (LibTorch's choice on this CPU; --portable_kernels pins bits that repeat on others)",
      "; BLAS ", LoadedBlas());
}

}  // namespace

namespace internal {

std::string SettingsParagraph(const Session& s) {
  std::string out;
  const ExperimentOptions& c = s.options;
  const RunConfig& r = c.run;
  absl::StrAppendFormat(&out, "Settings:\n");
  if (!s.data_note.empty()) absl::StrAppendFormat(&out, "- Data: %s\n", s.data_note.c_str());
  absl::StrAppendFormat(
      &out, "- Dataset: %s (%" PRId64 " images, read in %.2fs), test %s (%" PRId64 " images)\n",
      s.train->name.c_str(), s.train->size, s.train->load_seconds, s.test->name.c_str(),
      s.test->size);
  absl::StrAppendFormat(
      &out, "- Device: %s%s\n", s.device.str().c_str(),
      s.device.is_cpu() && torch::cuda::is_available() ? " (CUDA available but not used)" : "");
  absl::StrAppendFormat(&out, "- Model: %s%s\n", r.model.c_str(),
                        r.model_path.empty() ? "" : absl::StrCat(" from ", r.model_path).c_str());
  absl::StrAppendFormat(&out, "- Intra-op threads: %d; allocator: %s\n", at::get_num_threads(),
                        s.allocator.c_str());
  absl::StrAppendFormat(&out, "- CPU kernels: %s\n", KernelsLine(s).c_str());
  if (!c.tensorboard_dir.empty()) {
    absl::StrAppendFormat(&out,
                          "- TensorBoard: event files under %s/%s, one folder per run "
                          "(tensorboard --logdir %s)\n",
                          c.tensorboard_dir, c.experiment, c.tensorboard_dir);
  }
  if (c.nvtx != "off") {
    absl::StrAppendFormat(
        &out, "- NVTX ranges (--nvtx=%s): each batch's phases%s, for nsys profile (docs/gpu.md)\n",
        c.nvtx.c_str(), c.nvtx == "layers" ? " and every layer" : "");
  }
  absl::StrAppendFormat(&out,
                        "- Batch size %" PRId64
                        ", loader workers %d, lr %g, weight decay %g, momentum %g, seed %" PRIu64
                        "\n",
                        r.batch_size, r.num_workers, r.optimizer_settings.lr,
                        r.optimizer_settings.weight_decay, r.optimizer_settings.momentum, r.seed);
  if (r.lr_schedule != "constant" || r.warmup_epochs > 0 || r.label_smoothing > 0) {
    std::string line = absl::StrCat("- Learning rate: ", r.lr_schedule, " from ",
                                    r.optimizer_settings.lr, " over ", r.epochs, " epochs");
    if (r.lr_schedule == "step") {
      absl::StrAppend(&line, ", x", r.lr_gamma, " at epochs ",
                      r.lr_milestones.empty() ? "(none)" : absl::StrJoin(r.lr_milestones, ","));
    }
    if (r.warmup_epochs > 0) absl::StrAppend(&line, ", warm-up ", r.warmup_epochs, " epochs");
    absl::StrAppendFormat(&out, "%s (set per batch); label smoothing %g\n", line.c_str(),
                          r.label_smoothing);
  }
  if (r.tta_flip || r.target_accuracy > 0) {
    absl::StrAppendFormat(&out, "- Evaluation:%s%s\n",
                          r.tta_flip ? " each test image and its mirror (--tta=flip)" : "",
                          r.target_accuracy > 0
                              ? absl::StrFormat("%s stop at %.2f%% test top-1 (--target_accuracy)",
                                                r.tta_flip ? ";" : "", r.target_accuracy)
                                    .c_str()
                              : "");
  }
  if (r.max_batches_per_epoch > 0) {
    absl::StrAppendFormat(&out, "- Epochs cut to %" PRId64 " batches (--max_batches_per_epoch)\n",
                          r.max_batches_per_epoch);
  }
  if (c.repeats > 1)
    absl::StrAppendFormat(&out, "- Each configuration runs %d times (--repeats)\n", c.repeats);
  if (s.comm) {
    absl::StrAppendFormat(
        &out,
        "- Data-parallel over %d ranks (c10d, Gloo): %s; --batch_size is per rank (%" PRId64
        " images per step in all); loss and top-1 over all ranks, times rank 0's; "
        "batch norm: rank 0's running statistics, broadcast before every forward (DDP's "
        "default)\n",
        s.comm->world_size(), s.comm->env().str().c_str(), r.batch_size * s.comm->world_size());
  }
  if (s.checkpointer) {
    const Checkpointer& c = *s.checkpointer;
    std::vector<std::string> notes;
    if (c.resuming()) {
      notes.push_back(c.restored_from().empty()
                          ? "resuming"
                          : absl::StrCat("resuming from ", c.restored_from()));
    }
    if (s.comm) {
      notes.push_back(c.copies() > 1 ? absl::StrCat("a copy in each of ", c.copies(),
                                                    " nodes' folders, of rank 0's bytes; every "
                                                    "rank resumes from the newest")
                                     : "rank 0 writes; every rank restores what it wrote");
    }
    const std::string how =
        notes.empty() ? "" : absl::StrCat(" (", absl::StrJoin(notes, "; "), ")");
    absl::StrAppendFormat(&out, "- Checkpoints: %s%s\n", c.path().c_str(), how.c_str());
  }
  if (s.restarted()) {
    absl::StrAppendFormat(&out, "- Restarted by torchrun (attempt %d of this job)%s\n",
                          s.comm->env().restart_count,
                          s.checkpointer ? "" : ": no --checkpoint_dir, so training starts over");
  }
  return out;
}

}  // namespace internal
}  // namespace trainlab::experiments
