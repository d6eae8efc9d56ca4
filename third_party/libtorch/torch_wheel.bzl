"""The CUDA LibTorch for `--config=cuda`, as @libtorch_cuda//:libtorch.

Where it comes from, in order:
1. `$LIBTORCH_HOME`, when that folder has lib/libtorch_cuda.so (your own CUDA LibTorch: the
   official zip, or a pip torch package). Its CUDA libraries are yours to provide.
2. `TRAINLAB_TORCH_VERSION=python`: the torch package of `$TRAINLAB_PYTHON` (default python3),
   whatever its version, used in place: nothing is downloaded, and the binaries load that
   torch's libraries and the nvidia-* packages installed beside it.
3. PyPI's torch wheel of `$TRAINLAB_TORCH_VERSION` (default: DEFAULT_TORCH_VERSION), pinned by
   sha256 in torch_wheels.bzl (tools/pin_torch.py writes it). Bazel downloads it once into its
   repository cache and unpacks it here as site-packages would; then every CUDA library
   libtorch_cuda.so needs that this machine lacks (no toolkit, or one without cuDNN, NCCL,
   cuSPARSELt, NVSHMEM ...) comes from its pinned nvidia-* wheel, into the same layout, where
   libtorch_cuda.so's RUNPATH ($ORIGIN/../../nvidia/...) finds it.
   The CUDA runtime: by default every nvidia-* wheel torch pins, as pip installs them (the same
   cuDNN, cuBLAS, NCCL ... whatever the local toolkit has; ~3 GB once);
   `TRAINLAB_CUDA_RUNTIME=missing` fetches only the libraries this machine's loader cannot find.
   Binaries get a RUNPATH to those folders, so they and LibTorch load the same copies.

Only `--config=cuda` builds depend on this repository (through a select() in @libtorch), so the
default CPU build never fetches it and stays offline.

Besides `:libtorch`, the repository has TORCH_INFO (key=value lines: version, source, lib_dir,
cuda) for scripts such as tools/gpu_check.sh.
"""

load(":torch_wheels.bzl", "DEFAULT_TORCH_VERSION", "TORCH_WHEELS")

# soname stem -> the runtime wheel that provides it (matched with or without a -cuNN suffix).
_PROVIDERS = {
    "libcublas": "nvidia-cublas",
    "libcublasLt": "nvidia-cublas",
    "libcudart": "nvidia-cuda-runtime",
    "libcudnn": "nvidia-cudnn",
    "libcufft": "nvidia-cufft",
    "libcufile": "nvidia-cufile",
    "libcupti": "nvidia-cuda-cupti",
    "libcurand": "nvidia-curand",
    "libcusolver": "nvidia-cusolver",
    "libcusparse": "nvidia-cusparse",
    "libcusparseLt": "nvidia-cusparselt",
    "libnccl": "nvidia-nccl",
    "libnvJitLink": "nvidia-nvjitlink",
    "libnvToolsExt": "nvidia-nvtx",
    "libnvrtc": "nvidia-cuda-nvrtc",
    "libnvshmem_host": "nvidia-nvshmem",
}

_LIBS = ["torch", "torch_cpu", "c10", "torch_cuda", "c10_cuda"]

def _fail(msg):
    fail("--config=cuda: " + msg)

def _version_of(ctx, include):
    # torch/version.h, or since 2.10 torch/headeronly/version.h, which it includes.
    for path in ["/torch/headeronly/version.h", "/torch/csrc/api/include/torch/version.h"]:
        header = ctx.path(include + path)
        if not header.exists:
            continue
        parts = {}
        for line in ctx.read(header).splitlines():
            words = line.split(" ")
            if len(words) == 3 and words[0] == "#define":
                parts[words[1]] = words[2].strip('"')
        if "TORCH_VERSION_MAJOR" in parts:
            return "%s.%s.%s" % (parts["TORCH_VERSION_MAJOR"], parts.get("TORCH_VERSION_MINOR", "?"),
                                 parts.get("TORCH_VERSION_PATCH", "?"))
        if parts.get("TORCH_VERSION", "\\") != "\\":
            return parts["TORCH_VERSION"]
    return "unknown"

