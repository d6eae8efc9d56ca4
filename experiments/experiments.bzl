"""The lab's experiments: one list that the BUILD files, the tests and the lab order all read.

Each entry is an experiment's name and the package that holds its two sources, `<name>.cc` (the
run, registered in the ExperimentRegistry) and `<name>_report.cc` (its section, registered in the
ReportRegistry). The order is the lab's: what `all` runs and REPORT.md lists.

Adding an experiment (docs/architecture.md, "Adding an experiment"): write its two sources in
experiments/lab/, add a line here, an end-to-end case in tests/experiments_test.sh and a row in
the README. `bazel run //experiments:<name>` then exists, `all` runs it and REPORT.md shows it.
"""

EXPERIMENTS = [
    struct(name = "c2", package = "lab"),
    struct(name = "c3", package = "lab"),
    struct(name = "c4", package = "lab"),
    struct(name = "c5", package = "lab"),
    struct(name = "c6", package = "lab"),
    struct(name = "c7", package = "lab"),
    struct(name = "c8", package = "lab"),
    struct(name = "batch_sweep", package = "lab"),
    struct(name = "profile", package = "profiling"),
    struct(name = "time_to_accuracy", package = "recipes"),
    struct(name = "q1_q4", package = "lab"),
]

def experiments_in(package):
    """The names of the experiments whose sources are in experiments/<package>."""
    return [e.name for e in EXPERIMENTS if e.package == package]

def experiment_label(e, kind):
    """//experiments/<package>:<name>_<kind>, kind "experiment" or "report"."""
    return "//experiments/%s:%s_%s" % (e.package, e.name, kind)

def lab_order_define():
    """The list for C++ (experiments/reporting/lab_order.cc): TRAINLAB_LAB_ORDER="c2,c3,..."."""
    return "TRAINLAB_LAB_ORDER=\\\"%s\\\"" % ",".join([e.name for e in EXPERIMENTS])
