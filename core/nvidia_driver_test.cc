// The driver probe and the refusal of a GPU LibTorch cannot use, on a machine with no GPU: a
// stand-in libcuda.so.1 (tests/fake_cuda_driver, its answers set by FAKE_CUDA_* variables) and
// fake /proc/driver/nvidia folders play the driver.
#include "core/nvidia_driver.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/device.h"
#include "tests/test_dir.h"

namespace trainlab {
namespace {

std::string FakeLibcuda() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return std::string(srcdir ? srcdir : ".") + "/" + (workspace ? workspace : "trainlab") +
         "/tests/fake_cuda_driver/libcuda_fake.so";
}

// A /proc/driver/nvidia folder: its version line and `gpus` GPU folders.
std::string FakeProc(const std::string& name, const std::string& version_line, int gpus) {
  const std::string dir = experiments::FreshTestDir(name);
  std::ofstream(dir + "/version") << version_line << "\nGCC version:  gcc version 12.2.0\n";
  std::filesystem::create_directories(dir + "/gpus");
  for (int i = 0; i < gpus; ++i) {
    std::filesystem::create_directories(dir + "/gpus/0000:00:1" + std::to_string(i) + ".0");
  }
  return dir;
}

constexpr char kClosedModule[] =
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023";
constexpr char kOpenModule[] =
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  "
    "(dvs-builder@U16-I3-B03-4-3)  Tue Jul 15 03:31:05 UTC 2025";

class DriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"FAKE_CUDA_DRIVER_VERSION", "FAKE_CUDA_DEVICE_COUNT",
                          "FAKE_CUDA_INIT_RESULT", "TRAINLAB_LIBCUDA", "TRAINLAB_NVIDIA_PROC"}) {
      unsetenv(v);
    }
    ASSERT_TRUE(std::filesystem::exists(FakeLibcuda())) << FakeLibcuda();
  }
  const std::string none_ = "/nonexistent/trainlab-test";
};

TEST_F(DriverTest, NoDriverAtAllIsNoGpu) {
  const NvidiaDriver d = ProbeNvidiaDriver({.libcuda = none_ + "/libcuda.so.1", .proc = none_});
  EXPECT_FALSE(d.module_loaded);
  EXPECT_FALSE(d.library_loaded);
  EXPECT_FALSE(d.HasGpu());
  EXPECT_NE(d.library_problem.find("libcuda.so.1 cannot be loaded"), std::string::npos)
      << d.library_problem;
}

TEST_F(DriverTest, TheLibraryReportsItsCudaAndDevices) {
  setenv("FAKE_CUDA_DEVICE_COUNT", "2", 1);
  const NvidiaDriver d = ProbeNvidiaDriver({.libcuda = FakeLibcuda(), .proc = none_});
  EXPECT_TRUE(d.library_loaded);
  EXPECT_EQ(d.cuda_version, 12020);
  EXPECT_EQ(d.devices, 2);
  EXPECT_TRUE(d.library_problem.empty()) << d.library_problem;
  EXPECT_TRUE(d.HasGpu());
  EXPECT_EQ(d.GpuCount(), 2);
  EXPECT_EQ(CudaVersionName(d.cuda_version), "12.2");
  EXPECT_EQ(CudaVersionName(13000), "13.0");
}

TEST_F(DriverTest, NoDeviceIsNoGpu) {
  setenv("FAKE_CUDA_DEVICE_COUNT", "0", 1);
  EXPECT_FALSE(ProbeNvidiaDriver({.libcuda = FakeLibcuda(), .proc = none_}).HasGpu());
  unsetenv("FAKE_CUDA_DEVICE_COUNT");
  setenv("FAKE_CUDA_INIT_RESULT", "100", 1);  // CUDA_ERROR_NO_DEVICE
  const NvidiaDriver d = ProbeNvidiaDriver({.libcuda = FakeLibcuda(), .proc = none_});
  EXPECT_EQ(d.devices, 0);
  EXPECT_FALSE(d.HasGpu());
}

TEST_F(DriverTest, AFailingInitLeavesTheModuleToTell) {
  setenv("FAKE_CUDA_INIT_RESULT", "999", 1);
  NvidiaDriver d = ProbeNvidiaDriver({.libcuda = FakeLibcuda(), .proc = none_});
  EXPECT_EQ(d.devices, -1);
  EXPECT_NE(d.library_problem.find("cuInit: "), std::string::npos) << d.library_problem;
  EXPECT_FALSE(d.HasGpu());  // nothing says a GPU is there
  d = ProbeNvidiaDriver({.libcuda = FakeLibcuda(), .proc = FakeProc("one_gpu", kClosedModule, 1)});
  EXPECT_TRUE(d.HasGpu());  // the kernel module drives one
  EXPECT_EQ(d.GpuCount(), 1);
}

TEST_F(DriverTest, TheModuleAloneShowsAGpu) {
  NvidiaDriver d = ProbeNvidiaDriver(
      {.libcuda = none_ + "/libcuda.so.1", .proc = FakeProc("closed", kClosedModule, 1)});
  EXPECT_TRUE(d.module_loaded);
  EXPECT_EQ(d.version, "535.104.05");
  EXPECT_EQ(d.module_gpus, 1);
  EXPECT_TRUE(d.HasGpu());
  d = ProbeNvidiaDriver({.libcuda = none_, .proc = FakeProc("open", kOpenModule, 2)});
  EXPECT_EQ(d.version, "580.65.06");
  EXPECT_EQ(d.GpuCount(), 2);
  // The module loaded with no GPU (a container host's /proc): nothing to use.
  EXPECT_FALSE(
      ProbeNvidiaDriver({.libcuda = none_, .proc = FakeProc("none", kOpenModule, 0)}).HasGpu());
}