def _missing_sonames(ctx, lib_dir):
    r = ctx.execute(["ldd", lib_dir + "/libtorch_cuda.so"])
    out = []
    for line in r.stdout.splitlines():
        if "not found" in line:
            soname = line.strip().split(" ")[0]
            if soname not in out:
                out.append(soname)
    return out

def _runtime_for(pins, soname):
    stem = soname.split(".so")[0]
    dist = _PROVIDERS.get(stem)
    if dist == None:
        return None
    for name in sorted(pins["runtime"].keys()):
        if name == dist or name.startswith(dist + "-cu"):
            return name
    return None

def _runtime_dirs(ctx, fetched):
    """The fetched runtime wheels' library folders (nvidia/<name>/lib, or nvidia/cu13/lib)."""
    if not fetched:
        return []
    r = ctx.execute(["find", str(ctx.path("nvidia")), "-maxdepth", "3", "-type", "d", "-name", "lib"])
    return sorted([d for d in r.stdout.strip().split("\n") if d])

def _download_torch(ctx, version):
    pins = TORCH_WHEELS.get(version)
    if pins == None:
        _fail(("torch %s is not pinned (pinned: %s). Pin it with tools/pin_torch.py %s, or " +
               "build against the torch your python3 has: TRAINLAB_TORCH_VERSION=python") %
              (version, ", ".join(sorted(TORCH_WHEELS.keys())), version))
    ctx.report_progress("torch %s wheel (pinned by sha256; kept in Bazel's repository cache)" % version)
    ctx.download_and_extract(
        url = pins["torch"]["url"],
        sha256 = pins["torch"]["sha256"],
        type = "zip",
    )
    return pins

def _from_wheel(ctx, version):
    pins = _download_torch(ctx, version)
    lib_dir = str(ctx.path("torch/lib"))
    fetched = []
    if ctx.os.environ.get("TRAINLAB_CUDA_RUNTIME", "all") == "all":
        # Every runtime wheel torch pins, as pip would install them: the same cuDNN, cuBLAS,
        # NCCL ... on every machine, whatever toolkit it has.
        for name in sorted(pins["runtime"].keys()):
            w = pins["runtime"][name]
            ctx.report_progress("%s %s (CUDA runtime pinned by torch %s)" % (name, w["version"], version))
            ctx.download_and_extract(url = w["url"], sha256 = w["sha256"], type = "zip")
            fetched.append(name)
    for _ in range(3):  # TRAINLAB_CUDA_RUNTIME=missing: only what this machine lacks
        wanted = []
        unknown = []
        for soname in _missing_sonames(ctx, lib_dir):
            name = _runtime_for(pins, soname)
            if name == None or name in fetched:
                unknown.append(soname)
            elif name not in wanted:
                wanted.append(name)
        if unknown:
            print(("--config=cuda: libtorch_cuda.so needs %s, which no pinned wheel of torch %s " +
                   "provides and this machine lacks: install it or set LD_LIBRARY_PATH before " +
                   "running") % (", ".join(unknown), version))
        if not wanted:
            break
        for name in wanted:
            w = pins["runtime"][name]
            ctx.report_progress("%s %s (a CUDA library this machine lacks)" % (name, w["version"]))
            ctx.download_and_extract(url = w["url"], sha256 = w["sha256"], type = "zip")
            fetched.append(name)
    return "PyPI torch %s wheel" % version, "torch/include", lib_dir, fetched

