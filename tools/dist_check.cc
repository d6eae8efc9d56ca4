// dist_check: exercises the data-parallel plumbing across real processes, for tests and for
// checking a launcher (torchrun) or a cluster by hand. Run one per rank with the environment set:
//
//   RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 dist_check allreduce &
//   RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 dist_check allreduce
//   torchrun --no_python --nproc_per_node=2 --redirects 2 --tee 2 dist_check allreduce
//   WORLD_SIZE=1 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 dist_check train --device=cuda
//
// --device=cpu|cuda (default cpu): where the checked tensors and the model live (cuda:LOCAL_RANK);
// --backend=auto|gloo|nccl (default auto: NCCL on CUDA in a --config=cuda build), as the
// experiments' --dist_backend. With a backend or device given, WORLD_SIZE=1 is a one-rank process
// group (a GPU machine with one GPU checks the NCCL plumbing that way: tools/gpu_check.sh).
// Modes:
//   allreduce  broadcast from rank 0, average and sum over ranks; checks every result
//   die        the last rank exits right after joining; the others must fail with a clear error
//   hang       the last rank sleeps after joining; the others must fail after --timeout
//   train      ResNet-18 without BN (each rank seeded differently: attaching must broadcast rank
//              0's weights), 3 SGD steps, each rank on its 1/W of a fixed batch,
//              gradients averaged by c10d's Reducer; checks the ranks' parameters are identical
//              and equal one process trained on the whole batch
//   bench      times, on every rank, the all-reduce of ResNet-18's gradients (11,173,962 floats)
//              as one flat buffer and in DDP's buckets, and a training step (ResNet-18, batch
//              --bench_batch per rank) alone, with gradients averaged after backward, and with
//              c10d's Reducer overlapping them with backward; rank 0 prints medians
// Exit 0 when the rank saw what it should; 1 with one error line otherwise.
#include <ATen/ATen.h>
#include <c10/util/Logging.h>
#include <glog/logging.h>
#include <unistd.h>

#include <torch/cuda.h>
#include <torch/optim/sgd.h>

#include <ATen/Parallel.h>
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/model.h"
#include "core/step.h"
#include "plugins/distributed/communicator.h"
#include "plugins/distributed/data_parallel.h"
#include "plugins/distributed/dist_env.h"

