#include "plugins/compile/conv_matmul.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
// Set by plugins/compile/BUILD.bazel in the default build (Debian's LibTorch 1.13 and oneDNN 2.6).
#ifndef TRAINLAB_SYSTEM_DNNL
#define TRAINLAB_SYSTEM_DNNL 0
#endif
#if TRAINLAB_SYSTEM_DNNL
#include "dnnl.hpp"
#endif

namespace trainlab::compile {
namespace {

#if TRAINLAB_SYSTEM_DNNL
dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

std::optional<dnnl::memory::data_type> OneDnnType(c10::ScalarType t) {
  if (t == at::kFloat) return dnnl::memory::data_type::f32;
  if (t == at::kBFloat16) return dnnl::memory::data_type::bf16;
  return std::nullopt;
}

// One matmul primitive per problem (sizes, strides, dtype, thread count): creating one costs
// far more than running a small one, and a training step meets the same problems every time.
class MatMulCache {
 public:
  static MatMulCache& Global() {
    static auto* cache = new MatMulCache();
    return *cache;
  }

  // The primitive for `key`'s problem, made from the descriptors a, b, c on a miss.
  dnnl::matmul Get(const std::array<int64_t, 9>& key, const dnnl::memory::desc& a,
                   const dnnl::memory::desc& b, const dnnl::memory::desc& c) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), Engine());
      it = cache_.emplace(key, dnnl::matmul(pd)).first;
    }
    return it->second;
  }

  // Whether oneDNN has a real (non-reference) matmul kernel for `t` on this CPU: bfloat16 has
  // one only with AVX512-BF16 or AMX (the reference kernel is hundreds of times slower).
  bool Fast(dnnl::memory::data_type t) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = fast_.find(t);
    if (it != fast_.end()) return it->second;
    const dnnl::memory::dims dims = {64, 64};
    const dnnl::memory::desc d(dims, t, dnnl::memory::format_tag::ab);
    bool fast = false;
    try {
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(d, d, d), Engine());
      fast = std::string(pd.impl_info_str()).rfind("ref", 0) != 0;
    } catch (const dnnl::error&) {
      fast = false;
    }
    fast_.emplace(t, fast);
    return fast;
  }

 private:
  std::mutex mu_;
  std::map<std::array<int64_t, 9>, dnnl::matmul> cache_;
  std::map<dnnl::memory::data_type, bool> fast_;
};
#endif  // TRAINLAB_SYSTEM_DNNL

// Copies `bytes` or zeroes them.
inline void CopyOrZero(char* dst, const char* src, size_t bytes, bool valid) {
  if (valid) {
    std::memcpy(dst, src, bytes);
  } else {
    std::memset(dst, 0, bytes);
  }
}

at::Tensor ChannelsLast(const at::Tensor& t) {
  return t.contiguous(at::MemoryFormat::ChannelsLast);
}

// The weight as the (Cout, kh*kw*Cin) matrix, (kh, kw, Cin) order: a view of a channels-last
// weight, a copy of any other.
at::Tensor WeightMatrix(const at::Tensor& weight) {
  return ChannelsLast(weight).permute({0, 2, 3, 1}).reshape({weight.size(0), -1});
}

// grad_out (N, Cout, oh, ow) as the (N*oh*ow, Cout) matrix.
at::Tensor RowsOf(const at::Tensor& t) {
  return ChannelsLast(t).permute({0, 2, 3, 1}).reshape({-1, t.size(1)});
}

template <typename T, typename Acc>
void Col2ImImage(const T* cols, T* dx, Acc* acc, const ConvGeometry& g, int64_t image) {
  const int64_t plane = g.h * g.w * g.c, depth = g.depth();
  std::fill(acc, acc + plane, Acc(0));
  const T* rows = cols + image * g.oh * g.ow * depth;
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      const T* row = rows + (oh * g.ow + ow) * depth;
      for (int64_t kh = 0; kh < g.kh; ++kh) {
        const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
          const int64_t iw = ow * g.sw - g.pw + kw * g.dw;
          if (iw < 0 || iw >= g.w) continue;
          const T* src = row + (kh * g.kw + kw) * g.c;
          Acc* dst = acc + (ih * g.w + iw) * g.c;
          for (int64_t c = 0; c < g.c; ++c) dst[c] += static_cast<Acc>(src[c]);
        }
      }
    }
  }
  T* out = dx + image * plane;
  for (int64_t i = 0; i < plane; ++i) out[i] = static_cast<T>(acc[i]);
}

}  // namespace

