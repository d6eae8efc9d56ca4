// Replays a fuzzer's kept corpus (every file under the folders given) through its
// LLVMFuzzerTestOneInput: the crashes fuzzing found stay fixed, in every `bazel test //...`.
//
// --mutations=N also feeds N mutants of each corpus file (bytes flipped, overwritten, inserted,
// deleted, the file cut short; deterministic): a plain mutation fuzzer for the targets clang's
// libFuzzer cannot build (the checkpoint reader: Debian's LibTorch 1.13 headers do not compile
// with clang 14 in C++20). Not coverage-guided; run it under --config=asan.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<uint8_t> Mutate(const std::vector<uint8_t>& in, std::mt19937_64& rng) {
  std::vector<uint8_t> out = in;
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const size_t n = out.size();
    const size_t pos = n ? rng() % n : 0;
    switch (rng() % 5) {
      case 0:
        if (n) out[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;  // flip a bit
      case 1:
        if (n) out[pos] = static_cast<uint8_t>(rng());
        break;  // overwrite
      case 2:
        out.insert(out.begin() + pos, static_cast<uint8_t>(rng()));
        break;  // insert
      case 3:
        if (n) out.erase(out.begin() + pos);
        break;  // delete
      case 4:
        out.resize(pos);
        break;  // cut short
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  long long mutations = 0;
  int files = 0;
  long long runs = 0;
  std::mt19937_64 rng(20261129);
  std::vector<std::string> dirs;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--mutations=", 12) == 0) {
      mutations = std::atoll(argv[i] + 12);
    } else {
      dirs.push_back(argv[i]);
    }
  }
  for (const std::string& dir : dirs) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      ++files;
      ++runs;
      for (long long m = 0; m < mutations; ++m, ++runs) {
        const std::vector<uint8_t> mutant = Mutate(bytes, rng);
        LLVMFuzzerTestOneInput(mutant.data(), mutant.size());
      }
    }
  }
  std::printf("replayed %d corpus files, %lld executions in all\n", files, runs);
  return files > 0 ? 0 : 1;  // an empty corpus is a broken test
}