namespace trainlab::distributed {
namespace {

constexpr int64_t kPerRank = 4;
constexpr int kSteps = 3;

// A fixed batch by formula: x.flat[i] = ((37 i + 11 + 13 step) mod 101) / 50 - 1.
std::pair<at::Tensor, at::Tensor> GlobalBatch(int64_t n, int step) {
  const at::Tensor i = at::arange(n * 3 * 32 * 32, at::kLong);
  at::Tensor x = ((i * 37 + 11 + 13 * step).remainder(101).to(at::kDouble) / 50.0 - 1.0)
                     .to(at::kFloat)
                     .reshape({n, 3, 32, 32});
  at::Tensor y = (at::arange(n, at::kLong) * 3 + 1 + step).remainder(10);
  return {x, y};
}

struct Trained {
  std::shared_ptr<ClassifierImpl> model;
  std::unique_ptr<torch::optim::SGD> sgd;
};

// `rows` of each step's batch of `n`, with `hooks` around each step, on `device`.
absl::StatusOr<Trained> Train(uint64_t seed, int64_t n, int64_t first, int64_t count,
                              Communicator* comm, c10::Device device) {
  Trained t;
  torch::manual_seed(seed);
  absl::StatusOr<std::shared_ptr<ClassifierImpl>> m = MakeModel("resnet18_no_bn", {});
  if (!m.ok()) return m.status();
  t.model = *m;
  t.model->to(device);
  std::unique_ptr<DataParallel> dp;
  if (comm != nullptr) {
    absl::StatusOr<std::unique_ptr<DataParallel>> a = DataParallel::Attach(*comm, *t.model);
    if (!a.ok()) return a.status();
    dp = std::move(*a);
  }
  t.sgd = std::make_unique<torch::optim::SGD>(
      t.model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4));
  StepFunctions fns;
  fns.module = t.model.get();
  fns.forward = [&t](const at::Tensor& x) { return t.model->forward(x); };
  fns.zero_grad = [&t] { t.sgd->zero_grad(); };
  fns.optimizer_step = [&t] { t.sgd->step(); };
  if (dp) fns.gradients = dp->hooks();
  for (int step = 0; step < kSteps; ++step) {
    auto [x, y] = GlobalBatch(n, step);
    EagerStep(fns, StepOptions{}, x.narrow(0, first, count).to(device),
              y.narrow(0, first, count).to(device), nullptr);
  }
  return t;
}

// Data-parallel training equals one process on the union of the ranks' batches.
int CheckTraining(Communicator& c, c10::Device device);
// Timings for docs/distributed.md.
int Bench(Communicator& c, int64_t batch, int reps);

int Fail(const std::string& message) {
  std::fprintf(stderr, "dist_check: error: %s\n", message.c_str());
  return 1;
}

int Run(int argc, char** argv) {
  std::vector<std::string> args;  // positional: mode, timeout, batch, repetitions
  std::string device_flag, backend_flag;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--device=", 0) == 0) {
      device_flag = a.substr(9);
    } else if (a.rfind("--backend=", 0) == 0) {
      backend_flag = a.substr(10);
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) {
    return Fail(
        "usage: dist_check allreduce|die|hang|train|bench [timeout_seconds] "
        "[--device=cpu|cuda] [--backend=auto|gloo|nccl]");
  }
  const std::string mode = args[0];
  double timeout_s = 10;
  if (args.size() > 1 && !absl::SimpleAtod(args[1], &timeout_s)) return Fail("bad timeout");
  if (device_flag != "" && device_flag != "cpu" && device_flag != "cuda") {
    return Fail(absl::StrCat("--device=", device_flag, ": not cpu or cuda"));
  }
  // With --device or --backend, WORLD_SIZE=1 is a group of one rank (a one-GPU machine).
  const bool group_of_one = !device_flag.empty() || !backend_flag.empty();
  absl::StatusOr<std::optional<DistEnv>> read = ReadDistEnv(std::getenv, group_of_one);
  if (!read.ok()) return Fail(std::string(read.status().message()));
  if (!read->has_value()) {
    return Fail(
        "WORLD_SIZE is not set above 1 (or to 1 with --device/--backend): nothing to check");
  }
  const DistEnv* env = &**read;
  c10::Device device(c10::kCPU);
  if (device_flag == "cuda") {
    if (!torch::cuda::is_available()) return Fail("--device=cuda: no CUDA device is available");
    device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env->local_rank));
  }
  absl::StatusOr<Backend> backend =
      ChooseBackend(backend_flag.empty() ? "auto" : backend_flag, device);
  if (!backend.ok()) return Fail(std::string(backend.status().message()));
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  absl::StatusOr<std::unique_ptr<Communicator>> comm =
      Communicator::Connect(*env, timeout, *backend, device);
  if (!comm.ok()) return Fail(std::string(comm.status().message()));
  Communicator& c = **comm;
  const int r = c.rank(), w = c.world_size();
  const bool last = r == w - 1;

  if (mode == "train") return CheckTraining(c, device);
  if (mode == "bench") {
    int64_t batch = 32;
    int reps = 10;
    if (args.size() > 2 && !absl::SimpleAtoi(args[2], &batch)) return Fail("bad batch");
    if (args.size() > 3 && !absl::SimpleAtoi(args[3], &reps)) return Fail("bad repetitions");
    return Bench(c, batch, reps);
  }
  if (mode == "die" && last) {
    std::fflush(stdout);
    _exit(3);
  }
  if (mode == "hang" && last) {
    std::this_thread::sleep_for(std::chrono::hours(1));
    return 0;
  }

  // Broadcast: rank 0's (r + 1) * arange everywhere, float and int64 alike (on --device: NCCL's
  // tensors under --backend=nccl).
  at::Tensor f = (at::arange(5, at::kFloat) * (r + 1)).to(device);
  at::Tensor i = at::full({3}, 7 * (r + 1), at::kLong).to(device);
  if (absl::Status s = c.Broadcast({f, i}); !s.ok()) return Fail(std::string(s.message()));
  if (!at::equal(f.cpu(), at::arange(5, at::kFloat)) ||
      !at::equal(i.cpu(), at::full({3}, 7, at::kLong))) {
    return Fail(absl::StrCat("rank ", r, ": broadcast did not give rank 0's values"));
  }
  // Average: rank r holds r + 1 in two tensors of different shapes; the mean is (w + 1) / 2.
  at::Tensor a = at::full({4, 3}, r + 1.0).to(device), b = at::full({7}, 2.0 * (r + 1)).to(device);
  if (absl::Status s = c.AverageInPlace({a, b}); !s.ok()) return Fail(std::string(s.message()));
  const double mean = (w + 1) / 2.0;
  if (!at::allclose(a.cpu(), at::full({4, 3}, mean)) ||
      !at::allclose(b.cpu(), at::full({7}, 2 * mean))) {
    return Fail(absl::StrCat("rank ", r, ": average wrong: ", a[0][0].item<double>()));
  }
  absl::StatusOr<std::vector<double>> sum = c.SumOverRanks({1.0, static_cast<double>(r)});
  if (!sum.ok()) return Fail(std::string(sum.status().message()));
  if ((*sum)[0] != w || (*sum)[1] != w * (w - 1) / 2.0) {
    return Fail(absl::StrCat("rank ", r, ": sum over ranks wrong"));
  }
  std::printf(
      "dist_check: %s: broadcast, average and sum over %d rank(s) correct (%s tensors, %s)\n",
      c.env().str().c_str(), w, device.str().c_str(), BackendName(c.backend()));
  return 0;
}

