// Profile: where a training step's time goes, per layer and pass, against the roofs this machine
// measurably reaches. For each strategy of --strategies that can run here, on one real batch of
// the training set: warm-up steps, --profile_steps plain steps (the step's wall time, nothing
// listening), then --profile_steps instrumented steps (core/op_trace.h: every layer's forward and
// backward from LibTorch's RecordFunction events, the optimizer step as its own row). Each row's
// FLOPs and bytes come from the shapes (core/op_costs.h); its achieved rates are set against the
// measured compute roof of its dtype and the measured bandwidth (core/roofline.h). Everything the
// section shows is computed here, once, into the summary (profile_report.cc renders it).
//
//   bazel run //experiments:profile -- --strategies=eager,channels_last,amp_bf16 --batch_size=128
#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/host.h"
#include "core/model.h"
#include "core/op_costs.h"
#include "core/op_trace.h"
#include "core/optimizer.h"
#include "core/roofline.h"
#include "core/status_macros.h"
#include "core/strategy.h"
#include "core/trainer.h"
#include "experiments/experiment.h"
#include "experiments/run.h"
#include "experiments/spread.h"
#include "experiments/stop.h"
#include "plugins/data/loader.h"

namespace trainlab::experiments {
namespace {

constexpr int kWarmupSteps = 2;

std::string DtypeName(c10::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "float32";
    case at::kBFloat16:
      return "bfloat16";
    case at::kHalf:
      return "float16";
    case at::kDouble:
      return "float64";
    default:
      return c10::toString(t);
  }
}

double Median(std::vector<double> v) { return v.empty() ? 0 : Spread::Of(std::move(v)).median; }

// --- The roofs -----------------------------------------------------------------------------------

struct Roofs {
  double matmul_fp32 = 0, conv_fp32 = 0, matmul_bf16 = 0, conv_bf16 = 0, bytes_per_s = 0;
  std::string bf16_problem;  // why bfloat16 was not measured, when it was asked for
  int64_t matmul_n = 0, triad_elements = 0;

