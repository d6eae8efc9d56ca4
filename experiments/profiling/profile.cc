// Profile: where a training step's time goes, per layer and pass, against the roofs this machine
// measurably reaches. For each strategy of --strategies that can run here, on one real batch of
// the training set: warm-up steps, --profile_steps plain steps (the step's wall time, nothing
// listening), then --profile_steps instrumented steps (core/profiling/layer_tracer.h: every layer's
// forward and backward from LibTorch's RecordFunction events, the optimizer step as its own row).
// Each row's FLOPs and bytes come from the shapes (core/op_costs.h); its achieved rates are set
// against the measured compute roof of its dtype and the measured bandwidth (roofs.h). Everything
// the section shows is computed here, once, into the summary (profile_summary.h; profile_report.cc
// renders it).
//
//   bazel run //experiments:profile -- --strategies=eager,channels_last,amp_bf16 --batch_size=128
#include <ATen/ATen.h>
#include <gflags/gflags.h>
#include <torch/utils.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/convolution.h"
#include "core/introspect.h"
#include "core/model.h"
#include "core/nvtx.h"
#include "core/op_costs.h"
#include "core/optimizer.h"
#include "core/profiling/layer_tracer.h"
#include "core/profiling/nvtx_layers.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "core/timer.h"
#include "core/trainer.h"
#include "experiments/harness/experiment.h"
#include "experiments/harness/stop.h"
#include "experiments/profiling/profile_summary.h"
#include "experiments/profiling/roofs.h"
#include "experiments/results/spread.h"
#include "experiments/training/run.h"
#include "experiments/training/strategies_flag.h"
#include "plugins/data/loader.h"

DEFINE_int32(profile_steps, 5, "Steps timed per strategy, plain then instrumented (medians).");