def _from_python(ctx, version_wanted):
    python = ctx.os.environ.get("TRAINLAB_PYTHON", "python3")
    r = ctx.execute([python, "-c", "import os, torch; print(os.path.realpath(os.path.dirname(" +
                                   "torch.__file__))); print(torch.__version__); " +
                                   "print(torch.version.cuda or 'none')"])
    if r.return_code != 0:
        _fail("TRAINLAB_TORCH_VERSION=%s: %s cannot import torch: %s" %
              (version_wanted, python, r.stderr.strip().split("\n")[-1]))
    lines = r.stdout.strip().split("\n")
    if len(lines) != 3:
        _fail("%s printed no torch folder and version: %s" % (python, r.stdout))
    home, version, cuda = lines
    if cuda == "none":
        _fail("%s's torch %s (%s) is a CPU build: --config=cuda needs a CUDA torch" %
              (python, version, home))
    return "%s's torch %s (CUDA %s)" % (python, version, cuda), home + "/include", home + "/lib", []

def _libtorch_cuda_repository_impl(ctx):
    home = ctx.os.environ.get("LIBTORCH_HOME", "")
    version = ctx.os.environ.get("TRAINLAB_TORCH_VERSION", "") or DEFAULT_TORCH_VERSION
    if home and ctx.path(home + "/lib/libtorch_cuda.so").exists:
        source, include, lib_dir, fetched = "LIBTORCH_HOME=" + home, home + "/include", home + "/lib", []
    elif home and not ctx.path(home + "/lib/libtorch_cuda.so").exists and ctx.path(home + "/lib/libtorch.so").exists:
        _fail("LIBTORCH_HOME=%s is a CPU LibTorch (no lib/libtorch_cuda.so); unset it to " % home +
              "use the pinned CUDA wheel, or point it at a CUDA LibTorch")
    elif version == "python":
        source, include, lib_dir, fetched = _from_python(ctx, version)
    else:
        source, include, lib_dir, fetched = _from_wheel(ctx, version)

    if include != "include":
        ctx.symlink(include, "include")
    # The runtime wheels' library folders (nvidia/<name>/lib, or nvidia/cu13/lib), first on the
    # binaries' RUNPATH.
    runtime_dirs = _runtime_dirs(ctx, fetched)
    for lib in _LIBS:
        if not ctx.path("%s/lib%s.so" % (lib_dir, lib)).exists:
            _fail("%s has no lib%s.so" % (lib_dir, lib))
    torch_version = _version_of(ctx, "include")
    ctx.template("BUILD", ctx.attr._build_tpl, {
        "%{lib_dir}": lib_dir,
        "%{libs}": " ".join(["-l" + l for l in _LIBS]),
        "%{cuda_defines}": '"TRAINLAB_LIBTORCH_HAS_CUDA"',
        "%{source}": source,
        "%{version}": torch_version,
        "%{host}": "libtorch",
        "%{cuda_alias}": "",
        "%{runtime_rpaths}": "".join(['"-Wl,-rpath,%s", ' % d for d in runtime_dirs]),
    })
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("TORCH_INFO", "".join(["%s=%s\n" % kv for kv in [
        ("version", torch_version),
        ("source", source),
        ("lib_dir", lib_dir),
        ("runtime_wheels", " ".join(fetched)),
    ]]))

libtorch_cuda_repository = repository_rule(
    implementation = _libtorch_cuda_repository_impl,
    attrs = {"_build_tpl": attr.label(default = Label("//third_party/libtorch:libtorch.BUILD.tpl"))},
    environ = ["LIBTORCH_HOME", "TRAINLAB_TORCH_VERSION", "TRAINLAB_PYTHON", "TRAINLAB_CUDA_RUNTIME"],
    doc = "The CUDA LibTorch of --config=cuda; see the file comment.",
)

# --config=torch2: the same pinned wheel's CPU libraries alone. libtorch_cpu.so holds ATen, the
# C++ frontend, autograd, c10d (Gloo) and the CPU kernels (oneDNN and MKL linked in statically);
# libc10.so the core. Nothing here loads libtorch_cuda.so (no cuDNN, cuBLAS, NCCL ...), but the
# CUDA wheel's libtorch_cpu.so itself names two small CUDA libraries (libcudart for the profiler's
# device hooks, libcupti for Kineto): those two come from their pinned runtime wheels (about 50 MB
# unpacked, on every machine alike), so the binaries run on a machine without any CUDA install
# and load the same copies everywhere.
_CPU_LIBS = ["torch_cpu", "c10"]