ConvGeometry ConvGeometry::Of(const at::Tensor& x, const at::Tensor& weight, at::IntArrayRef stride,
                              at::IntArrayRef padding, at::IntArrayRef dilation) {
  ConvGeometry g;
  g.n = x.size(0);
  g.c = x.size(1);
  g.h = x.size(2);
  g.w = x.size(3);
  g.co = weight.size(0);
  g.kh = weight.size(2);
  g.kw = weight.size(3);
  auto at2 = [](at::IntArrayRef v, size_t i) { return v[std::min(i, v.size() - 1)]; };
  g.sh = at2(stride, 0);
  g.sw = at2(stride, 1);
  g.ph = at2(padding, 0);
  g.pw = at2(padding, 1);
  g.dh = at2(dilation, 0);
  g.dw = at2(dilation, 1);
  g.oh = (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  return g;
}

std::string ConvGeometry::ToString() const {
  std::string s = absl::StrCat(n, "x", c, "x", h, "x", w, " k",
                               kh == kw ? absl::StrCat(kh) : absl::StrCat(kh, "x", kw));
  absl::StrAppend(&s, " s", sh == sw ? absl::StrCat(sh) : absl::StrCat(sh, "x", sw));
  absl::StrAppend(&s, " p", ph == pw ? absl::StrCat(ph) : absl::StrCat(ph, "x", pw));
  if (dh != 1 || dw != 1) absl::StrAppend(&s, " d", dh, "x", dw);
  absl::StrAppend(&s, " -> ", co);
  return s;
}

std::optional<std::string> MatMulUnsupported(const at::Tensor& x, const at::Tensor& weight,
                                             int64_t groups) {
  if (!x.is_cpu()) return "a CPU algorithm (on a GPU, cuDNN's autotuner chooses)";
  if (x.dim() != 4 || weight.dim() != 4) return "only 2-D convolutions";
  if (groups != 1) return "grouped convolution";
  const c10::ScalarType t = x.scalar_type();
  if (t == at::kDouble) return std::nullopt;  // at::mm: exact, for tests
  if (t != at::kFloat && t != at::kBFloat16) {
    return absl::StrCat("no matrix multiply for ", c10::toString(t));
  }
  if (!FastMatMul(t)) {
    return absl::StrCat("no fast oneDNN matmul for ", c10::toString(t),
                        " on this CPU (bfloat16 needs AVX512-BF16 or AMX)");
  }
  return std::nullopt;
}

at::Tensor Im2Col(const at::Tensor& x, const ConvGeometry& g) {
  const at::Tensor in = ChannelsLast(x);
  if (g.pointwise()) return in.permute({0, 2, 3, 1}).reshape({g.rows(), g.c});
  at::Tensor cols =
      at::empty({g.rows(), g.depth()}, in.options().memory_format(at::MemoryFormat::Contiguous));
  const size_t es = in.element_size();
  const size_t tap = static_cast<size_t>(g.c) * es;  // one tap: Cin elements, contiguous
  const char* src = static_cast<const char*>(in.data_ptr());
  char* dst = static_cast<char*>(cols.data_ptr());
  const size_t row_bytes = static_cast<size_t>(g.depth()) * es;
  at::parallel_for(0, g.n * g.oh, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t image = r / g.oh, oh = r % g.oh;
      const char* plane = src + static_cast<size_t>(image * g.h * g.w) * tap;
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        char* out = dst + static_cast<size_t>(r * g.ow + ow) * row_bytes;
        for (int64_t kh = 0; kh < g.kh; ++kh) {
          const int64_t ih = oh * g.sh - g.ph + kh * g.dh;
          const bool row_valid = ih >= 0 && ih < g.h;
          if (!row_valid) {
            std::memset(out, 0, static_cast<size_t>(g.kw) * tap);
            out += static_cast<size_t>(g.kw) * tap;
            continue;
          }
          const int64_t iw0 = ow * g.sw - g.pw;
          if (g.dw == 1 && iw0 >= 0 && iw0 + g.kw <= g.w) {
            // The kw taps of a row sit side by side in NHWC: one copy.
            std::memcpy(out, plane + static_cast<size_t>(ih * g.w + iw0) * tap,
                        static_cast<size_t>(g.kw) * tap);
            out += static_cast<size_t>(g.kw) * tap;
            continue;
          }
          for (int64_t kw = 0; kw < g.kw; ++kw) {
            const int64_t iw = iw0 + kw * g.dw;
            const bool valid = iw >= 0 && iw < g.w;
            CopyOrZero(out, plane + static_cast<size_t>(ih * g.w + (valid ? iw : 0)) * tap, tap,
                       valid);
            out += tap;
          }
        }
      }
    }
  });
  return cols;
}

at::Tensor Col2Im(const at::Tensor& cols_in, const ConvGeometry& g) {
  const at::Tensor cols = cols_in.contiguous();
  if (g.pointwise()) {
    return cols.view({g.n, g.h, g.w, g.c}).permute({0, 3, 1, 2});
  }
  at::Tensor dx = at::empty({g.n, g.h, g.w, g.c}, cols.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, cols.scalar_type(), "Col2Im", [&] {
    using Acc = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const scalar_t* src = cols.data_ptr<scalar_t>();
    scalar_t* out = dx.data_ptr<scalar_t>();
    at::parallel_for(0, g.n, 1, [&](int64_t begin, int64_t end) {
      std::vector<Acc> acc(static_cast<size_t>(g.h * g.w * g.c));
      for (int64_t image = begin; image < end; ++image) {
        Col2ImImage<scalar_t, Acc>(src, out, acc.data(), g, image);
      }
    });
  });
  return dx.permute({0, 3, 1, 2});
}

