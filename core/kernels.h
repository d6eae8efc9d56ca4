// Which CPU kernels LibTorch runs, read back from the libraries, and pinned to a portable set.
//
// Float results depend on the kernels: ATen picks its vectorised CPU kernels (batch norm,
// reductions, element-wise math) by the CPU's capability (DEFAULT, AVX2, AVX512), and oneDNN,
// which runs the convolutions, JIT-compiles for the best ISA it finds (avx2, avx512_core,
// avx512_core_bf16 ...). Two CPUs of the same architecture but other vector widths sum in
// another order and round differently (~1e-7 relative per op, magnified by batch norm on a small
// batch: ~1.5e-4 at step 1, measured in docs/reproducibility.md). Pinning both libraries to the
// AVX2 kernels, which every x86-64 CPU this lab meets has, gives the same bits on all of them.
//
// Both libraries choose once, on first use, and read their choice from the environment then:
// `ATEN_CPU_CAPABILITY=default|avx2|avx512` and `DNNL_MAX_CPU_ISA` (newer oneDNN:
// `ONEDNN_MAX_CPU_ISA`). PinKernels must therefore run before the first tensor operation of the
// process; it reads the choice back afterwards and fails when a library chose otherwise (an
// operation ran first, or the library ignores the setting).
//
// Example:
//   TRAINLAB_RETURN_IF_ERROR(trainlab::PinKernels(trainlab::kPortableKernels));  // top of main()
//   std::printf("kernels: %s\n", trainlab::KernelsInUse().str().c_str());      // "ATen avx2, ..."
#ifndef TRAINLAB_CORE_KERNELS_H_
#define TRAINLAB_CORE_KERNELS_H_

#include <ATen/Version.h>
#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace trainlab {

// A kernel set: ATen's CPU capability and oneDNN's ISA, in the spelling of their environment
// variables (lower case): aten "default" | "avx2" | "avx512"; onednn "sse41", "avx2",
// "avx512_core", "avx512_core_vnni", "avx512_core_bf16", ...; "unknown" where it cannot be read.
struct KernelSet {
  std::string aten;
  std::string onednn;
  std::string str() const { return absl::StrCat("ATen ", aten, ", oneDNN ", onednn); }
  bool operator==(const KernelSet&) const = default;
};

// The set every x86-64 CPU with AVX2 and FMA (Intel Haswell, 2013; AMD Zen, 2017, and later) runs:
// what --portable_kernels pins, and what the golden files were made with.
inline const KernelSet kPortableKernels{"avx2", "avx2"};

namespace kernels_internal {

// oneDNN's C API, looked up at run time: Debian's LibTorch links libdnnl.so.2, which exports it;
// a LibTorch with oneDNN linked in statically (PyPI's) may hide it, and then only the
// environment variables pin oneDNN and its choice reads "unknown".
template <class Fn>
Fn* DnnlFunction(const char* name) {
  if (void* f = dlsym(RTLD_DEFAULT, name)) return reinterpret_cast<Fn*>(f);
  static void* lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_NOLOAD);
  return lib != nullptr ? reinterpret_cast<Fn*>(dlsym(lib, name)) : nullptr;
}

// dnnl_cpu_isa_t (dnnl_types.h) <-> the names DNNL_MAX_CPU_ISA takes. The first six are oneDNN
// 2.x's, checked against Debian's libdnnl 2.6 by setting each name and reading back
// dnnl_get_effective_cpu_isa(), and the same in oneDNN 3.x. Then the values that differ between
// the two, for reading back only (a name maps to its first value here, which pins 2.x): AMX is
// 0x3e7 in 2.x (seen on a Sapphire Rapids Xeon under LibTorch 1.13) and 0xfef in 3.x
// (avx10_1_512_amx in PyTorch 2.x's dnnl_types.h); avx2_vnni is 0x407 in 2.x (0xf in 3.x, which
// 2.x uses for avx512_mic, so it is not listed).
struct IsaName {
  int value;
  const char* name;
};
inline constexpr IsaName kIsaNames[] = {
    {0x1, "sse41"},
    {0x3, "avx"},
    {0x7, "avx2"},
    {0x27, "avx512_core"},
    {0x67, "avx512_core_vnni"},
    {0xe7, "avx512_core_bf16"},
    {0x3e7, "avx512_core_amx"},
    {0x407, "avx2_vnni"},
    {0xfef, "avx512_core_amx"},
    {0x1fef, "avx512_core_amx_fp16"},
};

inline std::string IsaNameOf(int value) {
  for (const IsaName& n : kIsaNames) {
    if (n.value == value) return n.name;
  }
  return absl::StrCat("isa 0x", absl::Hex(value));
}

