#include "plugins/tensorboard/crc32c.h"

#include <cstddef>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define TRAINLAB_CRC32C_TARGET __attribute__((target("sse4.2")))
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#define TRAINLAB_CRC32C_TARGET
#else
// No table-driven fallback: x86-64 CPUs have had SSE4.2 since 2008-2011; on aarch64 build with
// -march=armv8-a+crc (every ARMv8.1 CPU has the CRC extension).
#error "crc32c.cc needs the SSE4.2 crc32 instruction (x86-64) or the ARMv8 CRC extension (aarch64)"
#endif

namespace trainlab::tensorboard {
namespace {

// TFRecord's mask (tensorflow/tsl/lib/hash/crc32c.h: kMaskDelta, and Mask's rotation by 15).
constexpr uint32_t kMaskDelta = 0xa282ead8u;
constexpr int kMaskRotation = 15;

TRAINLAB_CRC32C_TARGET uint32_t Crc32cHardware(const unsigned char* p, size_t n, uint32_t crc) {
  // The instruction works on the register form of the CRC: the stored CRC inverted.
  uint64_t state = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);  // little-endian load, any alignment
#if defined(__x86_64__)
    state = _mm_crc32_u64(state, word);
#elif defined(__i386__)
    state = _mm_crc32_u32(_mm_crc32_u32(static_cast<uint32_t>(state), static_cast<uint32_t>(word)),
                          static_cast<uint32_t>(word >> 32));
#else
    state = __crc32cd(static_cast<uint32_t>(state), word);
#endif
  }
  for (; n > 0; ++p, --n) {
#if defined(__x86_64__) || defined(__i386__)
    state = _mm_crc32_u8(static_cast<uint32_t>(state), *p);
#else
    state = __crc32cb(static_cast<uint32_t>(state), *p);
#endif
  }
  return ~static_cast<uint32_t>(state);
}

}  // namespace

uint32_t Crc32c(std::string_view data, uint32_t crc) {
  return Crc32cHardware(reinterpret_cast<const unsigned char*>(data.data()), data.size(), crc);
}

bool Crc32cSupported() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("sse4.2");
#else
  return true;  // __ARM_FEATURE_CRC32 was required at compile time
#endif
}

uint32_t MaskedCrc32c(std::string_view data) {
  const uint32_t crc = Crc32c(data);
  return ((crc >> kMaskRotation) | (crc << (32 - kMaskRotation))) + kMaskDelta;
}

}  // namespace trainlab::tensorboard
