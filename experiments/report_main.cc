// report: re-renders DIR/REPORT.md and its plots from the results files in DIR, without training;
// with --compare=OTHER_DIR, also writes DIR/COMPARISON.md, the two sets side by side with ratios.
//
//   bazel run //experiments:report -- /tmp/r
//   bazel run //experiments:report -- /tmp/cpu --compare=/tmp/gpu
#include <gflags/gflags.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/cli.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "experiments/harness/error_boundary.h"
#include "experiments/harness/user_path.h"
#include "experiments/reporting/comparison.h"
#include "experiments/reporting/report.h"

DEFINE_string(compare, "",
              "Another results folder: also write DIR/COMPARISON.md with both side by side.");

int main(int argc, char** argv) {
  using namespace trainlab::experiments;
  const std::string program = std::filesystem::path(argv[0]).filename().string();
  const absl::StatusOr<trainlab::Parsed> parsed = trainlab::ParseFlags(
      &argc, &argv,
      "report: renders DIR/REPORT.md and its SVG plots from the results files an experiment run\n"
      "left in DIR (--results_dir), without training.\n"
      "  report DIR [--compare=OTHER_DIR]",
      {{"Flags of report", {"compare"}}});
  if (!parsed.ok()) return ReportError(program, parsed.status());
  if (*parsed == trainlab::Parsed::kHelpShown) return 0;
  if (argc != 2) {
    return ReportError(
        program,
        absl::InvalidArgumentError(argc < 2 ? "missing the results folder (report DIR)"
                                            : absl::StrCat("unexpected argument '", argv[2], "'")));
  }
  const std::string dir = UserPath(argv[1]);
  const absl::Status status = Guarded([&]() -> absl::Status {
    TRAINLAB_ASSIGN_OR_RETURN(ReportFiles files, RenderReport(dir));
    std::printf("Report written to %s (%zu plots)\n", files.report.c_str(), files.plots.size());
    if (!files.plot_problem.empty()) std::printf("Plots: %s\n", files.plot_problem.c_str());
    if (!FLAGS_compare.empty()) {
      TRAINLAB_ASSIGN_OR_RETURN(std::string md, RenderComparison(dir, UserPath(FLAGS_compare)));
      const std::string path = dir + "/COMPARISON.md";
      TRAINLAB_RETURN_IF_ERROR(trainlab::WriteFileAtomically(path, md));
      std::printf("Comparison written to %s\n", path.c_str());
    }
    return absl::OkStatus();
  });
  return status.ok() ? 0 : ReportError(program, status);
}