namespace trainlab::experiments {
namespace {

constexpr int kWarmupSteps = 2;

struct ProfileFlags {
  std::vector<std::string> strategies;  // profiled in order, or skipped with the reason
  int steps = 5;                        // timed per strategy, each way
};

absl::StatusOr<ProfileFlags> ReadProfileFlags(const FlagValues& f) {
  ProfileFlags p;
  TRAINLAB_ASSIGN_OR_RETURN(p.strategies, ReadStrategiesFlag(f));
  TRAINLAB_ASSIGN_OR_RETURN(const int64_t steps,
                            f.IntIn("profile_steps", 1, 1000, "must be between 1 and 1000"));
  p.steps = static_cast<int>(steps);
  return p;
}

double Median(std::vector<double> v) { return v.empty() ? 0 : Spread::Of(std::move(v)).median; }

// --- One strategy --------------------------------------------------------------------------------

struct StrategyProfile {
  ProfileStepRow step;
  std::vector<ProfileLayerRow> layers;  // ranked by time
  absl::Status timing;                  // why the layers have no times, when they have none
};

// One row's times over the instrumented steps: on the recording's timeline (the device's), and
// on the host's clock (on a GPU, the host's time to issue the row's work).
struct RowTimes {
  std::vector<double> device, host;
  void Add(double d, double h) {
    device.push_back(d);
    host.push_back(h);
  }
};

struct OneBatchOf {  // the batch every step of the profile trains on
  at::Tensor images, labels;
};

absl::StatusOr<OneBatchOf> OneBatch(const Session& session, const RunConfig& run) {
  data::LoaderOptions lo;
  lo.batch_size = run.batch_size;
  lo.num_workers = 0;
  lo.seed = run.seed;
  lo.max_batches = 1;
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<data::BatchLoader> loader,
                            data::BatchLoader::Create(session.train, lo));
  loader->start_epoch(0);
  std::optional<trainlab::Batch> b = loader->next();
  if (!b) {
    TRAINLAB_RETURN_IF_ERROR(loader->status());
    return absl::InvalidArgumentError("profile: the training set gave no batch");
  }
  // Copies: the loader's pooled slots are reused once it is gone.
  return OneBatchOf{b->images.to(at::kFloat, false, true), b->labels.to(at::kLong, false, true)};
}

// The layers' names and passes of one traced step, as spans of the Chrome trace.
void TraceSpans(TraceRecorder* trace, const std::string& strategy, const LayerTracer& tracer) {
  if (trace == nullptr) return;
  // On a GPU the spans are the device's times (its events), drawn on the host's clock from the
  // step's first mark.
  trace->NameThisThread(absl::StrCat("profile (", tracer.timeline_name(), ")"));
  for (const TracedSpan& s : tracer.spans()) {
    const char* pass = s.pass == TracedSpan::Pass::kForward    ? "forward"
                       : s.pass == TracedSpan::Pass::kBackward ? "backward"
                                                               : "optimizer";
    const std::string name = s.pass == TracedSpan::Pass::kOptimizer ? "optimizer step"
                             : s.op < 0                             ? "autograd (no layer)"
                                        : tracer.ops()[static_cast<size_t>(s.op)].module;
    trace->Span(absl::StrCat(name, " ", pass), absl::StrCat("profile ", strategy), s.start, s.end);
  }
}

absl::StatusOr<StrategyProfile> ProfileStrategy(const Session& session, const std::string& name,
                                                const StepOptions& step, const MeasuredRoofs& roofs,
                                                const OneBatchOf& batch, int steps) {
  const RunConfig run = session.DefaultRun();
  const c10::Device device = run.device;
  RunConfig one_batch = run;  // no loader threads, no evaluation: one batch in memory
  one_batch.num_workers = 0;
  one_batch.evaluate = false;
  TRAINLAB_ASSIGN_OR_RETURN(ModelAndOptimizer built, BuildModelAndOptimizer(session, one_batch));
  std::shared_ptr<ClassifierImpl> model = std::move(built.model);
  std::unique_ptr<torch::optim::Optimizer> optimizer = std::move(built.optimizer);
  const OptimizerEntry* entry = built.optimizer_entry;
  const int64_t parameters = CountTrainableParameters(*model);
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<StepRunner> runner,
                            PrepareStepRunner(*model, *optimizer, device, entry->capturable, step));
  const at::Tensor x = batch.images.to(device).contiguous(step.memory_format);
  const at::Tensor y = batch.labels.to(device);
  auto one = [&]() -> absl::StatusOr<double> {
    const Clock::time_point t0 = SyncAndNow(device);
    nvtx::PhaseRange range(nvtx::Phase::kStep);  // --nvtx: the step, and the eager step's parts
    TRAINLAB_RETURN_IF_ERROR(runner->Run(x, y, nullptr).status());
    return Seconds(SyncAndNow(device) - t0);
  };
  for (int i = 0; i < kWarmupSteps; ++i) TRAINLAB_RETURN_IF_ERROR(one().status());
  std::vector<double> plain;
  for (int i = 0; i < steps; ++i) {
    TRAINLAB_ASSIGN_OR_RETURN(double s, one());
    plain.push_back(s);
    if (const int signal = StopSignal(); signal != 0) {
      return absl::CancelledError(absl::StrCat("stopped by ", SignalName(signal)));
    }
  }
  // Instrumented steps, timed on the device's own timeline (core/profiling/layer_tracer.h: the
  // host's clock on a CPU, events on the stream on a GPU, read after each step). Where it cannot be
  // read, the layers keep their arithmetic and lose their times, and a note says why.
  LayerTracer tracer(*model, device);
  NvtxLayerRanges layer_ranges;  // --nvtx=layers: each layer an NVTX range as well
  if (nvtx::LayersEnabled()) tracer.set_listener(&layer_ranges);
  absl::Status timing = absl::OkStatus();
  std::vector<RowTimes> forward, backward;
  RowTimes optimizer_s, loose_s;
  std::vector<double> traced;
  std::vector<std::string> names;
  for (int i = 0; i < steps; ++i) {
    absl::StatusOr<double> s;
    {
      LayerTracer::Recording recording(tracer);
      s = one();
    }
    if (!s.ok()) return s.status();
    if (timing.ok()) timing = tracer.status();
    traced.push_back(*s);
    const std::vector<TracedOp>& ops = tracer.ops();
    if (i == 0) {
      forward.resize(ops.size());
      backward.resize(ops.size());
      for (const TracedOp& op : ops) names.push_back(op.module);
    } else if (ops.size() != names.size()) {
      return absl::InternalError(absl::StrCat("profile: ", name, ": step ", i + 1, " ran ",
                                              ops.size(), " layers, step 1 ran ", names.size()));
    }
    for (size_t k = 0; k < ops.size(); ++k) {
      forward[k].Add(ops[k].forward_s, ops[k].forward_host_s);
      backward[k].Add(ops[k].backward_s, ops[k].backward_host_s);
    }
    optimizer_s.Add(tracer.optimizer_s(), tracer.optimizer_host_s());
    loose_s.Add(tracer.unattributed_backward_s(), tracer.unattributed_backward_host_s());
    if (const int signal = StopSignal(); signal != 0) {
      return absl::CancelledError(absl::StrCat("stopped by ", SignalName(signal)));
    }
  }
  TraceSpans(session.trace.get(), name, tracer);

