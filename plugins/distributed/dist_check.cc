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
// Exit 0 when the rank saw what it should; 1 with one error line otherwise.
#include <ATen/ATen.h>
#include <glog/logging.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "plugins/distributed/communicator.h"
#include "plugins/distributed/dist_env.h"

namespace trainlab::distributed {
namespace {

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

}  // namespace
}  // namespace trainlab::distributed

int main(int argc, char** argv) {
  // LibTorch's own log lines (c10d's socket retries) go to glog's files: the one error line a
  // failure gets is ours, made from the Status.
  FLAGS_stderrthreshold = google::FATAL;
  google::InitGoogleLogging(argv[0]);
  return trainlab::distributed::Run(argc, argv);
}
