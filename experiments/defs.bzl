"""experiment_library: an experiment's two libraries, made from its two sources."""

load("@rules_cc//cc:defs.bzl", "cc_library")

def experiment_library(name, deps = [], report_deps = []):
    """<name>_report (the section; links no training code) and <name>_experiment (the run).

    Both are alwayslink: linking one registers it by name (ReportRegistry, ExperimentRegistry).
    Every experiment takes the shared training flags, --optimizer and --strategy included, so
    each run links every optimizer and compile-strategy plugin, and every model.

    Args:
      name: the experiment, as in experiments.bzl.
      deps: what its run needs beyond what every run links.
      report_deps: what its section needs beyond the report package.
    """
    cc_library(
        name = name + "_report",
        srcs = [name + "_report.cc"],
        alwayslink = 1,
        visibility = ["//experiments:report_users"],
        deps = [
            "//core:status_macros",
            "//experiments/reporting:experiment_report",
            "//experiments/reporting:recap",
            "@com_google_absl//absl/strings",
            "@com_google_absl//absl/strings:str_format",
        ] + report_deps,
    )
    cc_library(
        name = name + "_experiment",
        srcs = [name + ".cc"],
        alwayslink = 1,
        visibility = ["//experiments:training_users"],
        deps = [
            ":" + name + "_report",
            "//core:device",
            "//core:introspect",
            "//core:model",
            "//core:optimizer",
            "//core:status_macros",
            "//core:strategy",
            "//experiments/harness:experiment",
            "//experiments/harness:options",
            "//experiments/training:run",
            "//experiments/training:strategies_flag",
            "//experiments/training:workers",
            "//plugins/compile:all_strategies",
            "//plugins/models:all_models",
            "//plugins/optimizers:all_optimizers",
            "@com_github_gflags_gflags//:gflags",
            "@com_google_absl//absl/strings",
            "@libtorch",
        ] + deps,
    )
