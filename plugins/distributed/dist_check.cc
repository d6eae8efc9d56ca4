// dist_check: exercises the data-parallel plumbing across real processes, for tests and for
// checking a launcher (torchrun) or a cluster by hand. Run one per rank with the environment set:
//
//   RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 dist_check allreduce &
//   RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 dist_check allreduce
//   torchrun --no_python --nproc_per_node=2 --redirects 2 --tee 2 dist_check allreduce
//
// Modes:
//   allreduce  broadcast from rank 0, average and sum over ranks; checks every result
//   die        the last rank exits right after joining; the others must fail with a clear error
//   hang       the last rank sleeps after joining; the others must fail after --timeout
//   train      ResNet-18 without BN (each rank seeded differently: attaching must broadcast rank
//              0's weights), 3 SGD steps, each rank on its 1/W of a fixed batch,
//              gradients averaged by c10d's Reducer; checks the ranks' parameters are identical
//              and equal one process trained on the whole batch
// Exit 0 when the rank saw what it should; 1 with one error line otherwise.
#include <ATen/ATen.h>
#include <glog/logging.h>
#include <unistd.h>

#include <torch/optim/sgd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

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

// `rows` of each step's batch of `n`, with `hooks` around each step.
absl::StatusOr<Trained> Train(uint64_t seed, int64_t n, int64_t first, int64_t count,
                              Communicator* comm) {
  Trained t;
  torch::manual_seed(seed);
  absl::StatusOr<std::shared_ptr<ClassifierImpl>> m = MakeModel("resnet18_no_bn", {});
  if (!m.ok()) return m.status();
  t.model = *m;
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
    EagerStep(fns, StepOptions{}, x.narrow(0, first, count), y.narrow(0, first, count), nullptr);
  }
  return t;
}

// Data-parallel training equals one process on the union of the ranks' batches.
int CheckTraining(Communicator& c);

int Fail(const std::string& message) {
  std::fprintf(stderr, "dist_check: error: %s\n", message.c_str());
  return 1;
}

int Run(int argc, char** argv) {
  if (argc < 2) return Fail("usage: dist_check allreduce|die|hang [timeout_seconds]");
  const std::string mode = argv[1];
  double timeout_s = 10;
  if (argc > 2 && !absl::SimpleAtod(argv[2], &timeout_s)) return Fail("bad timeout");
  absl::StatusOr<std::optional<DistEnv>> env = ReadDistEnv();
  if (!env.ok()) return Fail(std::string(env.status().message()));
  if (!env->has_value()) return Fail("WORLD_SIZE is not set above 1: nothing to check");
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  absl::StatusOr<std::unique_ptr<Communicator>> comm = Communicator::Connect(**env, timeout);
  if (!comm.ok()) return Fail(std::string(comm.status().message()));
  Communicator& c = **comm;
  const int r = c.rank(), w = c.world_size();
  const bool last = r == w - 1;

  if (mode == "train") return CheckTraining(c);
  if (mode == "die" && last) {
    std::fflush(stdout);
    _exit(3);
  }
  if (mode == "hang" && last) {
    std::this_thread::sleep_for(std::chrono::hours(1));
    return 0;
  }

  // Broadcast: rank 0's (r + 1) * arange everywhere, float and int64 alike.
  at::Tensor f = at::arange(5, at::kFloat) * (r + 1);
  at::Tensor i = at::full({3}, 7 * (r + 1), at::kLong);
  if (absl::Status s = c.Broadcast({f, i}); !s.ok()) return Fail(std::string(s.message()));
  if (!at::equal(f, at::arange(5, at::kFloat)) || !at::equal(i, at::full({3}, 7, at::kLong))) {
    return Fail(absl::StrCat("rank ", r, ": broadcast did not give rank 0's values"));
  }
  // Average: rank r holds r + 1 in two tensors of different shapes; the mean is (w + 1) / 2.
  at::Tensor a = at::full({4, 3}, r + 1.0), b = at::full({7}, 2.0 * (r + 1));
  if (absl::Status s = c.AverageInPlace({a, b}); !s.ok()) return Fail(std::string(s.message()));
  const double mean = (w + 1) / 2.0;
  if (!at::allclose(a, at::full({4, 3}, mean)) || !at::allclose(b, at::full({7}, 2 * mean))) {
    return Fail(absl::StrCat("rank ", r, ": average wrong: ", a[0][0].item<double>()));
  }
  absl::StatusOr<std::vector<double>> sum = c.SumOverRanks({1.0, static_cast<double>(r)});
  if (!sum.ok()) return Fail(std::string(sum.status().message()));
  if ((*sum)[0] != w || (*sum)[1] != w * (w - 1) / 2.0) {
    return Fail(absl::StrCat("rank ", r, ": sum over ranks wrong"));
  }
  std::printf("dist_check: %s: broadcast, average and sum over %d ranks correct\n",
              c.env().str().c_str(), w);
  return 0;
}

int CheckTraining(Communicator& c) {
  const int r = c.rank(), w = c.world_size();
  const int64_t n = kPerRank * w;
  // Seeded by rank on purpose: only Attach's broadcast makes the ranks start alike.
  absl::StatusOr<Trained> mine;
  try {
    mine = Train(100 + r, n, kPerRank * r, kPerRank, &c);
  } catch (const std::exception& e) {
    return Fail(absl::StrCat("rank ", r, ": training failed: ", e.what()));
  }
  if (!mine.ok()) return Fail(std::string(mine.status().message()));
  absl::StatusOr<Trained> one = Train(100, n, 0, n, nullptr);  // rank 0's seed, whole batch
  if (!one.ok()) return Fail(std::string(one.status().message()));

  std::vector<at::Tensor> params = mine->model->parameters(), ref = one->model->parameters();
  std::vector<at::Tensor> rank0;
  for (const at::Tensor& p : params) rank0.push_back(p.detach().clone());
  if (absl::Status s = c.Broadcast(rank0); !s.ok()) return Fail(std::string(s.message()));
  bool identical = true;
  double worst = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    identical = identical && at::equal(params[k], rank0[k]);
    worst = std::max(worst, (params[k] - ref[k]).abs().max().item<double>());
  }
  std::printf("dist_check: rank %d of %d: %d SGD steps of %" PRId64
              " images per rank: parameters %s across ranks; largest difference from one "
              "process on all %" PRId64 " images: %.2e\n",
              r, w, kSteps, kPerRank, identical ? "identical" : "DIFFERENT", n, worst);
  if (!identical) return Fail(absl::StrCat("rank ", r, ": parameters differ from rank 0's"));
  if (worst > 1e-5) return Fail(absl::StrCat("rank ", r, ": differs from one process by ", worst));
  return 0;
}

}  // namespace
}  // namespace trainlab::distributed

int main(int argc, char** argv) {
  // LibTorch's own log lines (c10d's socket retries) go to glog's files: the one error line a
  // failure gets is ours, made from the Status.
  FLAGS_stderrthreshold = google::FATAL;
  google::InitGoogleLogging(argv[0]);
  return trainlab::distributed::Run(argc, argv);
}