  const c10::ScalarType step_dtype = step.autocast_dtype.value_or(at::kFloat);
  const double compute_roof = roofs.Compute(step_dtype);
  const std::optional<OpCost> opt_cost = OptimizerStepCost(run.optimizer, parameters, 4);
  const double batch_size = static_cast<double>(x.size(0));
  StrategyProfile out;
  double flops = 0, rows_s = 0, rows_host_s = 0, memory_bound_s = 0;
  const bool timed = timing.ok();
  // On a device timeline, each row's host time too: the host's time to issue the layer.
  const bool host_too = timed && !device.is_cpu();
  auto add = [&](const std::string& row_name, const std::string& op, const char* pass,
                 c10::ScalarType dtype, const OpCost& cost, const RowTimes& times) {
    const double s = timed ? Median(times.device) : 0;
    ProfileLayerRow row = RowAgainstRoofs(name, row_name, op, pass, dtype, s, cost, roofs);
    if (host_too) {
      row.host_seconds = Median(times.host);
      rows_host_s += *row.host_seconds;
    }
    flops += row.flops;
    rows_s += s;
    if (row.bound == "memory") memory_bound_s += s;
    out.layers.push_back(std::move(row));
  };
  out.timing = timing;
  const std::vector<TracedOp>& ops = tracer.ops();
  for (size_t k = 0; k < ops.size(); ++k) {
    const TracedOp& op = ops[k];
    add(op.module, op.op, "forward", op.dtype, op.forward, forward[k]);
    add(op.module, op.op, "backward", op.dtype, op.backward, backward[k]);
  }
  add("autograd (no layer)", "autograd", "backward", at::kFloat, OpCost{}, loose_s);
  add(run.optimizer, "optimizer", "optimizer", at::kFloat, opt_cost.value_or(OpCost{}),
      optimizer_s);
  std::stable_sort(out.layers.begin(), out.layers.end(),
                   [](const ProfileLayerRow& a, const ProfileLayerRow& b) {
                     return a.seconds.value_or(0) > b.seconds.value_or(0);
                   });
  const double seconds = Median(plain);
  const double rate = seconds > 0 ? flops / seconds : 0;
  out.step = {.strategy = name,
              .dtype = ProfileDtypeName(step_dtype),
              .batch_size = x.size(0),
              .steps = steps,
              .seconds = seconds,
              .seconds_min = *std::min_element(plain.begin(), plain.end()),
              .seconds_max = *std::max_element(plain.begin(), plain.end()),
              .traced_seconds = Median(traced),
              .flops = flops,
              .forward_flops_per_image = tracer.TotalForward().flops / batch_size,
              .step_flops_per_image = flops / batch_size,
              .flops_per_s = rate,
              .compute_roof_flops_per_s = compute_roof,
              .mfu = compute_roof > 0 ? rate / compute_roof : 0.0,
              .layers = static_cast<int64_t>(ops.size()),
              .parameters = parameters,
              .timeline = timed ? tracer.timeline_name() : "none"};
  if (timed) {
    out.step.rows_seconds = rows_s;
    out.step.coverage = seconds > 0 ? rows_s / seconds : 0.0;
    // The rows time the instrumented steps: their share of those, beside.
    out.step.coverage_of_instrumented = Median(traced) > 0 ? rows_s / Median(traced) : 0.0;
    out.step.overhead = seconds > 0 ? Median(traced) / seconds - 1 : 0.0;
    out.step.memory_bound_seconds = memory_bound_s;
    out.step.unattributed_backward_seconds = Median(loose_s.device);
    // On a GPU: the host's time to issue the rows. Near the step's time, the host's launches
    // pace the step; far below it, the device's work does.
    if (host_too) out.step.host_rows_seconds = rows_host_s;
  } else {
    for (ProfileLayerRow& row : out.layers) row.seconds = std::nullopt;
  }
  return out;
}