int CheckTraining(Communicator& c, c10::Device device) {
  const int r = c.rank(), w = c.world_size();
  const int64_t n = kPerRank * w;
  // Seeded by rank on purpose: only Attach's broadcast makes the ranks start alike.
  absl::StatusOr<Trained> mine;
  try {
    mine = Train(100 + r, n, kPerRank * r, kPerRank, &c, device);
  } catch (const std::exception& e) {
    return Fail(absl::StrCat("rank ", r, ": training failed: ", e.what()));
  }
  if (!mine.ok()) return Fail(std::string(mine.status().message()));
  absl::StatusOr<Trained> one = Train(100, n, 0, n, nullptr, device);  // rank 0's, whole batch
  if (!one.ok()) return Fail(std::string(one.status().message()));

  std::vector<at::Tensor> params = mine->model->parameters(), ref = one->model->parameters();
  std::vector<at::Tensor> rank0;
  for (const at::Tensor& p : params) rank0.push_back(p.detach().clone());
  if (absl::Status s = c.Broadcast(rank0); !s.ok()) return Fail(std::string(s.message()));
  bool identical = true;
  double worst = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    identical = identical && at::equal(params[k], rank0[k]);
    worst = std::max(worst, (params[k] - ref[k]).abs().max().item<double>());  // on the device
  }
  std::printf("dist_check: rank %d of %d: %d SGD steps of %" PRId64
              " images per rank on %s (%s): parameters %s across ranks; largest difference "
              "from one process on all %" PRId64 " images: %.2e\n",
              r, w, kSteps, kPerRank, device.str().c_str(), BackendName(c.backend()),
              identical ? "identical" : "DIFFERENT", n, worst);
  if (!identical) return Fail(absl::StrCat("rank ", r, ": parameters differ from rank 0's"));
  // On a GPU, cuDNN picks its algorithms per batch shape (and LibTorch lets convolutions use TF32
  // by default), so half a batch and a whole one round differently: a looser bound there.
  const double bound = device.is_cuda() ? 1e-3 : 1e-5;
  if (worst > bound) {
    return Fail(absl::StrCat("rank ", r, ": differs from one process by ", worst));
  }
  return 0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

template <class F>
double TimeMedian(Communicator& c, int reps, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < reps + 1; ++i) {  // the first is a warm-up
    (void)c.Barrier();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) t.push_back(s);
  }
  return Median(t);
}

