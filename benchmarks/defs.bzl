"""`trainlab_benchmark`: a Google Benchmark program plus a test that runs it once, briefly.

The test keeps the benchmark from rotting (it must build, run and report); it asserts nothing
about speed. Run the benchmark itself with `bazel run -c opt //benchmarks:NAME`.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary")

def trainlab_benchmark(name, srcs, deps = [], smoke_args = [], **kwargs):
    cc_binary(
        name = name,
        srcs = srcs,
        deps = deps + ["@com_github_google_benchmark//:benchmark"],
        **kwargs
    )
    native.sh_test(
        name = name + "_smoke_test",
        size = "small",
        srcs = ["//benchmarks:run_once.sh"],
        args = ["$(location :%s)" % name] + smoke_args,
        data = [":" + name],
    )
