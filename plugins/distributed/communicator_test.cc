// The data-parallel backend each --dist_backend gives on each device, in this build (the CPU
// build has Gloo alone; --config=cuda adds NCCL for CUDA devices). No process group is made: a
// CUDA device here is only a name, so this runs on a machine without a GPU.
#include "plugins/distributed/communicator.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace trainlab::distributed
