// The data-parallel backend each --dist_backend gives on each device, in this build (the CPU
// build has Gloo alone; --config=cuda adds NCCL for CUDA devices). No process group is made: a
// CUDA device here is only a name, so this runs on a machine without a GPU. And what a rank says
// when it cannot reach its store (port 1 on the loopback: nothing listens there, so connecting
// fails within the 1 s timeout).
#include "plugins/distributed/communicator.h"

#include <gtest/gtest.h>
#include <torch/version.h>

#include <chrono>
#include <string>

namespace trainlab::distributed {
namespace {

const c10::Device kCpu(c10::kCPU);
const c10::Device kGpu1(c10::kCUDA, 1);

TEST(ChooseBackend, GlooIsGlooOnAnyDevice) {
  EXPECT_EQ(*ChooseBackend("gloo", kCpu), Backend::kGloo);
  EXPECT_EQ(*ChooseBackend("gloo", kGpu1), Backend::kGloo);
}

TEST(ChooseBackend, AutoIsNcclOnlyOnAGpuOfABuildThatHasIt) {
  EXPECT_EQ(*ChooseBackend("auto", kCpu), Backend::kGloo);
  EXPECT_EQ(*ChooseBackend("auto", kGpu1), NcclBuilt() ? Backend::kNccl : Backend::kGloo);
}

TEST(ChooseBackend, NcclIsRefusedWithTheFix) {
  const absl::StatusOr<Backend> cpu = ChooseBackend("nccl", kCpu);
  ASSERT_FALSE(cpu.ok());
  if (NcclBuilt()) {
    EXPECT_EQ(cpu.status().message(),
              "--dist_backend=nccl: NCCL runs on CUDA devices and this rank trains on cpu "
              "(--device=cuda, or --dist_backend=gloo on the CPU)");
    EXPECT_EQ(*ChooseBackend("nccl", kGpu1), Backend::kNccl);
  } else {
    EXPECT_EQ(cpu.status().message(),
              "--dist_backend=nccl: this build has no NCCL process group (build with "
              "--config=cuda; --dist_backend=gloo serves CPU and, through host copies, CUDA "
              "tensors)");
    EXPECT_FALSE(ChooseBackend("nccl", kGpu1).ok());
  }
}

TEST(ChooseBackend, AnUnknownNameIsNamed) {
  const absl::StatusOr<Backend> b = ChooseBackend("mpi", kCpu);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().message(), "--dist_backend=mpi: not auto, gloo or nccl");
}

TEST(ChooseBackend, NamesAreTheFlagsValues) {
  EXPECT_STREQ(BackendName(Backend::kGloo), "gloo");
  EXPECT_STREQ(BackendName(Backend::kNccl), "nccl");
}

absl::Status ReachNobody(bool agent_store) {
  DistEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.master_addr = "127.0.0.1";
  env.master_port = 1;
  env.agent_store = agent_store;
  return Communicator::Connect(env, std::chrono::milliseconds(1000), Backend::kGloo, kCpu).status();
}

TEST(Connect, AStoreNoOneHostsIsOneErrorNamingIt) {
  const absl::Status s = ReachNobody(/*agent_store=*/false);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  const std::string m(s.message());
  EXPECT_NE(m.find("rank 1 of 2: cannot reach the store at 127.0.0.1:1 within 1 s"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("torchrun"), std::string::npos) << m;
}

TEST(Connect, TorchrunsStoreUnreachedNamesTheVersionItMustSpeak) {
  // A LibTorch 2.x rank under Debian's torchrun 1.13 is reset by the agent's store: the line
  // says which torchrun it needs.
  const absl::Status s = ReachNobody(/*agent_store=*/true);
  ASSERT_FALSE(s.ok());
  const std::string m(s.message());
  EXPECT_NE(m.find("torchrun's agent hosts this store"), std::string::npos) << m;
  EXPECT_NE(m.find(std::string("(") + TORCH_VERSION + ")"), std::string::npos) << m;
}

}  // namespace
}  // namespace trainlab::distributed
