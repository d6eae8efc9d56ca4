// The name a module's forward gives the RecordFunction user scope it opens, so that profilers
// (core/profiling/layer_tracer.h) can name the parameter-free layers inside it (its ReLUs, a
// residual add) after it. The prefix keeps these scopes apart from any other user scope.
//
// Example (in a module's forward, with scope_ = ModuleScopeName("layer2.0") kept as a member so
// that the name outlives the scope):
//   RECORD_USER_SCOPE(scope_.c_str());
#ifndef TRAINLAB_CORE_MODULE_SCOPE_H_
#define TRAINLAB_CORE_MODULE_SCOPE_H_

#include <string>
#include <string_view>

namespace trainlab {

inline constexpr std::string_view kModuleScopePrefix = "module:";

// "module:layer2.0"; "module:" for the model's own top level.
inline std::string ModuleScopeName(const std::string& module) {
  return std::string(kModuleScopePrefix) + module;
}

// The user scope a training step opens around its optimizer step (core/step.h), so that a
// profile can give the optimizer its own row and keep its ops out of the layers' backward.
inline constexpr char kOptimizerStepScope[] = "trainlab::optimizer_step";

}  // namespace trainlab

#endif  // TRAINLAB_CORE_MODULE_SCOPE_H_
