// The data a session trains on: --dataset by name from the dataset registry
// (plugins/data/dataset_registry.h), or --dataset=auto's choice of the first registered dataset
// whose files are there.
#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "experiments/harness/session.h"
#include "experiments/harness/user_path.h"
#include "plugins/data/dataset_registry.h"

namespace trainlab::experiments {

absl::StatusOr<ChosenData> ChooseData(const ExperimentOptions& c) {
  const std::string dir = UserPath(c.data_dir);
  data::DatasetRequest request{.dir = dir,
                               .synthetic_train = c.synthetic_train,
                               .synthetic_test = c.synthetic_test,
                               .seed = c.run.seed};
  ChosenData out;
  const data::DatasetEntry* dataset = nullptr;
  if (c.dataset == "auto") {
    // The datasets auto may choose, by rank: the first whose files are there.
    std::vector<std::pair<int, std::string>> ranked;
    for (const std::string& name : data::DatasetRegistry::Global().Names()) {
      const int rank = (*data::DatasetRegistry::Global().Find(name))->auto_rank;
      if (rank >= 0) ranked.emplace_back(rank, name);
    }
    std::sort(ranked.begin(), ranked.end());
    for (const auto& [rank, name] : ranked) {
      const data::DatasetEntry* d = *data::DatasetRegistry::Global().Find(name);
      if (std::optional<std::string> found = d->find(dir)) {
        dataset = d;
        request.dir = *found;
        out.note = absl::StrCat("auto chose ", d->title, " from ", *found);
        if (!dir.empty() && *found != dir && found->rfind(dir + "/", 0) != 0) {
          absl::StrAppend(&out.note, " (nothing it recognises in ", dir, ")");
        } else if (dir.empty() && rank > ranked.front().first) {
          absl::StrAppend(&out.note, " (no --data_dir given)");
        }
        break;
      }
    }
    if (dataset == nullptr) {
      return absl::NotFoundError(absl::StrCat("--dataset=auto: no dataset found",
                                              dir.empty() ? "" : absl::StrCat(" in ", dir),
                                              "; name one with --dataset"));
    }
  } else {
    absl::StatusOr<const data::DatasetEntry*> d = data::DatasetRegistry::Global().Find(c.dataset);
    if (!d.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--dataset=", c.dataset, ": ", d.status().message(), ", or auto"));
    }
    dataset = *d;
  }
  TRAINLAB_ASSIGN_OR_RETURN(data::TrainAndTest splits, dataset->load(request));
  out.train = std::move(splits.train);
  out.test = std::move(splits.test);
  return out;
}

}  // namespace trainlab::experiments