def _needed_runtime(ctx, pins, lib_dir):
    """The pinned runtime wheels whose libraries the CPU libraries name (DT_NEEDED)."""
    wanted = []
    for lib in _CPU_LIBS:
        r = ctx.execute(["objdump", "-p", "%s/lib%s.so" % (lib_dir, lib)])
        if r.return_code != 0:
            fail("--config=torch2: objdump -p %s/lib%s.so failed: %s" % (lib_dir, lib, r.stderr.strip()))
        for line in r.stdout.splitlines():
            words = [w for w in line.replace("\t", " ").split(" ") if w]
            if len(words) == 2 and words[0] == "NEEDED":
                name = _runtime_for(pins, words[1])
                if name != None and name not in wanted:
                    wanted.append(name)
    return sorted(wanted)

def _libtorch2_cpu_repository_impl(ctx):
    version = ctx.os.environ.get("TRAINLAB_TORCH_VERSION", "") or DEFAULT_TORCH_VERSION
    if version == "python":
        _fail("--config=torch2 takes a pinned wheel (TRAINLAB_TORCH_VERSION=%s)" %
              ", ".join(sorted(TORCH_WHEELS.keys())))
    pins = _download_torch(ctx, version)
    lib_dir = str(ctx.path("torch/lib"))
    for lib in _CPU_LIBS:
        if not ctx.path("%s/lib%s.so" % (lib_dir, lib)).exists:
            fail("--config=torch2: %s has no lib%s.so" % (lib_dir, lib))
    fetched = _needed_runtime(ctx, pins, lib_dir)
    for name in fetched:
        w = pins["runtime"][name]
        ctx.report_progress("%s %s (named by libtorch_cpu.so)" % (name, w["version"]))
        ctx.download_and_extract(url = w["url"], sha256 = w["sha256"], type = "zip")
    runtime_dirs = _runtime_dirs(ctx, fetched)
    # What the loader would still not find, with only the wheel's own folders (the libraries'
    # RPATH, $ORIGIN/../../nvidia/...) and the system's: a clear error here, not at run time.
    r = ctx.execute(["sh", "-c", "ldd %s/libtorch_cpu.so | grep 'not found' || true" % lib_dir])
    if r.stdout.strip():
        fail("--config=torch2: libtorch_cpu.so of torch %s cannot find: %s" % (version, r.stdout.strip()))
    ctx.symlink("torch/include", "include")
    torch_version = _version_of(ctx, "include")
    ctx.template("BUILD", ctx.attr._build_tpl, {
        "%{lib_dir}": lib_dir,
        "%{libs}": " ".join(["-l" + l for l in _CPU_LIBS]),
        "%{cuda_defines}": "",
        "%{source}": "PyPI torch %s wheel, CPU libraries only" % version,
        "%{version}": torch_version,
        "%{host}": "libtorch",
        "%{cuda_alias}": "",
        "%{runtime_rpaths}": "".join(['"-Wl,-rpath,%s", ' % d for d in runtime_dirs]),
    })
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("TORCH_INFO", "".join(["%s=%s\n" % kv for kv in [
        ("version", torch_version),
        ("source", "PyPI torch %s wheel (CPU libraries only)" % version),
        ("lib_dir", lib_dir),
        ("runtime_wheels", " ".join(fetched)),
    ]]))

libtorch2_cpu_repository = repository_rule(
    implementation = _libtorch2_cpu_repository_impl,
    attrs = {"_build_tpl": attr.label(default = Label("//third_party/libtorch:libtorch.BUILD.tpl"))},
    environ = ["TRAINLAB_TORCH_VERSION"],
    doc = "LibTorch 2.x for the CPU (--config=torch2): the pinned wheel's CPU libraries.",
)