#if !TRAINLAB_SYSTEM_DNNL
// LibTorch 2.x (--config=torch2, --config=cuda): its wheel carries oneDNN 3's headers, which
// shadow Debian's 2.6 ones, and links oneDNN 3 with its symbols hidden, so Debian's libdnnl
// cannot be used beside it. at::mm is fast there (MKL for float32; oneDNN inside ATen for
// bfloat16 where the CPU has AVX512-BF16 or AMX), so the matrix multiplies go to it.
bool FastMatMul(c10::ScalarType dtype) {
  if (dtype == at::kFloat) return true;
  if (dtype != at::kBFloat16) return false;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
}

at::Tensor MatMul(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0),
              "MatMul: (M, K) x (K, N) expected, got ", a.sizes(), " x ", b.sizes());
  return at::mm(a, b);
}
#else
bool FastMatMul(c10::ScalarType dtype) {
  const std::optional<dnnl::memory::data_type> d = OneDnnType(dtype);
  return d && MatMulCache::Global().Fast(*d);
}

at::Tensor MatMul(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0),
              "MatMul: (M, K) x (K, N) expected, got ", a.sizes(), " x ", b.sizes());
  const std::optional<dnnl::memory::data_type> type = OneDnnType(a.scalar_type());
  if (!type || a.scalar_type() != b.scalar_type()) return at::mm(a, b);
  if (*type == dnnl::memory::data_type::bf16 && !MatMulCache::Global().Fast(*type)) {
    // No kernel for this dtype here at all (oneDNN 2.6 has no bfloat16 matmul before AVX512):
    // float32 products, rounded once, as oneDNN's bfloat16 kernels accumulate. Correct, not fast:
    // conv_autotune does not time this candidate then (MatMulUnsupported).
    return MatMul(a.to(at::kFloat), b.to(at::kFloat)).to(a.scalar_type());
  }
  // oneDNN takes any 2-D strides with one of them 1: a row-major matrix or a transposed view.
  auto plain = [](const at::Tensor& t) {
    return (t.stride(1) == 1 && t.stride(0) >= t.size(1)) ||
                   (t.stride(0) == 1 && t.stride(1) >= t.size(0))
               ? t
               : t.contiguous();
  };
  const at::Tensor A = plain(a), B = plain(b);
  const int64_t m = A.size(0), k = A.size(1), n = B.size(1);
  at::Tensor c = at::empty({m, n}, A.options());
  if (m == 0 || n == 0) return c;
  if (k == 0) return c.zero_();
  const dnnl::memory::desc da({m, k}, *type, {A.stride(0), A.stride(1)});
  const dnnl::memory::desc db({k, n}, *type, {B.stride(0), B.stride(1)});
  const dnnl::memory::desc dc({m, n}, *type, {n, 1});
  const std::array<int64_t, 9> key = {m,
                                      k,
                                      n,
                                      A.stride(0),
                                      A.stride(1),
                                      B.stride(0),
                                      B.stride(1),
                                      static_cast<int64_t>(*type),
                                      at::get_num_threads()};
  dnnl::matmul prim = MatMulCache::Global().Get(key, da, db, dc);
  dnnl::stream stream(Engine());
  dnnl::memory ma(da, Engine(), A.data_ptr()), mb(db, Engine(), B.data_ptr()),
      mc(dc, Engine(), c.data_ptr());
  prim.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
  stream.wait();
  return c;
}
#endif  // TRAINLAB_SYSTEM_DNNL

at::Tensor MatMulConvolution(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                             const ConvGeometry& g) {
  at::Tensor y = MatMul(Im2Col(x, g), WeightMatrix(weight).t());  // (N*oh*ow, Cout)
  if (bias.defined()) y.add_(bias);
  return y.view({g.n, g.oh, g.ow, g.co}).permute({0, 3, 1, 2});
}

at::Tensor MatMulInputGrad(const at::Tensor& grad_out, const at::Tensor& weight,
                           const ConvGeometry& g) {
  return Col2Im(MatMul(RowsOf(grad_out), WeightMatrix(weight)), g);
}

at::Tensor MatMulWeightGrad(const at::Tensor& grad_out, const at::Tensor& x,
                            const ConvGeometry& g) {
  const at::Tensor dw = MatMul(RowsOf(grad_out).t(), Im2Col(x, g));  // (Cout, kh*kw*Cin)
  return dw.view({g.co, g.kh, g.kw, g.c}).permute({0, 3, 1, 2});
}

}  // namespace trainlab::compile