  // The compute roof of a dtype: the higher of the matrix multiply's and the convolution's (on
  // Debian's LibTorch a float32 at::mm goes to the reference BLAS, 40x below oneDNN: roofline.h).
  double Compute(c10::ScalarType t) const {
    return t == at::kBFloat16 || t == at::kHalf ? std::max(matmul_bf16, conv_bf16)
                                                : std::max(matmul_fp32, conv_fp32);
  }
};

absl::StatusOr<Roofs> MeasureRoofs(c10::Device device, bool bf16) {
  Roofs r;
  // Sizes past the caches (a GPU's too), each repeat bounded: about a second in all on a CPU.
  const RoofOptions o{.device = device,
                      .matmul_n = device.is_cuda() ? 8192 : 512,
                      .triad_elements = device.is_cuda() ? int64_t{256} << 20 : int64_t{32} << 20,
                      .repeats = 3,
                      .budget_s = 2};
  r.matmul_n = o.matmul_n;
  r.triad_elements = o.triad_elements;
  TRAINLAB_ASSIGN_OR_RETURN(r.matmul_fp32, MeasureMatmulFlops(o, at::kFloat));
  TRAINLAB_ASSIGN_OR_RETURN(r.conv_fp32, MeasureConvFlops(o, at::kFloat));
  TRAINLAB_ASSIGN_OR_RETURN(r.bytes_per_s, MeasureTriadBandwidth(o));
  if (bf16) {
    absl::StatusOr<double> mm = MeasureMatmulFlops(o, at::kBFloat16);
    absl::StatusOr<double> conv = MeasureConvFlops(o, at::kBFloat16);
    if (mm.ok() && conv.ok()) {
      r.matmul_bf16 = *mm;
      r.conv_bf16 = *conv;
    } else {  // oneDNN without bf16 kernels (limited below avx512_core): named, not fatal
      r.bf16_problem = std::string((mm.ok() ? conv : mm).status().message());
    }
  }
  return r;
}

// The float32 peak where /proc/cpuinfo lets one derive it, with how; on a GPU, unknown.
nlohmann::json TheoreticalPeak(c10::Device device) {
  if (!device.is_cpu()) {
    return {{"flops_per_s", nullptr},
            {"how",
             "unknown: not derived for a GPU here (its FLOPs per clock per SM are not in "
             "cudaDeviceProp); the measured roofs stand"}};
  }
  const double mhz = std::atof(CpuInfoField("cpu MHz").value_or("0").c_str());
  const std::string flags = " " + CpuInfoField("flags").value_or("") + " ";
  if (mhz <= 0 || flags.size() <= 2) {
    return {{"flops_per_s", nullptr}, {"how", "unknown: /proc/cpuinfo has no clock or flags"}};
  }
  auto has = [&](const char* f) { return flags.find(absl::StrCat(" ", f, " ")) != flags.npos; };
  const bool fma = has("fma");
  const int lanes = has("avx512f") ? 16 : has("avx2") || has("avx") ? 8 : 4;
  const int per_cycle = lanes * 2 * (fma ? 2 : 1);  // two vector units; an FMA is 2 FLOPs
  const int threads = at::get_num_threads();
  const double peak = threads * mhz * 1e6 * per_cycle;
  return {{"flops_per_s", peak},
          {"how", absl::StrFormat(
                      "%d threads x %.0f MHz x %d FLOP/cycle (%d float32 lanes%s, two vector units "
                      "per core assumed): an upper bound, not a measurement: vCPUs that are "
                      "hyper-threads share one core's units, and wide vector code may run below "
                      "the nominal clock",
                      threads, mhz, per_cycle, lanes, fma ? ", FMA" : "")}};
}

// --- One row: a layer's pass, or the optimizer step ---------------------------------------------

nlohmann::json Row(const std::string& strategy, const std::string& name, const std::string& op,
                   const std::string& pass, c10::ScalarType dtype, double seconds,
                   const OpCost& cost, const Roofs& roofs) {
  nlohmann::json row = {{"strategy", strategy},
                        {"name", name},
                        {"op", op},
                        {"pass", pass},
                        {"dtype", DtypeName(dtype)},
                        {"seconds", seconds},
                        {"flops", cost.flops},
                        {"bytes", cost.bytes}};
  const double compute = roofs.Compute(dtype);
  row["intensity"] = cost.bytes > 0 ? nlohmann::json(cost.flops / cost.bytes) : nullptr;
  row["flops_per_s"] = seconds > 0 ? cost.flops / seconds : 0.0;
  row["bytes_per_s"] = seconds > 0 ? cost.bytes / seconds : 0.0;
  if (seconds > 0 && cost.flops > 0 && cost.bytes > 0 && compute > 0) {
    const RoofBound b = BoundAt(cost.flops / cost.bytes, compute, roofs.bytes_per_s);
    row["roof_fraction"] = cost.flops / seconds / b.attainable_flops_per_s;
    row["bound"] = b.memory_bound ? "memory" : "compute";
  } else if (seconds > 0 && cost.bytes > 0 && roofs.bytes_per_s > 0) {  // a copy: no arithmetic
    row["roof_fraction"] = cost.bytes / seconds / roofs.bytes_per_s;
    row["bound"] = "memory";
  } else {
    row["roof_fraction"] = nullptr;
    row["bound"] = "";
  }
  return row;
}

// --- One strategy --------------------------------------------------------------------------------

struct StrategyProfile {
  nlohmann::json step;
  nlohmann::json layers = nlohmann::json::array();
  absl::Status timing;  // why the layers have no times, when they have none
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
void TraceSpans(TraceRecorder* trace, const std::string& strategy, const OpTracer& tracer) {
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
                                                const StepOptions& step, const Roofs& roofs,
                                                const OneBatchOf& batch) {
  const RunConfig run = session.DefaultRun();
  const c10::Device device = run.device;
  const int steps = session.options.profile_steps;
  torch::manual_seed(run.seed);
  TRAINLAB_ASSIGN_OR_RETURN(std::shared_ptr<ClassifierImpl> model,
                            MakeModel(run.model, {.path = run.model_path}));
  int64_t parameters = 0;
  for (const at::Tensor& p : model->parameters()) parameters += p.numel();
  RunConfig check = run;
  check.num_workers = 0;
  check.evaluate = false;
  TRAINLAB_RETURN_IF_ERROR(CheckRunMemory(session, check, parameters));
  model->to(device);
  TRAINLAB_ASSIGN_OR_RETURN(const OptimizerEntry* entry,
                            OptimizerRegistry::Global().Find(run.optimizer));
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<torch::optim::Optimizer> optimizer,
                            entry->make(model->parameters(), run.optimizer_settings));
  TRAINLAB_ASSIGN_OR_RETURN(std::unique_ptr<StepRunner> runner,
                            PrepareStepRunner(*model, *optimizer, device, entry->capturable, step));
  const at::Tensor x = batch.images.to(device).contiguous(step.memory_format);
  const at::Tensor y = batch.labels.to(device);
  auto one = [&]() -> absl::StatusOr<double> {
    const Clock::time_point t0 = SyncAndNow(device);
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
  // Instrumented steps, timed on the device's own timeline (core/op_trace.h: the host's clock on
  // a CPU, events on the stream on a GPU, read after each step). Where it cannot be read, the
  // layers keep their arithmetic and lose their times, and a note says why.
  OpTracer tracer(*model, device);
  absl::Status timing = absl::OkStatus();
  std::vector<RowTimes> forward, backward;
  RowTimes optimizer_s, loose_s;
  std::vector<double> traced;
  std::vector<std::string> names;
  for (int i = 0; i < steps; ++i) {
    absl::StatusOr<double> s;
    {
      OpTracer::Recording recording(tracer);
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
    nlohmann::json row =
        Row(name, row_name, op, pass, dtype, timed ? Median(times.device) : 0, cost, roofs);
    if (host_too) {
      row["host_seconds"] = Median(times.host);
      rows_host_s += Median(times.host);
    }
    flops += row["flops"].get<double>();
    rows_s += row["seconds"].get<double>();
    if (row["bound"] == "memory") memory_bound_s += row["seconds"].get<double>();
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
  std::stable_sort(out.layers.begin(), out.layers.end(), [](const auto& a, const auto& b) {
    return a["seconds"].template get<double>() > b["seconds"].template get<double>();
  });
  const double seconds = Median(plain);
  const double rate = seconds > 0 ? flops / seconds : 0;
  out.step = {{"strategy", name},
              {"dtype", DtypeName(step_dtype)},
              {"batch_size", x.size(0)},
              {"steps", steps},
              {"seconds", seconds},
              {"seconds_min", *std::min_element(plain.begin(), plain.end())},
              {"seconds_max", *std::max_element(plain.begin(), plain.end())},
              {"traced_seconds", Median(traced)},
              {"flops", flops},
              {"forward_flops_per_image", tracer.TotalForward().flops / batch_size},
              {"step_flops_per_image", flops / batch_size},
              {"flops_per_s", rate},
              {"compute_roof_flops_per_s", compute_roof},
              {"mfu", compute_roof > 0 ? rate / compute_roof : 0.0},
              {"layers", ops.size()},
              {"parameters", parameters},
              {"timeline", timed ? tracer.timeline_name() : "none"}};
  if (timed) {
    out.step["rows_seconds"] = rows_s;
    out.step["coverage"] = seconds > 0 ? rows_s / seconds : 0.0;
    // The rows time the instrumented steps: their share of those, beside.
    out.step["coverage_of_instrumented"] = Median(traced) > 0 ? rows_s / Median(traced) : 0.0;
    out.step["overhead"] = seconds > 0 ? Median(traced) / seconds - 1 : 0.0;
    out.step["memory_bound_seconds"] = memory_bound_s;
    out.step["unattributed_backward_seconds"] = Median(loose_s.device);
    // On a GPU: the host's time to issue the rows. Near the step's time, the host's launches
    // pace the step; far below it, the device's work does.
    if (host_too) out.step["host_rows_seconds"] = rows_host_s;
  } else {
    for (nlohmann::json& row : out.layers) row["seconds"] = nullptr;
  }
  return out;
}

void PrintRoofs(const Roofs& r, const nlohmann::json& peak) {
  std::printf("Roofs (measured here, best of 3 after a warm-up):\n");
  std::printf("- float32: matrix multiply (%" PRId64 "x%" PRId64
              ") %.1f GFLOP/s, 3x3 convolution "
              "%.1f GFLOP/s\n",
              r.matmul_n, r.matmul_n, r.matmul_fp32 / 1e9, r.conv_fp32 / 1e9);
  if (r.matmul_bf16 > 0) {
    std::printf("- bfloat16: matrix multiply %.1f GFLOP/s, 3x3 convolution %.1f GFLOP/s\n",
                r.matmul_bf16 / 1e9, r.conv_bf16 / 1e9);
  } else if (!r.bf16_problem.empty()) {
    std::printf("- bfloat16: not measured: %s\n", r.bf16_problem.c_str());
  }
  std::printf("- bandwidth (float32 triad over %" PRId64 " elements): %.1f GB/s\n",
              r.triad_elements, r.bytes_per_s / 1e9);
  if (peak["flops_per_s"].is_number()) {
    std::printf("- theoretical float32 peak: %.1f GFLOP/s (%s)\n",
                peak["flops_per_s"].get<double>() / 1e9, peak["how"].get<std::string>().c_str());
  } else {
    std::printf("- theoretical peak: %s\n", peak["how"].get<std::string>().c_str());
  }
  std::fflush(stdout);
}

absl::StatusOr<ExperimentResult> RunProfile(Session& session) {
  const RunConfig run = session.DefaultRun();
  const std::vector<std::string>& names = session.options.strategies;
  for (const std::string& name : names) {  // a typo is an error, not a strategy skipped here
    for (const std::string& part : std::vector<std::string>(absl::StrSplit(name, '+'))) {
      TRAINLAB_RETURN_IF_ERROR(StrategyRegistry::Global().Find(part).status());
    }
  }
  ExperimentResult result;
  nlohmann::json skipped = nlohmann::json::array(), steps = nlohmann::json::array(),
                 layers = nlohmann::json::array();
  if (session.comm) {  // every rank the same answer, no collectives
    for (const std::string& name : names) {
      skipped.push_back({{"strategy", name},
                         {"reason",
                          "a data-parallel run: the profile measures one process (run "
                          "it without torchrun)"}});
    }
    result.summary = {{"skipped", skipped}, {"step", steps}, {"layers", layers}};
    return result;
  }
  // Which strategies run, and in which dtypes.
  std::vector<std::pair<std::string, StepOptions>> runnable;
  bool bf16 = false;
  for (const std::string& name : names) {
    absl::StatusOr<StepOptions> o = ResolveStrategies(name, session.device);
    if (!o.ok()) {
      if (!IsStrategyCannotRun(o.status())) return o.status();
      skipped.push_back({{"strategy", name}, {"reason", std::string(o.status().message())}});
      continue;
    }
    if (o->make_runner) {
      skipped.push_back({{"strategy", name},
                         {"reason",
                          "it replays the whole step as one graph: no layer boundaries "
                          "to time (C8 times it whole)"}});
      continue;
    }
    if (o->autocast_dtype == at::kBFloat16 || o->autocast_dtype == at::kHalf) bf16 = true;
    runnable.emplace_back(name, *std::move(o));
  }
  std::printf("Profile of %s, batch %" PRId64
              ", %s, on %s: %d warm-up steps, then %d plain and "
              "%d instrumented steps per strategy (medians)\n",
              run.model.c_str(), run.batch_size, run.optimizer.c_str(), run.device.str().c_str(),
              kWarmupSteps, session.options.profile_steps, session.options.profile_steps);
  TRAINLAB_ASSIGN_OR_RETURN(const Roofs roofs, MeasureRoofs(session.device, bf16));
  const nlohmann::json peak = TheoreticalPeak(session.device);
  PrintRoofs(roofs, peak);
  TRAINLAB_ASSIGN_OR_RETURN(const OneBatchOf batch, OneBatch(session, run));
  for (const auto& [name, step] : runnable) {
    TRAINLAB_ASSIGN_OR_RETURN(StrategyProfile p,
                              ProfileStrategy(session, name, step, roofs, batch));
    std::printf("- %s: step %.4fs plain, %.4fs instrumented; %.1f GFLOP/s\n", name.c_str(),
                p.step["seconds"].get<double>(), p.step["traced_seconds"].get<double>(),
                p.step["flops_per_s"].get<double>() / 1e9);
    std::fflush(stdout);
    if (!p.timing.ok()) {
      result.notes.push_back(
          absl::StrCat(name, ": the layers have no times: ", p.timing.message()));
    }
    steps.push_back(std::move(p.step));
    for (nlohmann::json& row : p.layers) layers.push_back(std::move(row));
  }
  nlohmann::json flops_per_s = {{"float32", roofs.Compute(at::kFloat)}};
  if (roofs.matmul_bf16 > 0) flops_per_s["bfloat16"] = roofs.Compute(at::kBFloat16);
  nlohmann::json r = {{"flops_per_s", flops_per_s},
                      {"matmul_flops_per_s", {{"float32", roofs.matmul_fp32}}},
                      {"conv_flops_per_s", {{"float32", roofs.conv_fp32}}},
                      {"bytes_per_s", roofs.bytes_per_s},
                      {"matmul_n", roofs.matmul_n},
                      {"triad_elements", roofs.triad_elements},
                      {"theoretical_peak", peak}};
  if (roofs.matmul_bf16 > 0) {
    r["matmul_flops_per_s"]["bfloat16"] = roofs.matmul_bf16;
    r["conv_flops_per_s"]["bfloat16"] = roofs.conv_bf16;
  }
  if (!roofs.bf16_problem.empty()) r["bfloat16_problem"] = roofs.bf16_problem;
  result.summary = {{"model", run.model},
                    {"optimizer", run.optimizer},
                    {"device", run.device.str()},
                    {"batch_size", run.batch_size},
                    {"warmup_steps", kWarmupSteps},
                    {"roofs", r},
                    {"step", steps},
                    {"layers", layers},
                    {"skipped", skipped}};
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

const bool kRegistered = ExperimentRegistry::Global().Register(
    "profile",
    {.cli = {.usage = "profile: where a training step's time goes: every layer's forward and "
                      "backward, its FLOPs\n"
                      "and bytes, against this machine's measured compute and bandwidth roofs, "
                      "per strategy.",
             .flags = {"strategies", "profile_steps"},
             .defaults = {{"strategies", "eager,channels_last,amp_bf16,cudnn_autotune"}},
             // `all --profile=quick`: two strategies that help on a CPU, few steps.
             .profiles = {{"quick",
                           {{"profile_steps", "2"},
                            {"strategies", "eager,channels_last", /*cpu_only=*/true}}}}},
     .run = RunProfile});

}  // namespace
}  // namespace trainlab::experiments
