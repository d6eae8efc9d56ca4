// Small, portable, seedable randomness for the data pipeline. The standard library's
// distributions and std::shuffle differ between implementations; these give the same epoch
// order and augmentation on every platform and for every worker count.
#ifndef TRAINLAB_PLUGINS_DATA_RANDOM_H_
#define TRAINLAB_PLUGINS_DATA_RANDOM_H_

#include <cstdint>
#include <numeric>
#include <vector>

namespace trainlab::data {

// SplitMix64 (Steele, Lea and Flood 2014): a 64-bit counter through a strong mixer.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) by multiply-shift (Lemire 2019); the bias is below 2^-32 for the
  // bounds used here.
  uint32_t Below(uint32_t bound) {
    return static_cast<uint32_t>(((Next() >> 32) * static_cast<uint64_t>(bound)) >> 32);
  }

 private:
  uint64_t state_;
};

// A seed for (seed, stream, index) triples: epoch permutations, per-batch augmentation.
inline uint64_t MixSeed(uint64_t seed, uint64_t stream, uint64_t index) {
  SplitMix64 a(seed ^ (stream * 0xd1342543de82ef95ULL));
  SplitMix64 b(a.Next() ^ (index * 0x9e3779b97f4a7c15ULL));
  return b.Next();
}

// A Fisher-Yates permutation of 0..n-1.
inline std::vector<int64_t> Permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  SplitMix64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = rng.Below(static_cast<uint32_t>(i + 1));
    std::swap(p[i], p[j]);
  }
  return p;
}

// This rank's share of an epoch's `order`, with PyTorch's DistributedSampler semantics: the
// order is padded to a multiple of `world_size` by repeating its start, and rank r takes
// positions r, r + world_size, r + 2 world_size, ... Every rank gets ceil(n / world_size)
// indices; together they cover the order (a few twice, when n does not divide).
// With `pad` false (evaluation), nothing repeats: rank r takes the positions r, r + world_size,
// ... below n, so the ranks' shares differ by at most one and each index is counted once.
inline int64_t ShardSize(int64_t n, int rank, int world_size, bool pad = true) {
  if (world_size <= 1) return n;
  return pad ? (n + world_size - 1) / world_size : (n - rank + world_size - 1) / world_size;
}
inline std::vector<int64_t> ShardOrder(const std::vector<int64_t>& order, int rank, int world_size,
                                       bool pad = true) {
  if (world_size <= 1) return order;
  const size_t n = order.size(), w = static_cast<size_t>(world_size);
  const size_t per_rank =
      static_cast<size_t>(ShardSize(static_cast<int64_t>(n), rank, world_size, pad));
  std::vector<int64_t> out;
  out.reserve(per_rank);
  for (size_t k = 0; k < per_rank; ++k)
    out.push_back(order[(static_cast<size_t>(rank) + k * w) % n]);
  return out;
}

}  // namespace trainlab::data

#endif  // TRAINLAB_PLUGINS_DATA_RANDOM_H_