int Bench(Communicator& c, int64_t batch, int reps) {
  torch::manual_seed(1);
  absl::StatusOr<std::shared_ptr<ClassifierImpl>> m = MakeModel("resnet18", {});
  if (!m.ok()) return Fail(std::string(m.status().message()));
  std::vector<at::Tensor> params = (*m)->parameters();
  int64_t floats = 0;
  for (const at::Tensor& p : params) floats += p.numel();
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) grads.push_back(at::randn_like(p));
  // DDP's bucket assignment (1 MiB first, then 25 MiB), each bucket one all-reduce.
  std::vector<std::vector<at::Tensor>> buckets;
  for (const std::vector<size_t>& indices : DataParallel::Buckets(params)) {
    buckets.emplace_back();
    for (size_t i : indices) buckets.back().push_back(grads[i]);
  }
  absl::Status st;
  const double flat = TimeMedian(c, reps, [&] { st.Update(c.AverageInPlace(grads)); });
  const double bucketed = TimeMedian(c, reps, [&] {
    for (auto& b : buckets) st.Update(c.AverageInPlace(b));
  });
  // What every batch adds on top of the gradients: the agreement on its outcome (one all-reduce
  // of two doubles: diverged?, stop signal) and DDP's broadcast of rank 0's batch-norm buffers.
  const double agree = TimeMedian(c, reps, [&] { st.Update(c.MaxOverRanks({0.0, 0.0}).status()); });
  if (!st.ok()) return Fail(std::string(st.message()));

  auto [x, y] = GlobalBatch(batch, 0);
  torch::optim::SGD sgd((*m)->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  StepFunctions fns;
  fns.module = m->get();
  fns.forward = [&](const at::Tensor& in) { return (*m)->forward(in); };
  fns.zero_grad = [&] { sgd.zero_grad(); };
  fns.optimizer_step = [&] { sgd.step(); };
  const double alone = TimeMedian(c, reps, [&] { EagerStep(fns, StepOptions{}, x, y, nullptr); });
  StepFunctions after = fns;
  after.optimizer_step = [&] {
    std::vector<at::Tensor> g;
    for (const at::Tensor& p : params) g.push_back(p.grad());
    st.Update(c.AverageInPlace(g));
    sgd.step();
  };
  const double no_overlap =
      TimeMedian(c, reps, [&] { EagerStep(after, StepOptions{}, x, y, nullptr); });
  absl::StatusOr<std::unique_ptr<DataParallel>> dp = DataParallel::Attach(c, **m);
  if (!dp.ok()) return Fail(std::string(dp.status().message()));
  const double buffers = TimeMedian(c, reps, [&] { st.Update((*dp)->SyncBuffers()); });
  int64_t buffer_floats = 0;
  for (const at::Tensor& b : (*m)->buffers()) buffer_floats += b.numel();
  StepFunctions overlapped = fns;
  overlapped.gradients = (*dp)->hooks();
  const double overlap =
      TimeMedian(c, reps, [&] { EagerStep(overlapped, StepOptions{}, x, y, nullptr); });
  if (!st.ok()) return Fail(std::string(st.message()));
  if (c.rank() == 0) {
    std::printf("dist_check bench: %d ranks, %" PRId64
                " gradient floats (%.1f MB), %d reps, "
                "medians, %d intra-op thread(s) per rank\n",
                c.world_size(), floats, floats * 4 / 1e6, reps, at::get_num_threads());
    std::printf("  all-reduce, one flat buffer:          %8.1f ms\n", flat * 1e3);
    std::printf("  all-reduce, %zu DDP buckets in turn:    %8.1f ms\n", buckets.size(),
                bucketed * 1e3);
    std::printf("  agreement on a batch (all-reduce, 2 doubles):  %8.3f ms\n", agree * 1e3);
    std::printf("  batch-norm buffers from rank 0 (%" PRId64 " values): %8.3f ms\n", buffer_floats,
                buffers * 1e3);
    std::printf("  step (batch %" PRId64 " per rank), no communication:     %8.1f ms\n", batch,
                alone * 1e3);
    std::printf("  step, flat all-reduce after backward:          %8.1f ms\n", no_overlap * 1e3);
    std::printf("  step, Reducer overlapping backward (DDP):      %8.1f ms (%d buckets)\n",
                overlap * 1e3, (*dp)->buckets());
  }
  return 0;
}

}  // namespace
}  // namespace trainlab::distributed

int main(int argc, char** argv) {
  // LibTorch's own log lines (c10d's socket retries and timeouts) are kept off stderr: the one
  // error line a failure gets is ours, made from the Status.
  FLAGS_stderrthreshold = google::FATAL;  // LibTorch 1.13 logs through glog
#if !defined(C10_USE_GLOG) && !defined(C10_USE_GFLAGS)
  FLAGS_caffe2_log_level = 3;  // LibTorch 2.x wheels log through c10's own logger: FATAL only
#endif
  google::InitGoogleLogging(argv[0]);
  return trainlab::distributed::Run(argc, argv);
}
