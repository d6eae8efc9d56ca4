// PinKernels and KernelsInUse against the libraries themselves. Kernels are chosen once per
// process, so the steps run in order inside one test: pin, read back, run an operation, then try
// to change the choice (which must fail and say so).
#include "core/kernels.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace trainlab {
namespace {

TEST(Kernels, PinnedBeforeTheFirstOperationAndReadBackAfterIt) {
  if (!kernels_internal::CpuRunsAten("avx2")) {
    const absl::Status st = PinKernels(kPortableKernels);
    EXPECT_TRUE(absl::IsFailedPrecondition(st)) << st;
    EXPECT_NE(st.message().find("cannot run the avx2 kernels"), absl::string_view::npos) << st;
    GTEST_SKIP() << "this CPU has no AVX2: " << st.message();
  }
  // Whatever the test's environment asks for (tools/isa_check.sh sets other capabilities), the
  // pin wins: it is what --portable_kernels promises.
  ASSERT_TRUE(PinKernels(kPortableKernels).ok());
  const KernelSet got = KernelsInUse();
  EXPECT_EQ(got.aten, "avx2");
  // Debian's LibTorch exports oneDNN's API; a LibTorch that hides it reads "unknown".
  if (got.onednn != "unknown") {
    EXPECT_EQ(got.onednn, "avx2");
  }
  EXPECT_STREQ(std::getenv("ATEN_CPU_CAPABILITY"), "avx2");
  EXPECT_STREQ(std::getenv("DNNL_MAX_CPU_ISA"), "AVX2");

  // Run a convolution (oneDNN) and a batch norm (ATen's vectorised kernels): still the same set.
  const at::Tensor x = at::randn({2, 3, 8, 8});
  const at::Tensor w = at::randn({4, 3, 3, 3});
  const at::Tensor y = at::batch_norm(at::conv2d(x, w), {}, {}, {}, {}, true, 0.1, 1e-5, false);
  EXPECT_EQ(y.sizes(), (at::IntArrayRef{2, 4, 6, 6}));
  EXPECT_EQ(KernelsInUse(), got);

  // Now the choice is made: asking for another set is an error naming both, never a silent
  // half-pinned process.
  const absl::Status late = PinKernels({"default", "sse41"});
  EXPECT_TRUE(absl::IsFailedPrecondition(late)) << late;
  EXPECT_NE(late.message().find("but LibTorch uses ATen avx2"), absl::string_view::npos) << late;
  EXPECT_NE(late.message().find("pin them before it"), absl::string_view::npos) << late;
}

TEST(Kernels, UnknownNamesAreRefused) {
  EXPECT_TRUE(absl::IsInvalidArgument(PinKernels({"avx2", "avx9000"})));
  EXPECT_TRUE(absl::IsFailedPrecondition(PinKernels({"neon", "avx2"})));
}

TEST(Kernels, OneDnnIsaNamesRoundTrip) {
  for (const auto& n : kernels_internal::kIsaNames) {
    EXPECT_EQ(kernels_internal::IsaNameOf(n.value), n.name);
    // A name read back from 2.x and 3.x values pins its first (2.x) value.
    EXPECT_EQ(kernels_internal::IsaNameOf(kernels_internal::IsaValueOf(n.name)), n.name);
  }
  EXPECT_EQ(kernels_internal::IsaNameOf(0x3e7), "avx512_core_amx");  // oneDNN 2.x's AMX
  EXPECT_EQ(kernels_internal::IsaNameOf(0xfef), "avx512_core_amx");  // oneDNN 3.x's
  EXPECT_EQ(kernels_internal::IsaNameOf(0x12345), "isa 0x12345");    // unknown: the number
}

TEST(Kernels, BlasIsNamed) { EXPECT_FALSE(LoadedBlas().empty()); }

}  // namespace
}  // namespace trainlab