inline int IsaValueOf(std::string_view name) {
  for (const IsaName& n : kIsaNames) {
    if (name == n.name) return n.value;
  }
  return -1;
}

// ATen's capability as its own configuration report states it ("CPU capability usage: AVX2").
// Asking makes ATen choose, if it has not yet.
inline std::string AtenCapability() {
  const std::string config = at::show_config();
  const std::string_view key = "CPU capability usage: ";
  const size_t at = config.find(key);
  if (at == std::string::npos) return "unknown";
  const size_t begin = at + key.size();
  const std::string word =
      absl::AsciiStrToLower(config.substr(begin, config.find('\n', begin) - begin));
  if (word == "no avx" || word == "default") return "default";
  return word;  // "avx2", "avx512" (and on other architectures "vsx", "zvector")
}

// Whether this CPU can run ATen's kernels for `capability` (what ATen itself requires of it:
// ATen 1.x takes ATEN_CPU_CAPABILITY without checking, and would die of an illegal instruction).
inline bool CpuRunsAten(std::string_view capability) {
  __builtin_cpu_init();
  if (capability == "default") return true;
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (capability == "avx2") return avx2;
  if (capability == "avx512") {
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  }
  return false;
}

}  // namespace kernels_internal

// The BLAS library LibTorch calls for matrix products on the CPU (the linear layer), as loaded:
// "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3" (the reference BLAS: the same code on every
// CPU), an OpenBLAS (which picks kernels per CPU unless OPENBLAS_CORETYPE is set before it
// loads), or "none found" (BLAS linked in, e.g. PyPI's MKL, or not used).
inline std::string LoadedBlas() {
  std::string found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        const char* name = info->dlpi_name;
        if (name != nullptr &&
            (std::strstr(name, "blas") != nullptr || std::strstr(name, "libmkl") != nullptr)) {
          char resolved[4096];
          *static_cast<std::string*>(out) = realpath(name, resolved) != nullptr ? resolved : name;
          return 1;
        }
        return 0;
      },
      &found);
  return found.empty() ? "none found" : found;
}

// The kernels in use now. Reading makes ATen choose, so call it after PinKernels, never before.
inline KernelSet KernelsInUse() {
  KernelSet k;
  k.aten = kernels_internal::AtenCapability();
  using GetIsa = int();
  GetIsa* get = kernels_internal::DnnlFunction<GetIsa>("dnnl_get_effective_cpu_isa");
  k.onednn = get != nullptr ? kernels_internal::IsaNameOf(get()) : "unknown";
  return k;
}

// Restricts ATen and oneDNN to `want` for the rest of the process. Must run before the first
// tensor operation. Errors: the CPU cannot run those kernels (one line naming what it lacks), or a
// library chose other kernels (read back), e.g. because an operation ran first.
inline absl::Status PinKernels(const KernelSet& want) {
  if (!kernels_internal::CpuRunsAten(want.aten)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this CPU cannot run the ", want.aten, " kernels (",
        want.aten == "avx512" ? "AVX-512 F/BW/DQ/VL" : "AVX2 and FMA", " not reported by cpuid)"));
  }
  const int isa = kernels_internal::IsaValueOf(want.onednn);
  if (isa < 0) return absl::InvalidArgumentError(absl::StrCat("unknown oneDNN ISA ", want.onednn));
  const std::string upper = absl::AsciiStrToUpper(want.onednn);
  setenv("ATEN_CPU_CAPABILITY", want.aten.c_str(), /*overwrite=*/1);
  setenv("DNNL_MAX_CPU_ISA", upper.c_str(), 1);
  setenv("ONEDNN_MAX_CPU_ISA", upper.c_str(), 1);
  // MKL (in PyPI's LibTorch) dispatches per CPU too; MKL_CBWR pins its code path. Harmless where
  // there is no MKL.
  if (want.aten == "avx2") setenv("MKL_CBWR", "AVX2", 1);
  using SetIsa = int(int);
  if (SetIsa* set = kernels_internal::DnnlFunction<SetIsa>("dnnl_set_max_cpu_isa")) {
    set(isa);  // fails once oneDNN has chosen: the read-back below says so
  }
  const KernelSet got = KernelsInUse();
  if (got.aten != want.aten || (got.onednn != "unknown" && got.onednn != want.onednn)) {
    return absl::FailedPreconditionError(
        absl::StrCat("asked for ", want.str(), " kernels, but LibTorch uses ", got.str(),
                     " (kernels are chosen at the first tensor operation; pin them before it)"));
  }
  return absl::OkStatus();
}

}  // namespace trainlab

#endif  // TRAINLAB_CORE_KERNELS_H_
