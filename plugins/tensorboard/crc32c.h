// CRC-32C (Castagnoli), the checksum of TFRecord framing, computed with the CPU's own crc32
// instruction: SSE4.2 on x86-64 (in functions compiled for SSE4.2 alone, so the build needs no
// global -msse4.2), the ARMv8 CRC extension on aarch64. No lookup table. Call Crc32cSupported()
// once before the first Crc32c() on x86-64: a CPU without SSE4.2 (none made since 2011) would
// fault on the instruction.
//
// Example:
//   if (!Crc32cSupported()) return absl::FailedPreconditionError("no SSE4.2");
//   uint32_t crc = Crc32c("12345");
//   crc = Crc32c("6789", crc);                     // == Crc32c("123456789") == 0xE3069283
//   uint32_t stored = MaskedCrc32c(record_bytes);  // what a TFRecord file holds
#ifndef TRAINLAB_PLUGINS_TENSORBOARD_CRC32C_H_
#define TRAINLAB_PLUGINS_TENSORBOARD_CRC32C_H_

#include <cstdint>
#include <string_view>

namespace trainlab::tensorboard {

// The CRC-32C of `data`, continuing from `crc` (the CRC-32C of what came before, 0 for none):
// Crc32c(b, Crc32c(a)) == Crc32c(a + b).
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

// Whether this CPU has the instruction Crc32c() uses (always true on aarch64 builds, which
// require it at compile time).
bool Crc32cSupported();

// TFRecord's stored form of a CRC: rotated right by 15 bits plus a constant, so that a CRC of
// data that itself holds CRCs stays well distributed (tensorflow/tsl/lib/hash/crc32c.h, Mask).
uint32_t MaskedCrc32c(std::string_view data);

}  // namespace trainlab::tensorboard

#endif  // TRAINLAB_PLUGINS_TENSORBOARD_CRC32C_H_