NvidiaDriver OldDriver() {
  NvidiaDriver d;
  d.module_loaded = true;
  d.version = "535.104.05";
  d.module_gpus = 1;
  d.library_loaded = true;
  d.cuda_version = 12020;
  d.devices = 1;
  return d;
}

void ExpectOneLine(const absl::Status& s) {
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(s.message()).find('\n'), std::string::npos) << s.message();
}

TEST(UnusableGpuTest, ACpuBuildNamesTheDriverAndTheWaysOut) {
  const absl::Status s = UnusableGpu("auto", OldDriver(), 0);
  ExpectOneLine(s);
  const std::string m(s.message());
  EXPECT_EQ(m.rfind("--device=auto: this machine has 1 NVIDIA GPU (driver 535.104.05, runs CUDA "
                    "up to 12.2), but this LibTorch is a CPU build: ",
                    0),
            0u)
      << m;
  for (const char* want : {"--config=cuda", "for CUDA 12.2 or older",
                           "TRAINLAB_TORCH_VERSION=python", "LIBTORCH_HOME=", "--device=cpu"}) {
    EXPECT_NE(m.find(want), std::string::npos) << want << " in " << m;
  }
}

TEST(UnusableGpuTest, ABuildForANewerCudaNamesBothVersions) {
  const std::string m(UnusableGpu("cuda", OldDriver(), 13000).message());
  EXPECT_EQ(m.rfind("--device=cuda: this machine has 1 NVIDIA GPU", 0), 0u) << m;
  for (const char* want :
       {"runs CUDA up to 12.2", "built for CUDA 13.0", "needs driver 580.65.06 or newer",
        "update the driver", "TRAINLAB_TORCH_VERSION=python", "LIBTORCH_HOME=", "--device=cpu"}) {
    EXPECT_NE(m.find(want), std::string::npos) << want << " in " << m;
  }
  EXPECT_EQ(OldestDriverFor(12080), "525.60.13");
  EXPECT_EQ(OldestDriverFor(11080), "450.80.02");
}

TEST(UnusableGpuTest, AnUnreachableLibraryAndAnUnknownCause) {
  NvidiaDriver d = OldDriver();
  d.library_loaded = false;
  d.devices = -1;
  d.cuda_version = 0;
  d.library_problem = "libcuda.so.1 cannot be loaded: not found";
  std::string m(UnusableGpu("auto", d, 12080).message());
  EXPECT_NE(m.find("(driver 535.104.05)"), std::string::npos) << m;
  EXPECT_NE(m.find("cannot reach it: libcuda.so.1 cannot be loaded"), std::string::npos) << m;
  EXPECT_NE(m.find("--gpus all"), std::string::npos) << m;
  m = std::string(UnusableGpu("auto", OldDriver(), 12020).message());
  EXPECT_NE(m.find("finds no usable CUDA device"), std::string::npos) << m;
}

// ChooseDevice itself, with the stand-in driver chosen as a user's machine would have it found.
TEST_F(DriverTest, AutoRefusesAGpuThisLibTorchCannotUse) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "LibTorch uses this machine's GPU";
  setenv("TRAINLAB_LIBCUDA", FakeLibcuda().c_str(), 1);
  setenv("TRAINLAB_NVIDIA_PROC", FakeProc("auto", kClosedModule, 1).c_str(), 1);
  for (const char* flag : {"auto", "cuda"}) {
    absl::StatusOr<c10::Device> d = ChooseDevice(flag);
    ASSERT_FALSE(d.ok()) << flag;
    ExpectOneLine(d.status());
    const std::string m(d.status().message());
    EXPECT_EQ(m.rfind(std::string("--device=") + flag + ": this machine has 1 NVIDIA GPU", 0), 0u)
        << m;
    EXPECT_NE(m.find("runs CUDA up to 12.2"), std::string::npos) << m;
    EXPECT_NE(m.find(LibTorchCudaVersion() == 0 ? "a CPU build" : "built for CUDA"),
              std::string::npos)
        << m;
  }
  // On purpose: the CPU, without a word.
  for (auto [flag, disable] : {std::pair{"cpu", false}, std::pair{"auto", true}}) {
    absl::StatusOr<c10::Device> d = ChooseDevice(flag, disable);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(d->is_cpu());
  }
}

TEST_F(DriverTest, AMachineWithoutAGpuTrainsOnItsCpuSilently) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "LibTorch uses this machine's GPU";
  setenv("TRAINLAB_LIBCUDA", (none_ + "/libcuda.so.1").c_str(), 1);
  setenv("TRAINLAB_NVIDIA_PROC", none_.c_str(), 1);
  absl::StatusOr<c10::Device> d = ChooseDevice("auto");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->is_cpu());
  // The stand-in with no device: the same.
  setenv("TRAINLAB_LIBCUDA", FakeLibcuda().c_str(), 1);
  setenv("FAKE_CUDA_DEVICE_COUNT", "0", 1);
  d = ChooseDevice("auto");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->is_cpu());
  EXPECT_EQ(ChooseDevice("cuda").status().message(), "--device=cuda: no CUDA device is available");
}

}  // namespace
}  // namespace trainlab
