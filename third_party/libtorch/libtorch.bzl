"""Finds LibTorch and exposes it as @libtorch//:libtorch.

Where it looks, in order:
1. `$LIBTORCH_HOME`, a folder with `include/` and `lib/`: the official LibTorch zip, or the
   package folder of a pip-installed `torch` (`python3 -c 'import torch, os;
   print(os.path.dirname(torch.__file__))'`), whose layout is the same. A CUDA build of LibTorch
   (one with lib/libtorch_cuda.so) is detected and linked with its CUDA libraries.
2. Debian's `libtorch-dev` (1.13.1, CPU only): headers in /usr/include, libraries in the
   multiarch folder.

`:libtorch` is that LibTorch in the default build; under `--config=cuda` it is the CUDA LibTorch
of @libtorch_cuda (torch_wheel.bzl: PyPI's pinned torch wheel, or your own), and under
`--config=torch2` that wheel's CPU libraries alone (@libtorch2_cpu).

Besides `:libtorch`, the repository has `defs.bzl` with `LIBTORCH_HAS_CUDA` and
`LIBTORCH_VERSION`, and the target `:cuda_enabled` (a library whose presence says nothing; its
`defines` carry `TRAINLAB_LIBTORCH_HAS_CUDA` for code that wants to know).
"""

_DEBIAN_LIB_DIRS = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
]

# Folders of LibTorch's headers under an include/ directory.
_HEADER_DIRS = ["ATen", "c10", "caffe2", "torch"]

def _fail_not_found(looked):
    fail(("LibTorch not found (looked in: %s). Install Debian's libtorch-dev (./bazelw does), " +
          "or set LIBTORCH_HOME to a LibTorch folder with include/ and lib/ (the official zip, " +
          "or a pip torch package: LIBTORCH_HOME=$(python3 -c 'import torch, os; " +
          "print(os.path.dirname(torch.__file__))')).") % ", ".join(looked))

def _version(ctx, api_include):
    header = ctx.path(api_include + "/torch/version.h")
    if not header.exists:
        return "unknown"
    for line in ctx.read(header).splitlines():
        if line.startswith("#define TORCH_VERSION "):
            return line.split(" ")[-1].strip('"')
    major, minor, patch = "?", "?", "?"
    for line in ctx.read(header).splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "#define":
            if parts[1] == "TORCH_VERSION_MAJOR":
                major = parts[2]
            elif parts[1] == "TORCH_VERSION_MINOR":
                minor = parts[2]
            elif parts[1] == "TORCH_VERSION_PATCH":
                patch = parts[2]
    return "%s.%s.%s" % (major, minor, patch)

# `:libtorch` is this LibTorch, or under --config=cuda (--define=trainlab_cuda=1) the CUDA one
# of @libtorch_cuda, or under --config=torch2 (--define=trainlab_torch=2) the CPU libraries of
# the same pinned 2.x wheel, @libtorch2_cpu (torch_wheel.bzl); only those configs fetch them.
_CUDA_ALIAS = """
config_setting(
    name = "cuda_build",
    define_values = {"trainlab_cuda": "1"},
)

config_setting(
    name = "torch2_build",
    define_values = {"trainlab_torch": "2"},
)

alias(
    name = "libtorch",
    actual = select({
        ":cuda_build": "@libtorch_cuda//:libtorch",
        ":torch2_build": "@libtorch2_cpu//:libtorch",
        "//conditions:default": ":host",
    }),
)
"""

def _libtorch_repository_impl(ctx):
    home = ctx.os.environ.get("LIBTORCH_HOME", "")
    looked = []
    if home:
        looked.append("LIBTORCH_HOME=" + home)
        include = home + "/include"
        lib = home + "/lib"
        if not (ctx.path(include + "/torch/csrc/api/include").exists and
                ctx.path(lib + "/libtorch.so").exists):
            _fail_not_found(looked)
        ctx.symlink(include, "include")
        source = "LIBTORCH_HOME=" + home
    else:
        looked.append("/usr/include/torch (Debian's libtorch-dev)")
        lib = None
        for d in _DEBIAN_LIB_DIRS:
            if ctx.path(d + "/libtorch.so").exists:
                lib = d
                break
        if lib == None or not ctx.path("/usr/include/torch/csrc/api/include").exists:
            _fail_not_found(looked)

        # Only LibTorch's own header folders, not all of /usr/include.
        for d in _HEADER_DIRS:
            ctx.symlink("/usr/include/" + d, "include/" + d)
        source = "Debian libtorch-dev"

    has_cuda = ctx.path(lib + "/libtorch_cuda.so").exists
    version = _version(ctx, "include/torch/csrc/api/include")
    libs = ["torch", "torch_cpu", "c10"]
    if has_cuda:
        libs += ["torch_cuda", "c10_cuda"]

    ctx.template("BUILD", ctx.attr._build_tpl, {
        "%{lib_dir}": lib,
        "%{libs}": " ".join(["-l" + l for l in libs]),
        "%{cuda_defines}": '"TRAINLAB_LIBTORCH_HAS_CUDA"' if has_cuda else "",
        "%{source}": source,
        "%{version}": version,
        "%{host}": "host",
        "%{runtime_rpaths}": "",
        "%{cuda_alias}": _CUDA_ALIAS,
    })
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("defs.bzl", "\n".join([
        '"""What the LibTorch found at fetch time is."""',
        "LIBTORCH_HAS_CUDA = %s" % has_cuda,
        'LIBTORCH_VERSION = "%s"' % version,
        'LIBTORCH_SOURCE = "%s"' % source,
        "",
    ]))

libtorch_repository = repository_rule(
    implementation = _libtorch_repository_impl,
    attrs = {"_build_tpl": attr.label(default = Label("//third_party/libtorch:libtorch.BUILD.tpl"))},
    environ = ["LIBTORCH_HOME"],
    local = True,
    doc = "LibTorch from $LIBTORCH_HOME or Debian's libtorch-dev; see the file comment.",
)
