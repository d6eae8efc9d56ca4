// Linking this library registers the compile strategy `amp_bf16`: forward and loss under
// autocast to bfloat16 (LibTorch's autocast on CPU and GPU); backward and the weights stay fp32.
#include <string>

#include "absl/strings/str_cat.h"
#include "core/kernels.h"
#include "core/strategy.h"

namespace trainlab::compile {
namespace {

// On the CPU, ATen sends bf16 convolutions to oneDNN when the CPU has AVX-512 (BW, VL, DQ: its
// own cpuid check), else to its slower reference kernels. oneDNN has bf16 convolutions only from
// avx512_core on: limited below that (--portable_kernels, DNNL_MAX_CPU_ISA) on an AVX-512 CPU,
// every bf16 convolution would fail ("could not create a primitive descriptor iterator").
absl::Status CanRun(const c10::Device& device) {
  if (!device.is_cpu()) return absl::OkStatus();
  __builtin_cpu_init();
  const bool aten_uses_onednn = __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vl") &&
                                __builtin_cpu_supports("avx512dq");
  const std::string isa = KernelsInUse().onednn;
  if (aten_uses_onednn && (isa == "sse41" || isa == "avx" || isa == "avx2")) {
    return absl::FailedPreconditionError(absl::StrCat(
        "amp_bf16 cannot run with oneDNN limited to ", isa,
        " on this AVX-512 CPU (--portable_kernels or DNNL_MAX_CPU_ISA): ATen sends bf16 "
        "convolutions to oneDNN here, and oneDNN has none below avx512_core"));
  }
  return absl::OkStatus();
}

const bool kRegistered = StrategyRegistry::Global().Register(
    "amp_bf16", {.description = "autocast forward and loss to bfloat16 (mixed precision)",
                 .can_run = CanRun,
                 .apply = [](StepOptions& o) { o.autocast_dtype = c10::ScalarType::BFloat16; }});

}  // namespace
}  // namespace trainlab::compile
