// FNV-1a, 64 bits: the one hash trainlab uses for identities that must match exactly (a
// dataset's content in a checkpoint's fingerprint, a training state's digest). Not for security.
//
// Example:
//   trainlab::Fnv1a h;
//   h.Add(bytes.data(), bytes.size());
//   std::string id = h.Hex();  // "cbf29ce484222325" for no bytes
#ifndef TRAINLAB_CORE_HASH_H_
#define TRAINLAB_CORE_HASH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace trainlab {

class Fnv1a {
 public:
  void Add(const void* data, size_t n) {
    const auto* b = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h_ = (h_ ^ b[i]) * kPrime;
  }
  // A string and its end: Add("ab"); Add("c") differs from Add("a"); Add("bc").
  void AddString(std::string_view s) {
    Add(s.data(), s.size());
    Add("\0", 1);
  }
  uint64_t value() const { return h_; }
  std::string Hex() const { return absl::StrFormat("%016x", h_); }

 private:
  static constexpr uint64_t kOffset = 1469598103934665603ull;  // FNV-1a's 64-bit basis
  static constexpr uint64_t kPrime = 1099511628211ull;         // and prime
  uint64_t h_ = kOffset;
};

}  // namespace trainlab

#endif  // TRAINLAB_CORE_HASH_H_
