"""All external repositories trainlab needs, resolved with no network.

Call `trainlab_dependencies()` from a WORKSPACE. Each repository is defined only when the calling
workspace has not already defined one with the same name, so a larger workspace can supply its
own Abseil, GoogleTest, LibTorch ... under the conventional names and trainlab will use them:

| name                         | what                                   | from                       |
| ---------------------------- | -------------------------------------- | -------------------------- |
| libtorch                     | LibTorch (CPU; CUDA under --config=cuda) | $LIBTORCH_HOME, else /usr  |
| libtorch_cuda                | CUDA LibTorch (--config=cuda only)     | PyPI wheel pinned by sha256, $LIBTORCH_HOME or python3's torch |
| libtorch2_cpu                | LibTorch 2.x, CPU libraries (--config=torch2 only) | the same pinned wheel, without CUDA runtime wheels |
| cuda                         | CUDA toolkit headers (--config=cuda)   | $CUDA_HOME, else /usr/local/cuda |
| com_google_absl              | Abseil                                 | libabsl-dev                |
| com_github_gflags_gflags     | gflags                                 | libgflags-dev              |
| com_github_google_glog       | glog                                   | libgoogle-glog-dev         |
| com_google_googletest        | GoogleTest                             | libgtest-dev               |
| com_github_google_benchmark  | Google Benchmark                       | libbenchmark-dev           |
| zlib                         | zlib (Fashion-MNIST's .gz files)       | zlib1g-dev                 |
| dnnl                         | oneDNN 2.6.3 (conv_autotune's matmul)  | libdnnl-dev                |
| com_google_protobuf          | protobuf runtime (TensorBoard events)  | libprotobuf-dev, protoc from protobuf-compiler |
| com_github_nlohmann_json     | JSON (tests that read trace files)     | nlohmann-json3-dev         |
| tensorboard                  | TensorBoard 2.18.0, for tests that read event files back | PyPI wheel pinned by sha256 (third_party/tensorboard) |
| rules_cc                     | native-rule shim (Bazel 4.2.3)         | third_party/rules_cc       |
| rules_java                   | Debian's rules_java                    | bazel-rules-java           |
| remote_coverage_tools        | empty stand-in for a test dependency   | third_party/remote_coverage_tools |

`@platforms` is overridden in .bazelrc (an override needs an absolute path).
"""

load("//third_party/libtorch:libtorch.bzl", "libtorch_repository")
load("//third_party/libtorch:torch_wheel.bzl", "libtorch2_cpu_repository", "libtorch_cuda_repository")
load("//third_party/cuda:cuda.bzl", "cuda_repository")
load("//third_party/system:system.bzl", "shim_repository", "system_repository")
load("//third_party/tensorboard:tensorboard.bzl", "tensorboard_repository")

def _maybe(rule, name, **kwargs):
    if name not in native.existing_rules():
        rule(name = name, **kwargs)

def trainlab_dependencies():
    """Defines every external repository trainlab uses (see the table above)."""

    # --- Offline shims for what Bazel 4.2.3 would otherwise download ---------------------------
    _maybe(
        shim_repository,
        name = "rules_cc",
        files = {
            Label("//third_party/rules_cc:defs.bzl"): "cc/defs.bzl",
            Label("//third_party/rules_cc:cc.BUILD"): "cc/BUILD",
            Label("//third_party/rules_cc:root.BUILD"): "BUILD",
        },
    )
    _maybe(
        shim_repository,
        name = "remote_coverage_tools",
        files = {Label("//third_party/remote_coverage_tools:coverage.BUILD"): "BUILD"},
    )
    _maybe(
        native.local_repository,
        name = "rules_java",
        path = "/usr/share/bazel/rules/java",  # Debian's bazel-rules-java
    )

    # --- LibTorch and CUDA ---------------------------------------------------------------------
    _maybe(libtorch_repository, name = "libtorch")
    _maybe(libtorch_cuda_repository, name = "libtorch_cuda")
    _maybe(libtorch2_cpu_repository, name = "libtorch2_cpu")
    _maybe(cuda_repository, name = "cuda")

    # --- TensorBoard, for the tests that read our event files back (fetched by those tests) ----
    _maybe(tensorboard_repository, name = "tensorboard")

    # --- Debian's system libraries (headers in /usr/include, libraries on the default path) ----
    _maybe(
        system_repository,
        name = "com_google_absl",
        build_files = {
            Label("//third_party/system:absl_status.BUILD"): "absl/status/BUILD",
            Label("//third_party/system:absl_strings.BUILD"): "absl/strings/BUILD",
            Label("//third_party/system:absl_time.BUILD"): "absl/time/BUILD",
            Label("//third_party/system:absl_synchronization.BUILD"): "absl/synchronization/BUILD",
            Label("//third_party/system:absl_container.BUILD"): "absl/container/BUILD",
        },
    )
    _maybe(
        system_repository,
        name = "com_github_gflags_gflags",
        build_files = {Label("//third_party/system:gflags.BUILD"): "BUILD"},
    )
    _maybe(
        system_repository,
        name = "com_github_google_glog",
        build_files = {Label("//third_party/system:glog.BUILD"): "BUILD"},
    )
    _maybe(
        system_repository,
        name = "com_google_googletest",
        build_files = {Label("//third_party/system:googletest.BUILD"): "BUILD"},
    )
    _maybe(
        system_repository,
        name = "com_github_google_benchmark",
        build_files = {Label("//third_party/system:benchmark.BUILD"): "BUILD"},
    )
    _maybe(
        system_repository,
        name = "com_github_nlohmann_json",
        build_files = {Label("//third_party/system:nlohmann_json.BUILD"): "BUILD"},
    )
    _maybe(
        system_repository,
        name = "zlib",
        build_files = {Label("//third_party/system:zlib.BUILD"): "BUILD"},
    )
    _maybe(
        system_repository,
        name = "dnnl",
        build_files = {Label("//third_party/system:dnnl.BUILD"): "BUILD"},
    )
    _maybe(
        system_repository,
        name = "com_google_protobuf",
        build_files = {Label("//third_party/system:protobuf.BUILD"): "BUILD"},
    )
