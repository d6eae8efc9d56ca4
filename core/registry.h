// A name -> entry registry per kind of plugin, filled by plugins at static-initialisation time.
//
// A plugin registers itself at the bottom of its .cc, and its Bazel target has `alwayslink = 1`
// so that linking the target is all it takes. A forgotten alwayslink fails silently (the name is
// just not found), so each binary's test asks the registry for every name it should have.
//
// Example (in plugins/optimizers/adadelta.cc):
//   namespace {
//   const bool kRegistered = trainlab::OptimizerRegistry::Global().Register("adadelta", {...});
//   }
// and in a binary:
//   absl::StatusOr<const OptimizerEntry*> e = OptimizerRegistry::Global().Find(config.optimizer);
#ifndef TRAINLAB_CORE_REGISTRY_H_
#define TRAINLAB_CORE_REGISTRY_H_

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"

namespace trainlab {

// `Entry` names its kind for error messages: `static constexpr std::string_view kKind`.
template <class Entry>
class Registry {
 public:
  // The process-wide registry of this kind (never destroyed, so usable from static init).
  static Registry& Global() {
    static auto* registry = new Registry;
    return *registry;
  }

  // Adds `entry` under `name`. A duplicate name is a programming error.
  bool Register(std::string name, Entry entry) {
    std::lock_guard<std::mutex> lock(mu_);
    CHECK(entries_.emplace(name, std::move(entry)).second)
        << Entry::kKind << " '" << name << "' registered twice";
    return true;
  }

  // The entry for `name`, or NotFound listing the names this binary knows.
  absl::StatusOr<const Entry*> Find(std::string_view name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(std::string(name));
    if (it == entries_.end()) {
      return absl::NotFoundError(absl::StrCat("unknown ", std::string(Entry::kKind), " '",
                                              std::string(name), "'; known: ", JoinNamesLocked()));
    }
    return &it->second;
  }

  // Sorted names.
  std::vector<std::string> Names() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> names;
    for (const auto& [name, entry] : entries_) names.push_back(name);
    return names;
  }

 private:
  std::string JoinNamesLocked() const {
    std::vector<std::string> names;
    for (const auto& [name, entry] : entries_) names.push_back(name);
    return names.empty() ? "(none linked)" : absl::StrJoin(names, ", ");
  }

  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace trainlab

#endif  // TRAINLAB_CORE_REGISTRY_H_