absl::StatusOr<ExperimentResult> RunProfile(Session& session, const ProfileFlags& flags) {
  const RunConfig run = session.DefaultRun();
  const std::vector<std::string>& names = flags.strategies;
  ExperimentResult result;
  ProfileSummary summary;
  if (session.comm) {  // every rank the same answer, no collectives
    for (const std::string& name : names) {
      summary.skipped.push_back({.strategy = name,
                                 .reason = "a data-parallel run: the profile measures one "
                                           "process (run it without torchrun)"});
    }
    result.summary = ToJson(summary);
    return result;
  }
  // Which strategies run, and in which dtypes.
  std::vector<std::pair<std::string, StepOptions>> runnable;
  bool bf16 = false;
  for (const std::string& name : names) {
    absl::StatusOr<StepOptions> o = ResolveStrategies(name, session.device);
    if (!o.ok()) {
      if (!IsStrategyCannotRun(o.status())) return o.status();
      summary.skipped.push_back({.strategy = name, .reason = std::string(o.status().message())});
      continue;
    }
    if (o->make_runner) {
      summary.skipped.push_back({.strategy = name,
                                 .reason = "it replays the whole step as one graph: no layer "
                                           "boundaries to time (C8 times it whole)"});
      continue;
    }
    if (o->autocast_dtype == at::kBFloat16 || o->autocast_dtype == at::kHalf) bf16 = true;
    runnable.emplace_back(name, *std::move(o));
  }
  std::printf("Profile of %s, batch %" PRId64
              ", %s, on %s: %d warm-up steps, then %d plain and "
              "%d instrumented steps per strategy (medians)\n",
              run.model.c_str(), run.batch_size, run.optimizer.c_str(), run.device.str().c_str(),
              kWarmupSteps, flags.steps, flags.steps);
  TRAINLAB_ASSIGN_OR_RETURN(const MeasuredRoofs roofs, MeasureRoofs(session.device, bf16));
  const ProfilePeak peak = TheoreticalPeak(session.device);
  PrintRoofs(roofs, peak);
  TRAINLAB_ASSIGN_OR_RETURN(const OneBatchOf batch, OneBatch(session, run));
  for (const auto& [name, step] : runnable) {
    TRAINLAB_ASSIGN_OR_RETURN(StrategyProfile p,
                              ProfileStrategy(session, name, step, roofs, batch, flags.steps));
    std::printf("- %s: step %.4fs plain, %.4fs instrumented; %.1f GFLOP/s\n", name.c_str(),
                p.step.seconds, p.step.traced_seconds, p.step.flops_per_s / 1e9);
    std::fflush(stdout);
    if (!p.timing.ok()) {
      result.notes.push_back(
          absl::StrCat(name, ": the layers have no times: ", p.timing.message()));
    }
    summary.steps.push_back(std::move(p.step));
    std::move(p.layers.begin(), p.layers.end(), std::back_inserter(summary.layers));
    if (step.convolution) {  // conv_autotune: what it chose in the warm-up steps, and why
      for (const ConvolutionChoice& c : step.convolution->Choices()) {
        ProfileConvChoice row{.strategy = name,
                              .shape = c.shape,
                              .pass = c.pass,
                              .algorithm = c.algorithm,
                              .note = c.note};
        std::string times;
        for (const auto& [algorithm, s] : c.seconds) {
          (algorithm == "library" ? row.library_seconds : row.matmul_seconds) = s;
          absl::StrAppend(&times, times.empty() ? "" : ", ", algorithm, " ",
                          absl::StrFormat("%.2f ms", 1e3 * s));
        }
        std::printf("  %s: %s %s -> %s (%s)\n", step.convolution->name().c_str(), c.shape.c_str(),
                    c.pass.c_str(), c.algorithm.c_str(),
                    times.empty() ? c.note.c_str() : times.c_str());
        summary.convolution_choices.push_back(std::move(row));
      }
    }
    if (step.normalization) {  // fused_bn_relu: which batch norms it ran, and why not the others
      for (const std::string& c : step.normalization->Choices()) {
        std::printf("  %s: %s\n", step.normalization->name().c_str(), c.c_str());
      }
    }
  }
  summary.roofs = SummaryRoofs(roofs, peak);
  summary.model = run.model;
  summary.optimizer = run.optimizer;
  summary.device = run.device.str();
  summary.batch_size = run.batch_size;
  summary.warmup_steps = kWarmupSteps;
  result.summary = ToJson(summary);
  if (!run.device.is_cpu()) {
    result.notes.push_back(
        "On a GPU each layer's time is the device's: events recorded on the stream at the "
        "layer's start and end (the backward's on autograd's device thread), read after the "
        "step, with no synchronisation between layers. A row is the stream's time from the "
        "work queued before the layer to the work queued by its end: its kernels, and any gap "
        "in which the device waited for the host to queue them.");
  }
  return result;
}

const bool kRegistered = RegisterExperiment<ProfileFlags>(
    "profile",
    {.usage = "profile: where a training step's time goes: every layer's forward and backward, "
              "its FLOPs\n"
              "and bytes, against this machine's measured compute and bandwidth roofs, per "
              "strategy.",
     .flags = {"strategies", "profile_steps"},
     .defaults = {{"strategies", "eager,channels_last,amp_bf16,cudnn_autotune"}},
     // `all --preset=quick`: two strategies that help on a CPU, few steps.
     .presets = {{"quick",
                  {{"profile_steps", "2"},
                   {"strategies", "eager,channels_last", /*cpu_only=*/true}}}}},
    ReadProfileFlags, RunProfile);

}  // namespace
}  // namespace trainlab::experiments
